//! The relay end to end on `127.0.0.1:0`, with real devices (`client-core`)
//! and the dashboard's REST API: the repair story, offline conflicts,
//! numbering under concurrency.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::client_core::Device;
use harness::server::schema::ticket::{Material, Urgency};
use harness::server::schema::{Action, EventData, Fen, Kind};
use harness::{TestRelay, eventually};
use serde_json::{Value, json};

fn year() -> i32 {
    harness::property_year()
}

async fn new_repair(relay: &TestRelay, paid: bool) -> Result<(String, Value)> {
    let desk = relay.api("frontdesk").await?;
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "Water heater leaking", "location": "B1-101 bathroom",
                    "category": "plumbing", "channel": "phone", "urgency": "normal", "paid": paid}),
        )
        .await?;
    ensure!(status == 201, "creating a repair: HTTP {status}: {t}");
    Ok((t["id"].as_str().context("id")?.to_owned(), t))
}

fn verdicts(t: &Value) -> Vec<(String, String)> {
    t["events"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| {
                    (
                        e["action"].as_str().unwrap_or("").to_owned(),
                        e["verdict"]["outcome"]
                            .as_str()
                            .unwrap_or("pending")
                            .to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn completion() -> EventData {
    EventData {
        result: Some("replaced the pressure valve".into()),
        labour_min: Some(45),
        materials: Some(vec![Material {
            name: "pressure valve".into(),
            qty: 1,
            unit_fen: Fen::new(3_500),
        }]),
        quote_fen: Some(Fen::new(8_000)),
        ..EventData::default()
    }
}

async fn sync(d: &Device) -> Result<harness::client_core::SyncSummary> {
    Ok(d.sync_once().await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_repair_story() -> Result<()> {
    let relay = TestRelay::start().await?;
    let desk = relay.api("frontdesk").await?;
    let (id, created) = new_repair(&relay, true).await?;
    assert_eq!(
        created["serial"],
        format!("RO-{}-000001", year()),
        "the serial is issued at once"
    );
    assert_eq!(
        desk.act(&id, "assign", json!({"assignee": "eng1"})).await?,
        "accepted"
    );

    // eng1's phone fetches its work, then works offline.
    let eng1 = relay.device("eng1").await?;
    let first = sync(&eng1).await?;
    ensure!(first.documents >= 2, "inbox and ticket: {first:?}");
    eng1.act(&id, Action::Accept, EventData::default())?;
    eng1.act(&id, Action::Start, EventData::default())?;
    let photo = eng1.add_photo(b"\xff\xd8\xff\xe0 a photo of the new valve", "image/jpeg")?;
    let mut done = completion();
    done.photos = vec![photo.clone()];
    eng1.act(&id, Action::Complete, done)?;
    let view = eng1.show(&id)?;
    assert_eq!(
        view.official.status.as_str(),
        "ASSIGNED",
        "offline, the official state is unchanged"
    );
    assert_eq!(
        view.with_pending.status.as_str(),
        "COMPLETED",
        "with its pending events the phone shows the work done"
    );
    assert_eq!(view.pending.len(), 3);

    let up = sync(&eng1).await?;
    assert_eq!((up.acked, up.verdicts), (3, 3), "{up:?}");
    assert_eq!(up.photos_uploaded, 1, "{up:?}");
    let t = desk.ticket(&id).await?;
    assert_eq!(t["status"], "COMPLETED");
    assert_eq!(t["projection"]["labour_min"], 45);
    assert_eq!(t["projection"]["materials"][0]["name"], "pressure valve");
    assert_eq!(t["projection"]["photos"][0], photo.as_str());
    assert_eq!(t["projection"]["completed_by"], "eng1");
    let view = eng1.show(&id)?;
    assert!(
        view.pending.is_empty(),
        "every pending event got its verdict"
    );
    assert_eq!(view.official.status.as_str(), "COMPLETED");

    // The front desk takes the engineering copy back; the cashier collects.
    assert_eq!(
        desk.act(&id, "return", json!({"copy_received": true}))
            .await?,
        "accepted"
    );
    assert_eq!(desk.ticket(&id).await?["status"], "CHARGE_PENDING");
    let cashier = relay.api("cashier").await?;
    assert_eq!(
        cashier
            .act(
                &id,
                "collect",
                json!({"amount_fen": 8000, "receipt": "R-2026-0001", "method": "wechat"})
            )
            .await?,
        "accepted"
    );
    assert_eq!(
        desk.act(
            &id,
            "return_visit",
            json!({"contact_result": "reached", "satisfaction": "satisfied"})
        )
        .await?,
        "accepted"
    );
    assert_eq!(desk.act(&id, "close", json!({})).await?, "accepted");
    let t = desk.ticket(&id).await?;
    assert_eq!(t["status"], "CLOSED");
    assert_eq!(t["projection"]["collections"][0]["amount"], 8000);
    let all = verdicts(&t);
    assert_eq!(all.len(), 9, "{all:?}");
    assert!(all.iter().all(|(_, o)| o == "accepted"), "{all:?}");

    // Every change is in the ledger, accepted, with who and which device.
    let manager = relay.api("manager").await?;
    let (_, log) = manager
        .get(&format!("/api/v1/sync-log?document={id}"))
        .await?;
    let changes = log["changes"].as_array().context("changes")?;
    assert_eq!(changes.len(), 9, "one ledger row per change: {changes:?}");
    assert!(
        changes.iter().all(|c| c["outcome"] == "accepted"),
        "{changes:?}"
    );
    assert_eq!(
        changes
            .iter()
            .filter(|c| c["device_id"] == "eng1-phone")
            .count(),
        3
    );
    let sessions = log["sessions"].as_array().context("sessions")?;
    ensure!(
        sessions
            .iter()
            .any(|s| s["device_id"] == "eng1-phone" && s["accepted"] == 3),
        "{sessions:?}"
    );
    // The photo is on the relay, under its hash.
    let (status, _) = manager.get(&format!("/api/v1/blobs/{photo}")).await?;
    assert_eq!(status, 200);
    Ok(())
}

/// eng1 accepts and starts online, then completes offline while the
/// engineering supervisor, looking at the started order, transfers it to
/// eng2; both reach the relay, in either order. Whichever lands second is
/// the one conflict; nothing is lost; relay and devices agree.
async fn offline_conflict(eng1_first: bool) -> Result<()> {
    let relay = TestRelay::start().await?;
    let desk = relay.api("frontdesk").await?;
    let engsup = relay.api("engsup").await?;
    let (id, _) = new_repair(&relay, false).await?;
    assert_eq!(
        desk.act(&id, "assign", json!({"assignee": "eng1"})).await?,
        "accepted"
    );
    let eng1 = relay.device("eng1").await?;
    let eng2 = relay.device("eng2").await?;
    sync(&eng1).await?;
    eng1.act(&id, Action::Accept, EventData::default())?;
    eng1.act(&id, Action::Start, EventData::default())?;
    let s2 = sync(&eng1).await?;
    ensure!(s2.acked == 2, "accept and start reach the relay: {s2:?}");
    // The supervisor's screen shows the started order...
    let seen = engsup.ticket(&id).await?;
    assert_eq!(seen["status"], "IN_PROGRESS");
    // ...while eng1, now offline, completes it.
    eng1.act(&id, Action::Complete, completion())?;
    let transfer = json!({"assignee": "eng2", "reason": "eng1 is needed on another site"});
    if eng1_first {
        sync(&eng1).await?;
        assert_eq!(
            engsup
                .act_on(&id, &seen["heads"], "transfer", transfer)
                .await?,
            "conflict"
        );
    } else {
        assert_eq!(
            engsup
                .act_on(&id, &seen["heads"], "transfer", transfer)
                .await?,
            "accepted"
        );
        sync(&eng1).await?;
    }
    sync(&eng2).await?;
    sync(&eng1).await?;
    let t = desk.ticket(&id).await?;
    let all = verdicts(&t);
    let manager = relay.api("manager").await?;
    let (_, queue) = manager
        .get(&format!("/api/v1/review-queue?open=true&document={id}"))
        .await?;
    let items = queue["items"].as_array().context("items")?;
    assert_eq!(items.len(), 1, "one conflict waits for review: {items:?}");
    assert_eq!(items[0]["kind"], "conflict");
    assert_eq!(
        all.iter().filter(|(_, o)| o == "conflict").count(),
        1,
        "{all:?}"
    );
    if eng1_first {
        assert_eq!(t["status"], "COMPLETED");
        assert_eq!(items[0]["action"], "transfer");
        assert_eq!(items[0]["username"], "engsup");
    } else {
        assert_eq!(t["status"], "ASSIGNED");
        assert_eq!(t["assignee"], "eng2");
        assert_eq!(items[0]["action"], "complete");
        assert_eq!(items[0]["device_id"], "eng1-phone");
    }
    // Nothing is lost: eng1's completion is in the document either way.
    assert!(
        t["events"]
            .as_array()
            .context("events")?
            .iter()
            .any(|e| e["action"] == "complete" && e["data"]["labour_min"] == 45)
    );
    // The relay and every device hold the same official projection.
    let official = t["projection"].clone();
    // The order is with whoever it is assigned to; after the transfer eng1's
    // phone flushed its completion and then let the ticket go.
    let holders: Vec<&Device> = if eng1_first { vec![&eng1] } else { vec![&eng2] };
    if !eng1_first {
        assert!(
            eng1.show(&id).is_err(),
            "eng1's phone purged the ticket once its changes were flushed"
        );
        assert!(eng1.pending()?.is_empty(), "nothing pending was lost first");
    }
    for d in holders {
        let v = d.show(&id)?;
        assert_eq!(serde_json::to_value(&v.official)?, official);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_conflict_engineer_syncs_first() -> Result<()> {
    offline_conflict(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_conflict_transfer_lands_first() -> Result<()> {
    offline_conflict(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_devices_number_their_on_site_repairs_without_gaps() -> Result<()> {
    let relay = TestRelay::start().await?;
    let mut devices = Vec::new();
    for i in 0..50 {
        let user = ["eng1", "eng2", "eng3", "security1", "cleaning1"][i % 5];
        devices.push(relay.new_device(user, &format!("phone-{i:02}")).await?);
    }
    for (i, d) in devices.iter().enumerate() {
        d.report(&harness::client_core::Report {
            kind: Kind::Repair,
            household: None,
            location: format!("B{} stairwell {}", i % 2 + 1, i),
            title: format!("Broken light #{i}"),
            description: "found on patrol".into(),
            category: Some("electrical".into()),
            urgency: Urgency::Normal,
        })?;
    }
    let handles: Vec<_> = devices
        .into_iter()
        .map(|d| tokio::spawn(async move { d.sync_once().await.map(|s| (s, d)) }))
        .collect();
    for h in handles {
        let (s, _) = h.await??;
        ensure!(s.changes_up == 1, "{s:?}");
    }
    let supervisor = relay.api("supervisor").await?;
    let report = eventually("fifty numbers", Duration::from_secs(30), || async {
        let (_, r) = supervisor
            .get(&format!(
                "/api/v1/reports/serial-continuity?series=RO&year={}",
                year()
            ))
            .await
            .ok()?;
        (r["issued"] == 50).then_some(r)
    })
    .await?;
    assert_eq!(report["continuous"], true, "{report}");
    assert_eq!(report["first"], 1);
    assert_eq!(report["last"], 50);
    let mut serials: Vec<&str> = report["entries"]
        .as_array()
        .context("entries")?
        .iter()
        .filter_map(|e| e["serial"].as_str())
        .collect();
    serials.dedup();
    assert_eq!(serials.len(), 50, "no duplicate");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_json_errors_never_a_500() -> Result<()> {
    let relay = TestRelay::start().await?;
    let desk = relay.api("frontdesk").await?;
    let cashier = relay.api("cashier").await?;
    let (_, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "t", "location": "l", "category": "c"}),
        )
        .await?;
    let id = t["id"].as_str().context("id")?.to_owned();
    let cases: Vec<(&str, (u16, Value))> = vec![
        (
            "not json",
            desk.post_raw("/api/v1/tickets", "{not json", true).await?,
        ),
        (
            "missing fields",
            desk.post_raw("/api/v1/tickets", "{\"kind\": \"repair\"}", true)
                .await?,
        ),
        (
            "unknown kind",
            desk.post(
                "/api/v1/tickets",
                &json!({"kind": "gripe", "title": "t", "location": "l"}),
            )
            .await?,
        ),
        (
            "no location or household",
            desk.post("/api/v1/tickets", &json!({"kind": "praise", "title": "t"}))
                .await?,
        ),
        (
            "a repair without a category",
            desk.post(
                "/api/v1/tickets",
                &json!({"kind": "repair", "title": "t", "location": "l"}),
            )
            .await?,
        ),
        (
            "bad date filter",
            desk.get("/api/v1/tickets?from=yesterday").await?,
        ),
        ("bad flag", desk.get("/api/v1/tickets?flag=URGENT").await?),
        ("bad id", desk.get("/api/v1/tickets/not-an-id").await?),
        (
            "unknown ticket",
            desk.get(&format!(
                "/api/v1/tickets/{}",
                harness::server::schema::DocId::random()
            ))
            .await?,
        ),
        (
            "unknown action",
            desk.post(
                &format!("/api/v1/tickets/{id}/events"),
                &json!({"action": "teleport"}),
            )
            .await?,
        ),
        (
            "bad heads",
            desk.post(
                &format!("/api/v1/tickets/{id}/events"),
                &json!({"action": "assign", "heads": ["zz"]}),
            )
            .await?,
        ),
        (
            "unknown heads",
            desk.post(
                &format!("/api/v1/tickets/{id}/events"),
                &json!({"action": "assign", "heads": ["ab".repeat(32)]}),
            )
            .await?,
        ),
        (
            "no token",
            desk.post_raw("/api/v1/tickets", "{}", false).await?,
        ),
        (
            "wrong role",
            cashier
                .post(
                    "/api/v1/tickets",
                    &json!({"kind": "repair", "title": "t", "location": "l", "category": "c"}),
                )
                .await?,
        ),
        ("no such route", desk.get("/api/v1/nothing-here").await?),
        (
            "bad login",
            desk.post_raw(
                "/api/v1/login",
                "{\"username\": \"frontdesk\", \"password\": \"wrong\"}",
                false,
            )
            .await?,
        ),
    ];
    let expected = [
        400, 400, 400, 400, 400, 400, 400, 400, 404, 400, 400, 422, 401, 403, 404, 401,
    ];
    for ((what, (status, body)), want) in cases.iter().zip(expected) {
        assert_eq!(*status, want, "{what}: {body}");
        assert!(
            body["error"]["code"].is_string() && body["error"]["message"].is_string(),
            "{what}: {body}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisors_resolve_the_review_queue_with_override_and_dismiss() -> Result<()> {
    let relay = TestRelay::start().await?;
    let desk = relay.api("frontdesk").await?;
    let engsup = relay.api("engsup").await?;
    let supervisor = relay.api("supervisor").await?;
    let (id, _) = new_repair(&relay, false).await?;
    assert_eq!(
        desk.act(&id, "assign", json!({"assignee": "eng1"})).await?,
        "accepted"
    );
    let eng1 = relay.device("eng1").await?;
    sync(&eng1).await?;
    eng1.act(&id, Action::Accept, EventData::default())?;
    eng1.act(&id, Action::Start, EventData::default())?;
    sync(&eng1).await?;
    eng1.act(
        &id,
        Action::Hold,
        EventData {
            reason: Some("waiting for parts".into()),
            ..EventData::default()
        },
    )?;
    eng1.act(&id, Action::Resume, EventData::default())?;
    eng1.act(&id, Action::Complete, completion())?;
    assert_eq!(
        engsup
            .act(
                &id,
                "transfer",
                json!({"assignee": "eng2", "reason": "rebalancing"})
            )
            .await?,
        "accepted"
    );
    sync(&eng1).await?;
    let (_, q) = supervisor
        .get(&format!("/api/v1/review-queue?open=true&document={id}"))
        .await?;
    let items = q["items"].as_array().context("items")?.clone();
    let by_action = |a: &str| {
        items
            .iter()
            .find(|i| i["action"] == a)
            .and_then(|i| i["event_id"].as_str())
            .map(str::to_owned)
    };
    let complete = by_action("complete").context("the completion is in the queue")?;
    let hold = by_action("hold").context("the hold is in the queue")?;
    // The supervisor phones the resident: the work was done. Override.
    assert_eq!(
        supervisor
            .act(
                &id,
                "override",
                json!({"target": complete, "reason": "resident confirms the repair"})
            )
            .await?,
        "accepted"
    );
    assert_eq!(
        supervisor
            .act(
                &id,
                "dismiss",
                json!({"target": hold, "reason": "no longer relevant"})
            )
            .await?,
        "accepted"
    );
    let t = desk.ticket(&id).await?;
    assert_eq!(
        t["status"], "COMPLETED",
        "the override applies eng1's completion"
    );
    assert_eq!(t["projection"]["labour_min"], 45);
    let (_, q) = supervisor
        .get(&format!("/api/v1/review-queue?document={id}"))
        .await?;
    let resolved: Vec<(&str, &str)> = q["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|i| i["resolved_at"].is_string())
        .map(|i| {
            (
                i["action"].as_str().unwrap_or(""),
                i["resolution"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        resolved.contains(&("complete", "override")) && resolved.contains(&("hold", "dismiss")),
        "{resolved:?}"
    );
    // A second decision on the same item is itself rejected, by name.
    let again = supervisor
        .post(
            &format!("/api/v1/tickets/{id}/events"),
            &json!({"action": "dismiss", "data": {"target": complete, "reason": "again"}}),
        )
        .await?;
    assert_eq!(again.1["verdict"]["rule"], "no_open_review_item");
    // An engineer may not decide review items.
    let refused = eng1.act(
        &id,
        Action::Dismiss,
        EventData {
            target: complete.parse().ok(),
            reason: Some("x".into()),
            ..EventData::default()
        },
    );
    assert!(refused.is_err());
    Ok(())
}

/// `POST /api/v1/tickets` judges the creation event with the lifecycle's rules
/// before it writes anything: a manager or a cashier (no `issue` or `record`
/// row) is refused with a 403 naming the rule, and neither a ticket, nor a
/// serial, nor a review item is left behind. Roles the table lets create still
/// can, the engineers' on-site reports included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_that_may_not_create_a_kind_are_refused_before_anything_is_stored() -> Result<()> {
    let relay = TestRelay::start().await?;
    let manager = relay.api("manager").await?;
    let cashier = relay.api("cashier").await?;
    let repair = json!({"kind": "repair", "title": "Refused repair", "location": "B1-101",
                        "category": "plumbing"});
    let complaint =
        json!({"kind": "complaint", "title": "Refused complaint", "location": "B1 lobby"});
    for (who, api) in [("manager", &manager), ("cashier", &cashier)] {
        for body in [&repair, &complaint] {
            let (status, r) = api.post("/api/v1/tickets", body).await?;
            assert_eq!(status, 403, "{who} {}: {r}", body["kind"]);
            assert_eq!(r["error"]["code"], "forbidden", "{who}: {r}");
            let message = r["error"]["message"].as_str().context("message")?;
            assert!(
                message.starts_with("role_not_allowed: "),
                "{who}: the rule is named: {message}"
            );
        }
    }
    // Nothing stored: no ticket in the register, no serial taken, nothing to review.
    let (_, list) = manager.get("/api/v1/tickets").await?;
    let titles: Vec<&str> = list["tickets"]
        .as_array()
        .context("tickets")?
        .iter()
        .filter_map(|t| t["title"].as_str())
        .collect();
    assert!(
        !titles.iter().any(|t| t.starts_with("Refused")),
        "{titles:?}"
    );
    let (_, ledger) = manager
        .get(&format!(
            "/api/v1/reports/serial-continuity?series=RO&year={}",
            year()
        ))
        .await?;
    assert_eq!(ledger["issued"], 0, "{ledger}");
    let (_, queue) = manager.get("/api/v1/review-queue").await?;
    assert_eq!(queue["items"], json!([]), "{queue}");
    // Roles with an `issue` or `record` row still create, and the ticket is
    // issued (RO-…) or recorded at once, never stuck in NEW.
    let repair = json!({"kind": "repair", "title": "Tap dripping", "location": "B1-101",
                        "category": "plumbing"});
    let complaint = json!({"kind": "complaint", "title": "Lift noisy", "location": "B1 lobby"});
    for (who, body, status) in [
        ("frontdesk", &repair, "ISSUED"),
        ("engsup", &complaint, "RECORDED"),
        ("eng1", &repair, "ISSUED"),
    ] {
        let (code, t) = relay.api(who).await?.post("/api/v1/tickets", body).await?;
        assert_eq!(code, 201, "{who}: {t}");
        assert_eq!(t["status"], status, "{who}: {t}");
    }
    Ok(())
}
