//! The engineer's phone (`client-core`) against the real relay: a repair
//! worked through with the relay down, and a change the relay refuses.

use anyhow::{Context, Result, ensure};
use harness::client_core::Device;
use harness::server::schema::ticket::Material;
use harness::server::schema::{Action, EventData, Fen};
use harness::{Api, RelayProcess};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_repair_round_trip_with_the_relay_stopped() -> Result<()> {
    let bin = env!("CARGO_BIN_EXE_propsync-test-relay");
    let dir = tempfile::Builder::new()
        .prefix("propsync-offline-")
        .tempdir()?;
    let data = dir.path().join("relay");
    let listen = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    );
    let mut relay = RelayProcess::start(bin, &data, &listen)?;
    let creds = relay.creds()?;
    let pw = |u: &str| {
        creds["users"][u]["password"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let desk = Api::login(&relay.url, "frontdesk", &pw("frontdesk")).await?;
    let (status, t) = desk
        .post("/api/v1/tickets", &json!({"kind": "repair", "title": "No hot water", "location": "B2-502", "category": "plumbing"}))
        .await?;
    ensure!(status == 201, "{t}");
    let id = t["id"].as_str().context("id")?.to_owned();
    ensure!(desk.act(&id, "assign", json!({"assignee": "eng1"})).await? == "accepted");
    let eng1 = Device::open(&dir.path().join("eng1.db"))?;
    eng1.enroll(
        &relay.url,
        creds["users"]["eng1"]["device_token"]
            .as_str()
            .context("token")?,
    )
    .await?;
    eng1.sync_once().await?;

    // The relay goes down; eng1 works through the repair anyway.
    relay.kill();
    eng1.act(&id, Action::Accept, EventData::default())?;
    eng1.act(&id, Action::Start, EventData::default())?;
    eng1.note(&id, "heater element burnt out; replaced")?;
    eng1.act(
        &id,
        Action::Complete,
        EventData {
            result: Some("replaced the heating element".into()),
            labour_min: Some(70),
            materials: Some(vec![Material {
                name: "heating element 2kW".into(),
                qty: 1,
                unit_fen: Fen::new(12_000),
            }]),
            ..EventData::default()
        },
    )?;
    let once = harness::client_core::SyncConfig {
        max_attempts: 1,
        ..harness::client_core::SyncConfig::default()
    };
    let offline = eng1.sync_with(&once, &mut |_, _| {}).await;
    assert!(
        offline.is_err(),
        "no relay, no sync; the work stays pending"
    );
    assert_eq!(eng1.pending()?.len(), 4);

    // The relay comes back; one sync and everyone agrees.
    let relay = RelayProcess::start(bin, &data, &listen)?;
    let s = eng1.sync_once().await?;
    ensure!(s.acked == 4, "{s:?}");
    assert!(eng1.pending()?.is_empty());
    let desk = Api::login(&relay.url, "frontdesk", &pw("frontdesk")).await?;
    let t = desk.ticket(&id).await?;
    assert_eq!(t["status"], "COMPLETED");
    assert_eq!(t["projection"]["labour_min"], 70);
    assert_eq!(t["notes"][0]["text"], "heater element burnt out; replaced");
    // eng1's tablet, enrolled with the admin command while the relay runs.
    let token = RelayProcess::admin(
        bin,
        &data,
        &[
            "enroll-device",
            "--username",
            "eng1",
            "--device",
            "eng1-tablet",
        ],
    )?;
    let second = Device::open(&dir.path().join("eng1-tablet.db"))?;
    second.enroll(&relay.url, &token).await?;
    second.sync_once().await?;
    let a = serde_json::to_value(eng1.show(&id)?.official)?;
    let b = serde_json::to_value(second.show(&id)?.official)?;
    assert_eq!(a, b, "a second device agrees with the first");
    assert_eq!(a, t["projection"], "and with the relay's register");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_is_quarantined_and_later_actions_sync() -> Result<()> {
    // This relay takes changes of at most 4 KiB; the phone allows 10 KB notes.
    let relay = harness::TestRelay::start_with(|c| c.max_change_bytes = 4 * 1024).await?;
    let desk = relay.api("frontdesk").await?;
    let (_, t) = desk
        .post("/api/v1/tickets", &json!({"kind": "repair", "title": "Window stuck", "location": "B1-702", "category": "windows"}))
        .await?;
    let id = t["id"].as_str().context("id")?.to_owned();
    ensure!(desk.act(&id, "assign", json!({"assignee": "eng1"})).await? == "accepted");
    let eng1 = relay.device("eng1").await?;
    eng1.sync_once().await?;
    eng1.note(&id, &"the frame is warped; ".repeat(400))?;
    let s = eng1.sync_once().await?;
    ensure!(
        s.resets == 1 && s.quarantined == 1,
        "reset and quarantined: {s:?}"
    );
    let q = eng1.quarantine()?;
    assert_eq!(q.len(), 1);
    assert!(
        format!("{:?}", q[0]).contains("oversized_change"),
        "{:?}",
        q[0]
    );
    let t = desk.ticket(&id).await?;
    assert_eq!(
        t["notes"].as_array().map(Vec::len),
        Some(0),
        "the relay stored nothing of it"
    );
    let manager = relay.api("manager").await?;
    let (_, review) = manager
        .get(&format!(
            "/api/v1/review-queue?kind=hard_rejected&document={id}"
        ))
        .await?;
    assert_eq!(
        review["items"][0]["rule"], "oversized_change",
        "a manager sees the rejection"
    );
    // Later valid actions on the same ticket sync normally.
    eng1.act(&id, Action::Accept, EventData::default())?;
    eng1.note(&id, "frame replaced next week")?;
    let s = eng1.sync_once().await?;
    ensure!(s.acked == 2, "{s:?}");
    let t = desk.ticket(&id).await?;
    assert_eq!(t["status"], "ACCEPTED");
    assert_eq!(t["notes"][0]["text"], "frame replaced next week");
    Ok(())
}

/// A note gets no verdict, so the relay's only answer is that it now has
/// the phone's heads. It must say so at once: a relay that stays quiet
/// leaves the phone waiting until its sync stalls (20 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_alone_is_acknowledged_without_a_stall() -> Result<()> {
    let relay = harness::TestRelay::start().await?;
    let desk = relay.api("frontdesk").await?;
    let (_, t) = desk
        .post("/api/v1/tickets", &json!({"kind": "repair", "title": "Tap drips", "location": "B2-301", "category": "plumbing"}))
        .await?;
    let id = t["id"].as_str().context("id")?.to_owned();
    ensure!(desk.act(&id, "assign", json!({"assignee": "eng1"})).await? == "accepted");
    let eng1 = relay.device("eng1").await?;
    eng1.sync_once().await?;
    // One attempt that gives up after 3 s without an answer.
    let strict = harness::client_core::SyncConfig {
        max_attempts: 1,
        stall: std::time::Duration::from_secs(3),
        ..harness::client_core::SyncConfig::default()
    };
    for n in 0..3 {
        eng1.note(&id, &format!("washer worn, visit {n}"))?;
        eng1.sync_with(&strict, &mut |_, _| {})
            .await
            .with_context(|| format!("syncing note {n}"))?;
        ensure!(eng1.pending()?.is_empty(), "note {n} acknowledged");
    }
    let t = desk.ticket(&id).await?;
    ensure!(t["notes"].as_array().map(Vec::len) == Some(3), "{t}");
    Ok(())
}
