//! A device that lists many documents, against the real relay with its
//! per-connection message limit on: the first sync goes a window at a time
//! and finishes, a later one with nothing new asks by heads digest, and a
//! document that changes meanwhile still reaches the phone.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::client_core::SyncConfig;
use harness::{Api, TestRelay};
use serde_json::{Value, json};

/// More documents than the relay's burst lets a connection ask for at once
/// (`PROPSYNC_CATCHUP_TICKETS` for the measured run in BENCHMARKS.md).
fn tickets() -> usize {
    std::env::var("PROPSYNC_CATCHUP_TICKETS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(240)
}

async fn relay_with_tight_limits() -> Result<TestRelay> {
    TestRelay::start_with(|c| {
        c.messages_per_second = 20;
        c.message_burst = 60;
    })
    .await
}

async fn record(desk: &Api, n: usize) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let (status, t) = desk
            .post(
                "/api/v1/tickets",
                &json!({"kind": "repair", "title": format!("leak {i}"), "location": format!("B1-{i}"),
                        "category": "plumbing"}),
            )
            .await?;
        ensure!(status == 201, "{t}");
        ids.push(t["id"].as_str().context("id")?.to_owned());
    }
    Ok(ids)
}

async fn sessions(manager: &Api) -> Result<Vec<Value>> {
    let (status, log) = manager.get("/api/v1/sync-log").await?;
    ensure!(status == 200, "{log}");
    Ok(log["sessions"].as_array().context("sessions")?.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_listing_hundreds_finishes_its_first_sync_under_the_message_limit() -> Result<()> {
    let relay = relay_with_tight_limits().await?;
    let desk = relay.api("frontdesk").await?;
    let n = tickets();
    let started = std::time::Instant::now();
    let ids = record(&desk, n).await?;
    eprintln!("recorded {n} tickets over REST in {:?}", started.elapsed());
    let tablet = relay.new_device("frontdesk", "desk-tablet").await?;
    let started = std::time::Instant::now();
    let first = tablet.sync_once().await?;
    eprintln!(
        "first sync of {n} documents: {:?} ({first:?})",
        started.elapsed()
    );
    let held: Vec<String> = tablet
        .inbox()?
        .into_iter()
        .filter(|r| r.kind.as_deref() == Some("ticket"))
        .map(|r| r.id.to_string())
        .collect();
    for id in &ids {
        ensure!(held.contains(id), "ticket {id} did not arrive");
    }
    ensure!(
        first.connections == 1,
        "one connection, never cut off: {first:?}"
    );
    let manager = relay.api("manager").await?;
    let (_, log) = manager.get("/api/v1/security-log").await?;
    ensure!(
        !log["items"]
            .as_array()
            .context("items")?
            .iter()
            .any(|i| i["kind"] == "rate_limited"),
        "the catching-up device was not rate limited: {log}"
    );

    // Nothing new: the second sync asks by digest, a handful of messages.
    let before = sessions(&manager).await?.len();
    let started = std::time::Instant::now();
    let second = tablet.sync_once().await?;
    eprintln!("a sync with nothing new: {:?}", started.elapsed());
    ensure!(second.changes_down == 0, "{second:?}");
    let all = sessions(&manager).await?;
    ensure!(all.len() == before + 1, "one more session");
    let last = &all[0];
    let messages = last["messages_in"].as_u64().context("messages_in")?;
    ensure!(
        messages < 10,
        "a sync with nothing new sent {messages} messages for {n} documents: {last}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_document_confirmed_by_digest_that_changes_is_still_pushed() -> Result<()> {
    let relay = relay_with_tight_limits().await?;
    let desk = relay.api("frontdesk").await?;
    let manager = relay.api("manager").await?;
    let ids = record(&desk, 5).await?;
    let tablet = Arc::new(relay.new_device("frontdesk", "desk-tablet").await?);
    tablet.sync_once().await?;
    // Connected again, holding every ticket unchanged: the relay confirms
    // them by digest and the tablet stays connected; then a ticket is
    // assigned at the desk.
    // Counted before the tablet connects: its session row must come after.
    let before = sessions(&manager).await?.len();
    let live = tablet.clone();
    let staying = tokio::spawn(async move {
        let config = SyncConfig {
            settle: Duration::from_secs(30),
            quiet_settle: Duration::from_secs(30),
            ..SyncConfig::default()
        };
        live.sync_with(&config, &mut |_, _| {}).await
    });
    harness::eventually("the tablet is connected", Duration::from_secs(10), || {
        let manager = &manager;
        async move {
            let s = sessions(manager).await.ok()?;
            (s.len() > before && s[0]["ended_at"].is_null()).then_some(())
        }
    })
    .await?;
    let target = ids[2].clone();
    let outcome = desk
        .act(&target, "assign", json!({"assignee": "eng1"}))
        .await?;
    ensure!(outcome == "accepted", "{outcome}");
    harness::eventually(
        "the assignment reached the tablet",
        Duration::from_secs(15),
        || {
            let tablet = &tablet;
            let id = &target;
            async move {
                let v = tablet.show(id).ok()?;
                (v.official.status.as_str() == "ASSIGNED").then_some(())
            }
        },
    )
    .await?;
    staying.abort();
    Ok(())
}
