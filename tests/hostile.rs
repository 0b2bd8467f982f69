//! Hostile input against the real relay, one test each: the relay answers
//! with a clear error or notice, stores nothing bad, logs it where a manager
//! sees it, and keeps serving everyone else.

use std::num::NonZeroU64;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::sync::{ChunkList, Message as SyncMessage, MessageVersion, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, Change, ROOT, ReadDoc};
use harness::server::schema::doc::{self, read_ticket};
use harness::server::schema::wire::{Message, PeerId};
use harness::server::schema::{DeviceId, DocId, Event, EventData, EventId, UserId};
use harness::{RawPeer, TestRelay};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

type Setup = harness::FetchedRepair;

/// A repair assigned to eng1, fetched by eng1's phone over a bare peer.
async fn setup() -> Result<Setup> {
    Setup::on(TestRelay::start().await?, "Door lock jammed", "B2-301").await
}

fn event(by: &str, device: &str, action: &str, data: EventData) -> Event {
    Event {
        id: EventId::random(),
        action: action.into(),
        by: UserId::new(by).unwrap(),
        device: DeviceId::new(device).unwrap(),
        at: chrono::Utc::now(),
        data,
    }
}

/// Makes a change on `s.doc` with `f` (as actor `actor`), syncs it, and
/// returns the hard rejection the relay sent, if any.
async fn push(
    s: &mut Setup,
    actor: Option<ActorId>,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Result<Option<String>> {
    if let Some(a) = actor {
        s.doc.set_actor(a);
    }
    let mut tx = s.doc.transaction();
    f(&mut tx);
    tx.commit();
    let before = s.peer.rejections().len();
    let peer = &mut s.peer;
    let mut doc = std::mem::take(&mut s.doc);
    let _ = peer
        .sync_until(
            s.doc_id,
            &mut doc,
            &mut s.state,
            false,
            Duration::from_secs(3),
            |_| false,
        )
        .await?;
    s.doc = doc;
    Ok(s.peer.rejections().get(before).map(|r| r.rule.clone()))
}

/// What a manager sees about hard rejections, and the ticket as the relay has it.
async fn aftermath(s: &Setup) -> Result<(Vec<Value>, Value)> {
    let manager = s.relay.api("manager").await?;
    let (_, q) = manager
        .get(&format!(
            "/api/v1/review-queue?kind=hard_rejected&document={}",
            s.id
        ))
        .await?;
    let t = manager.ticket(&s.id).await?;
    Ok((q["items"].as_array().cloned().unwrap_or_default(), t))
}

/// The relay still serves others: a fresh peer fetches the ticket.
async fn still_serving(s: &Setup) -> Result<()> {
    let mut other =
        RawPeer::connect(&s.relay.url, &s.relay.creds["supervisor"].device_token).await?;
    let mut doc = Automerge::new();
    let ok = other
        .sync_until(s.doc_id, &mut doc, &mut State::new(), true, WAIT, |d| {
            read_ticket(d, None).is_ok()
        })
        .await?;
    ensure!(ok, "another peer is still served");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_naming_another_author_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let forged = event("eng2", "eng2-phone", "accept", EventData::default());
    let rule = push(&mut s, None, |tx| doc::append_event(tx, &forged).unwrap()).await?;
    assert_eq!(rule.as_deref(), Some("forged_author"));
    let (items, t) = aftermath(&s).await?;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["rule"], "forged_author");
    assert_eq!(
        items[0]["username"], "eng1",
        "the true author is the binding"
    );
    assert_eq!(
        t["events"].as_array().map(Vec::len),
        Some(2),
        "nothing stored"
    );
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_bound_to_another_device_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let actor = ActorId::random();
    let ok = event("eng1", "eng1-phone", "accept", EventData::default());
    assert_eq!(
        push(&mut s, Some(actor.clone()), |tx| doc::append_event(tx, &ok)
            .unwrap())
        .await?,
        None
    );
    // eng1's tablet reuses the phone's actor.
    let token = harness::server::admin::enroll_device(
        &s.relay.relay,
        &UserId::new("eng1")?,
        &DeviceId::new("eng1-tablet")?,
        "tablet",
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    s.peer = RawPeer::connect(&s.relay.url, &token).await?;
    s.state = State::new();
    let fresh = s.doc_id;
    let mut doc = Automerge::new();
    s.peer
        .sync_until(fresh, &mut doc, &mut s.state, true, WAIT, |d| {
            read_ticket(d, None).is_ok_and(|t| t.events.len() == 3)
        })
        .await?;
    s.doc = doc;
    let start = event("eng1", "eng1-tablet", "start", EventData::default());
    let rule = push(&mut s, Some(actor), |tx| {
        doc::append_event(tx, &start).unwrap()
    })
    .await?;
    assert_eq!(rule.as_deref(), Some("actor_not_bound"));
    let (items, t) = aftermath(&s).await?;
    assert_eq!(items[0]["device_id"], "eng1-tablet");
    assert_eq!(
        t["status"], "ACCEPTED",
        "the tablet's change was not merged"
    );
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_the_server_section_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let serial = s.relay.api("frontdesk").await?.ticket(&s.id).await?["serial"].clone();
    let rule = push(&mut s, None, |tx| {
        let server = tx.get(ROOT, "server").unwrap().unwrap().1;
        tx.put(&server, "serial", "RO-2026-999999").unwrap();
    })
    .await?;
    assert_eq!(rule.as_deref(), Some("server_field"));
    let (items, t) = aftermath(&s).await?;
    assert_eq!(items.len(), 1);
    assert_eq!(t["serial"], serial, "the serial never changes");
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_history_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let rule = push(&mut s, None, |tx| {
        let events = tx.get(ROOT, "events").unwrap().unwrap().1;
        tx.delete(&events, 1).unwrap();
    })
    .await?;
    assert_eq!(rule.as_deref(), Some("append_only"));
    let (_, t) = aftermath(&s).await?;
    assert_eq!(
        t["events"].as_array().map(Vec::len),
        Some(2),
        "the assignment is still there"
    );
    assert_eq!(t["assignee"], "eng1");
    still_serving(&s).await
}

fn sync_message(changes: Vec<Vec<u8>>, heads: Vec<automerge::ChangeHash>) -> Vec<u8> {
    SyncMessage {
        heads,
        need: vec![],
        have: vec![],
        changes: ChunkList::from(changes),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_op_near_2_pow_32_is_refused_without_a_panic() -> Result<()> {
    let mut s = setup().await?;
    let mut fork = s.doc.fork();
    doc::append_event(
        &mut fork.transaction(),
        &event("eng1", "eng1-phone", "accept", EventData::default()),
    )
    .ok();
    let mut tx = fork.transaction();
    doc::append_event(
        &mut tx,
        &event("eng1", "eng1-phone", "accept", EventData::default()),
    )?;
    tx.commit();
    let change = fork.get_last_local_change().context("a change")?;
    let mut expanded = change.decode();
    expanded.start_op = NonZeroU64::new((1u64 << 32) - 2).context("nonzero")?;
    let forged = Change::from(expanded);
    let data = sync_message(vec![forged.raw_bytes().to_vec()], vec![forged.hash()]);
    let (me, relay) = (s.peer.peer_id.clone(), s.peer.relay_id.clone());
    s.peer
        .send(&Message::Sync {
            sender_id: me,
            target_id: relay,
            document_id: s.doc_id.into(),
            data,
        })
        .await?;
    let mut rule = None;
    for _ in 0..50 {
        s.peer.recv(Duration::from_millis(200)).await;
        if let Some(r) = s.peer.rejections().first() {
            rule = Some(r.rule.clone());
            break;
        }
    }
    assert_eq!(rule.as_deref(), Some("oversized_change"));
    let (items, t) = aftermath(&s).await?;
    assert_eq!(items.len(), 1);
    assert_eq!(t["events"].as_array().map(Vec::len), Some(2));
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_automerge_bytes_are_refused_and_logged() -> Result<()> {
    let mut s = setup().await?;
    let garbage = {
        let mut g = vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3, 4, 1, 20];
        g.extend_from_slice(&[0xee; 20]);
        g
    };
    let data = sync_message(vec![garbage], vec![]);
    let (me, relay) = (s.peer.peer_id.clone(), s.peer.relay_id.clone());
    s.peer
        .send(&Message::Sync {
            sender_id: me.clone(),
            target_id: relay.clone(),
            document_id: s.doc_id.into(),
            data,
        })
        .await?;
    while s.peer.recv(Duration::from_millis(500)).await.is_some() && s.peer.rejections().is_empty()
    {
    }
    assert_eq!(
        s.peer.rejections().first().map(|r| r.rule.as_str()),
        Some("malformed_change")
    );
    // A sync message that is not one at all.
    s.peer
        .send(&Message::Sync {
            sender_id: me,
            target_id: relay,
            document_id: s.doc_id.into(),
            data: b"not a sync message".to_vec(),
        })
        .await?;
    while s.peer.recv(Duration::from_millis(500)).await.is_some() && s.peer.errors().is_empty() {}
    assert!(
        s.peer
            .errors()
            .iter()
            .any(|e| e.contains("malformed sync message")),
        "{:?}",
        s.peer.errors()
    );
    let manager = s.relay.api("manager").await?;
    let (_, log) = manager.get("/api/v1/security-log").await?;
    let kinds: Vec<&str> = log["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"hard_rejected") && kinds.contains(&"malformed_sync"),
        "{kinds:?}"
    );
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_frames_close_only_that_connection() -> Result<()> {
    let mut s = setup().await?;
    s.peer.send_raw(vec![0xff, 0x00, 0x13, 0x37]).await?;
    assert!(
        s.peer.closed_within(WAIT).await,
        "a malformed frame closes the connection"
    );
    assert!(
        s.peer
            .errors()
            .iter()
            .any(|e| e.contains("malformed message")),
        "{:?}",
        s.peer.errors()
    );
    let mut big = RawPeer::connect(&s.relay.url, &s.relay.creds["eng1"].device_token).await?;
    let _ = big.send_raw(vec![0xa1; 9 * 1024 * 1024]).await;
    assert!(
        big.closed_within(WAIT).await,
        "an oversized frame closes the connection"
    );
    let (_, log) = s
        .relay
        .api("manager")
        .await?
        .get("/api/v1/security-log")
        .await?;
    assert!(
        log["items"]
            .as_array()
            .context("items")?
            .iter()
            .any(|i| i["kind"] == "malformed_frame")
    );
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_message_types_get_an_error_and_the_connection_goes_on() -> Result<()> {
    let mut s = setup().await?;
    s.peer
        .send(&Message::Unknown {
            type_name: "gossip".into(),
        })
        .await
        .ok();
    // `Unknown` carries no sender; write the frame by hand as a JS peer would.
    let frame = {
        let mut m = vec![0xa2];
        for (k, v) in [("type", "gossip"), ("senderId", s.peer.peer_id.as_str())] {
            m.push(0x60 + u8::try_from(k.len())?);
            m.extend_from_slice(k.as_bytes());
            m.push(0x60 + u8::try_from(v.len())?);
            m.extend_from_slice(v.as_bytes());
        }
        m
    };
    s.peer.send_raw(frame).await?;
    while s.peer.recv(Duration::from_millis(500)).await.is_some()
        && !s.peer.errors().iter().any(|e| e.contains("gossip"))
    {}
    assert!(
        s.peer
            .errors()
            .iter()
            .any(|e| e.contains("unknown message type \"gossip\"")),
        "{:?}",
        s.peer.errors()
    );
    assert!(!s.peer.closed, "the connection stays open");
    // And it still syncs.
    let ok = event("eng1", "eng1-phone", "accept", EventData::default());
    assert_eq!(
        push(&mut s, None, |tx| doc::append_event(tx, &ok).unwrap()).await?,
        None
    );
    // The exchange may end on an error still on its way about the gossip;
    // the change went up first, and the relay takes it.
    let desk = s.relay.api("frontdesk").await?;
    harness::eventually("the ticket is accepted", Duration::from_secs(10), || {
        let (desk, id) = (&desk, &s.id);
        async move {
            let t = desk.ticket(id).await.ok()?;
            (t["status"] == "ACCEPTED").then_some(())
        }
    })
    .await?;
    Ok(())
}

/// Sends `msg` 3,000 times over and checks the relay cut the connection off
/// with "too many messages".
async fn flood_until_cut_off(s: &mut Setup, msg: &Message) {
    let frame = harness::server::schema::wire::encode(msg);
    for _ in 0..3_000 {
        if s.peer.send_raw(frame.clone()).await.is_err() {
            break;
        }
    }
    assert!(
        s.peer.closed_within(WAIT).await,
        "the flooding connection is closed"
    );
    assert!(
        s.peer
            .errors()
            .iter()
            .any(|e| e.contains("too many messages")),
        "{:?}",
        s.peer.errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sync_messages_that_make_no_progress_is_cut_off() -> Result<()> {
    // The rate limit gives back messages that make progress (a device
    // catching up); asking for the same document afresh again and again,
    // each answered with the whole document, does not: after the peer's
    // credit on the document, every message costs.
    let mut s = setup().await?;
    let data = Automerge::new()
        .generate_sync_message(&mut State::new())
        .context("a first sync message")?
        .encode();
    let msg = Message::Request {
        sender_id: s.peer.peer_id.clone(),
        target_id: s.peer.relay_id.clone(),
        document_id: s.doc_id.into(),
        data,
    };
    flood_until_cut_off(&mut s, &msg).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_messages_is_cut_off() -> Result<()> {
    let mut s = setup().await?;
    let msg = Message::RemoteSubscriptionChange {
        sender_id: s.peer.peer_id.clone(),
        target_id: s.peer.relay_id.clone(),
        add: None,
        remove: None,
    };
    flood_until_cut_off(&mut s, &msg).await;
    let (_, log) = s
        .relay
        .api("manager")
        .await?
        .get("/api/v1/security-log")
        .await?;
    assert!(
        log["items"]
            .as_array()
            .context("items")?
            .iter()
            .any(|i| i["kind"] == "rate_limited")
    );
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guessing_document_ids_gets_doc_unavailable() -> Result<()> {
    let s = setup().await?;
    let mut eng3 = RawPeer::connect(&s.relay.url, &s.relay.creds["eng3"].device_token).await?;
    for id in [s.doc_id, DocId::random()] {
        let mut doc = Automerge::new();
        eng3.sync_until(id, &mut doc, &mut State::new(), true, WAIT, |_| false)
            .await?;
        assert!(
            eng3.received.iter().any(|m| matches!(m, Message::DocUnavailable { document_id, .. } if DocId::from(document_id) == id)),
            "{id}: {:?}",
            eng3.received
        );
        assert!(doc.get_heads().is_empty(), "nothing of the document leaked");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completing_a_ticket_never_assigned_to_you_is_rejected() -> Result<()> {
    let relay = TestRelay::start().await?;
    // eng3 reports a broken pump on patrol; the supervisor gives it to eng1.
    let eng3 = relay.device("eng3").await?;
    let (url, _) = eng3.report(&harness::client_core::Report {
        kind: harness::server::schema::Kind::Repair,
        household: None,
        location: "B1 basement pump room".into(),
        title: "Sump pump noisy".into(),
        description: String::new(),
        category: Some("pumps".into()),
        urgency: harness::server::schema::ticket::Urgency::Normal,
    })?;
    eng3.sync_once().await?;
    let id = url.id().to_string();
    let engsup = relay.api("engsup").await?;
    assert_eq!(
        engsup
            .act(&id, "assign", json!({"assignee": "eng1"}))
            .await?,
        "accepted"
    );
    // eng3's phone refuses to complete it, naming the rule...
    eng3.sync_once().await?;
    let refused = eng3
        .act(
            &id,
            harness::server::schema::Action::Accept,
            EventData::default(),
        )
        .unwrap_err();
    assert!(refused.to_string().contains("not_assignee"), "{refused}");
    // ...and a forged client that sends it anyway gets a rejected verdict.
    let mut peer = RawPeer::connect(&relay.url, &relay.creds["eng3"].device_token).await?;
    let mut doc = Automerge::new();
    let mut state = State::new();
    peer.sync_until(url.id(), &mut doc, &mut state, true, WAIT, |d| {
        read_ticket(d, None).is_ok_and(|t| t.events.len() == 2)
    })
    .await?;
    // A forged client records the whole job in one go.
    let accept = event("eng3", "eng3-phone", "accept", EventData::default());
    let start = event("eng3", "eng3-phone", "start", EventData::default());
    let done = event(
        "eng3",
        "eng3-phone",
        "complete",
        EventData {
            result: Some("fixed".into()),
            labour_min: Some(30),
            materials: Some(vec![]),
            ..EventData::default()
        },
    );
    let eid = done.id.clone();
    let ids = [accept.id.clone(), start.id.clone(), done.id.clone()];
    let mut tx = doc.transaction();
    for e in [&accept, &start, &done] {
        doc::append_event(&mut tx, e)?;
    }
    tx.commit();
    let judged = peer
        .sync_until(url.id(), &mut doc, &mut state, false, WAIT, |d| {
            read_ticket(d, None).is_ok_and(|t| t.server.verdicts.contains_key(&eid))
        })
        .await?;
    ensure!(judged, "the verdict comes back");
    let t = read_ticket(&doc, None)?;
    let verdicts: Vec<(&str, &str)> = ids
        .iter()
        .map(|i| {
            (
                t.server.verdicts[i].outcome.as_str(),
                t.server.verdicts[i].rule.as_str(),
            )
        })
        .collect();
    assert_eq!(verdicts[0], ("rejected", "not_assignee"));
    assert!(
        verdicts.iter().all(|(o, _)| *o == "rejected"),
        "{verdicts:?}"
    );
    let manager = relay.api("manager").await?;
    let (_, q) = manager
        .get(&format!("/api/v1/review-queue?kind=rejected&document={id}"))
        .await?;
    assert_eq!(q["items"][0]["username"], "eng3");
    let t = manager.ticket(&id).await?;
    assert_eq!(
        (t["status"].as_str(), t["assignee"].as_str()),
        (Some("ASSIGNED"), Some("eng1")),
        "the projection is unchanged"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_is_disconnected_within_a_second() -> Result<()> {
    let s = setup().await?;
    let mut peer = s.peer;
    let manager = s.relay.api("manager").await?;
    let (status, _) = manager
        .post("/api/v1/devices/eng1-phone/revoke", &json!({}))
        .await?;
    assert_eq!(status, 200);
    assert!(
        peer.closed_within(Duration::from_secs(1)).await,
        "disconnected within a second"
    );
    let again = RawPeer::connect(&s.relay.url, &s.relay.creds["eng1"].device_token).await;
    assert!(again.is_err(), "the token stops working at once");
    let (_, log) = manager.get("/api/v1/security-log").await?;
    assert!(
        log["items"]
            .as_array()
            .context("items")?
            .iter()
            .any(|i| i["kind"] == "auth_refused")
    );
    let _ = PeerId::new("x");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_changed_mid_session_takes_effect_at_once() -> Result<()> {
    let s = setup().await?;
    let mut peer = s.peer;
    // eng1 moves to the security patrol while connected.
    harness::server::admin::set_role(
        &s.relay.relay,
        &UserId::new("eng1")?,
        harness::server::schema::Role::DepartmentStaff,
        Some(harness::server::schema::Department::Security),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert!(
        peer.closed_within(Duration::from_secs(1)).await,
        "the session ends at once"
    );
    // The next connection carries the new role: the repair is no longer theirs to sync.
    let mut again = RawPeer::connect(&s.relay.url, &s.relay.creds["eng1"].device_token).await?;
    let mut doc = Automerge::new();
    again
        .sync_until(s.doc_id, &mut doc, &mut State::new(), true, WAIT, |_| false)
        .await?;
    assert!(
        again
            .received
            .iter()
            .any(|m| matches!(m, Message::DocUnavailable { .. })),
        "{:?}",
        again.received
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_paths_and_hashes_are_checked() -> Result<()> {
    let relay = TestRelay::start().await?;
    let token = relay.creds["eng1"].device_token.clone();
    let http = reqwest::Client::new();
    let put = |path: String, body: Vec<u8>, size: usize| {
        http.put(format!("{}{path}", relay.url))
            .bearer_auth(&token)
            .header("x-blob-size", size.to_string())
            .header("x-blob-offset", "0")
            .body(body)
            .send()
    };
    // Traversal and non-hash names never reach the file system.
    for name in [
        "..%2F..%2Fetc%2Fpasswd",
        "%2E%2E",
        "ABCDEF",
        &"g".repeat(64),
    ] {
        let r = put(format!("/api/v1/blobs/{name}"), b"x".to_vec(), 1).await?;
        assert!(
            matches!(r.status().as_u16(), 400 | 404),
            "{name}: {}",
            r.status()
        );
    }
    // Bytes that do not hash to the name are discarded.
    let wrong = "0".repeat(64);
    let r = put(
        format!("/api/v1/blobs/{wrong}"),
        b"not those bytes".to_vec(),
        15,
    )
    .await?;
    assert_eq!(r.status().as_u16(), 422);
    let r = http
        .head(format!("{}/api/v1/blobs/{wrong}", relay.url))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 404, "nothing kept");
    // Over the size cap.
    let r = put(
        format!("/api/v1/blobs/{}", "1".repeat(64)),
        Vec::new(),
        1 << 40,
    )
    .await?;
    assert_eq!(r.status().as_u16(), 413);
    // Without a token.
    let r = http
        .get(format!("{}/api/v1/blobs/{wrong}", relay.url))
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 401);
    Ok(())
}

/// Someone uploads a web page (or an SVG with script) whose bytes hash to its
/// name: the relay keeps it (phones send whatever type they were given), but
/// never serves it as a page on its own origin, where the dashboard's session
/// lives. Only photo types are served as themselves; every blob answer says
/// `nosniff` and carries a sandboxing CSP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploaded_page_is_served_as_a_download_never_as_a_page() -> Result<()> {
    let relay = TestRelay::start().await?;
    // Uploaded the way a phone uploads its photos: hashed, then PUT at sync.
    let phone = relay.device("eng1").await?;
    let page: &[u8] = b"<!doctype html><script>fetch('/api/v1/me')</script>";
    let svg: &[u8] = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>";
    let jpeg: &[u8] = b"\xff\xd8\xff\xe0 a photo of the meter";
    let blobs = [
        (
            phone.add_photo(page, "text/html; charset=utf-8")?,
            page,
            None,
        ),
        (phone.add_photo(svg, "image/svg+xml")?, svg, None),
        (
            phone.add_photo(jpeg, "image/jpeg")?,
            jpeg,
            Some("image/jpeg"),
        ),
    ];
    let summary = phone.sync_once().await?;
    assert_eq!(
        summary.photos_uploaded, 3,
        "every type is accepted: {summary:?}"
    );
    // Read back by the uploader (a blob no ticket names yet is theirs alone).
    let token = relay.creds["eng1"].device_token.clone();
    let http = reqwest::Client::new();
    for (sha, bytes, inline) in &blobs {
        let r = http
            .get(format!("{}/api/v1/blobs/{sha}", relay.url))
            .bearer_auth(&token)
            .send()
            .await?;
        assert_eq!(r.status().as_u16(), 200, "{sha}");
        let header = |name: &str| {
            r.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let (kind, disposition) = (header("content-type"), header("content-disposition"));
        match inline {
            Some(t) => {
                assert_eq!(kind, *t);
                assert!(!disposition.starts_with("attachment"), "{disposition}");
            }
            None => {
                assert_eq!(kind, "application/octet-stream", "{sha}");
                assert!(
                    disposition.starts_with("attachment"),
                    "{sha}: {disposition:?}"
                );
            }
        }
        assert_eq!(header("x-content-type-options"), "nosniff", "{sha}");
        let csp = header("content-security-policy");
        assert!(
            csp.contains("sandbox") && csp.contains("default-src 'none'"),
            "{sha}: {csp:?}"
        );
        assert_eq!(
            r.bytes().await?.as_ref(),
            *bytes,
            "the bytes are kept as sent"
        );
    }
    // Refusals from the blob routes carry the same headers.
    let r = http
        .get(format!("{}/api/v1/blobs/{}", relay.url, "0".repeat(64)))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    Ok(())
}

/// A request body over a route's limit is refused with the relay's JSON 413
/// (`too_large`), like every other error: a JSON route's body over the
/// default limit, and a blob PUT over `max_blob_bytes` whether or not its
/// `X-Blob-Size` owns up to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_the_json_413() -> Result<()> {
    let relay = TestRelay::start_with(|c| c.max_blob_bytes = 1024).await?;
    let desk = relay.api("frontdesk").await?;
    let http = reqwest::Client::new();
    let json_error = |what: &str, status: u16, text: &str| -> Result<()> {
        assert_eq!(status, 413, "{what}: {text}");
        let v: Value = serde_json::from_str(text)
            .with_context(|| format!("{what}: a JSON body, not {text:?}"))?;
        assert_eq!(v["error"]["code"], "too_large", "{what}: {v}");
        assert!(v["error"]["message"].is_string(), "{what}: {v}");
        Ok(())
    };
    // A ticket whose description alone is over axum's 2 MiB default.
    let big = json!({"kind": "repair", "title": "t", "location": "l", "category": "c",
                     "description": "x".repeat(2 * 1024 * 1024 + 1)});
    for path in ["/api/v1/tickets", "/api/v1/login"] {
        let r = http
            .post(format!("{}{path}", relay.url))
            .bearer_auth(&desk.token)
            .json(&big)
            .send()
            .await?;
        let status = r.status().as_u16();
        json_error(path, status, &r.text().await?)?;
    }
    // Blob bodies: 4 KiB against a 1 KiB cap, with an honest and a lying size.
    let sha = "1".repeat(64);
    for size in ["4096", "1000"] {
        let r = http
            .put(format!("{}/api/v1/blobs/{sha}", relay.url))
            .bearer_auth(&desk.token)
            .header("x-blob-size", size)
            .header("x-blob-offset", "0")
            .body(vec![0u8; 4096])
            .send()
            .await?;
        let status = r.status().as_u16();
        json_error(
            &format!("blob, X-Blob-Size {size}"),
            status,
            &r.text().await?,
        )?;
    }
    let (status, _) = desk.get("/api/v1/me").await?;
    assert_eq!(status, 200, "the relay serves on");
    Ok(())
}

/// Every route of the OpenAPI document, tried by every role: never a 500,
/// every refusal a JSON error, and the restricted reads refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_tried_by_every_role() -> Result<()> {
    let s = setup().await?;
    let relay = &s.relay;
    let (_, spec) = relay
        .api("manager")
        .await?
        .get("/api/v1/openapi.json")
        .await?;
    let paths = spec["paths"].as_object().context("paths")?.clone();
    let (_, households) = relay
        .api("frontdesk")
        .await?
        .get("/api/v1/households")
        .await?;
    let household = households["households"][0]["id"]
        .as_str()
        .context("a household")?
        .to_owned();
    let fill = |p: &str| {
        let id = if p.starts_with("/api/v1/households/") {
            household.as_str()
        } else {
            s.id.as_str()
        };
        p.replace("{id}", id)
            .replace("{sha256}", &"0".repeat(64))
            .replace("{name}", "open-overdue")
    };
    let restricted: [(&str, &[&str]); 4] = [
        ("/api/v1/sync-log", &["supervisor", "manager"]),
        ("/api/v1/security-log", &["supervisor", "manager"]),
        ("/api/v1/devices", &["supervisor", "manager"]),
        ("/api/v1/review-queue", &["supervisor", "engsup", "manager"]),
    ];
    let mut tried = 0;
    for user in relay.creds.keys() {
        let api = relay.api(user).await?;
        for (path, ops) in &paths {
            if path.ends_with("/live") || path.ends_with("/revoke") || path.ends_with("/logout") {
                continue; // a stream, and a revocation and a logout that would end the test's sessions
            }
            let url = fill(path);
            for method in ops.as_object().context("ops")?.keys() {
                let (status, body) = match method.as_str() {
                    "get" => api.get(&url).await?,
                    "post" => api.post(&url, &json!({})).await?,
                    _ => continue,
                };
                tried += 1;
                assert!(status < 500, "{user} {method} {url}: {status} {body}");
                if status >= 400 {
                    assert!(
                        body["error"]["code"].is_string(),
                        "{user} {method} {url}: {status} {body}"
                    );
                }
                if method == "get"
                    && let Some((_, allowed)) = restricted.iter().find(|(p, _)| p == path)
                {
                    let want = if allowed.contains(&user.as_str()) {
                        200
                    } else {
                        403
                    };
                    assert_eq!(status, want, "{user} GET {path}");
                }
            }
        }
    }
    assert!(tried >= 10 * 15, "only {tried} requests");
    Ok(())
}

/// Thousands of idle connections: the relay keeps them all and still serves
/// a phone's sync promptly. `PROPSYNC_IDLE_CONNECTIONS` sets how many (2,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_idle_connections_do_not_stop_anyone_else() -> Result<()> {
    let n: usize = std::env::var("PROPSYNC_IDLE_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    let s = setup().await?;
    let token = s.relay.creds["cleaning1"].device_token.clone();
    let mut idle = Vec::with_capacity(n);
    for batch in 0..n.div_ceil(100) {
        let tasks: Vec<_> = (0..100.min(n - batch * 100))
            .map(|_| {
                let (url, token) = (s.relay.url.clone(), token.clone());
                tokio::spawn(async move { RawPeer::connect(&url, &token).await })
            })
            .collect();
        for t in tasks {
            idle.push(t.await??);
        }
    }
    let manager = s.relay.api("manager").await?;
    let (_, health) = manager.get("/api/v1/health").await?;
    ensure!(
        health["connections"].as_u64() >= Some(u64::try_from(n)?),
        "{health}"
    );
    // Someone else still works: eng1's phone accepts the ticket and syncs.
    let eng1 = s.relay.device("eng1").await?;
    eng1.sync_once().await?;
    eng1.act(
        &s.id,
        harness::server::schema::Action::Accept,
        EventData::default(),
    )?;
    let summary = eng1.sync_once().await?;
    ensure!(summary.acked == 1, "{summary:?}");
    assert_eq!(manager.ticket(&s.id).await?["status"], "ACCEPTED");
    let (_, health) = manager.get("/api/v1/health").await?;
    ensure!(
        health["connections"].as_u64() >= Some(u64::try_from(n)?),
        "the idle ones are all still there: {health}"
    );
    drop(idle);
    Ok(())
}

/// Automerge trusts a peer's bloom filter: zero bits per entry made the
/// relay divide by zero when it next answered (a panic that ended the
/// connection's task without a word, and left the session row open), and
/// four billion probes would allocate 16 GiB per change. Both are refused
/// as malformed, logged, and the connection and the document go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bloom_filter_with_impossible_parameters_is_refused() -> Result<()> {
    use automerge::sync::{BloomFilter, Have};
    let mut s = setup().await?;
    for params in [[1_u8, 0, 7], [1, 10, 0xff]] {
        let mut bytes = params.to_vec();
        if params[2] == 0xff {
            // num_probes as a LEB128 near 2^32.
            bytes = vec![1, 10, 0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0];
        }
        let bloom = BloomFilter::try_from(bytes.as_slice()).context("a bloom")?;
        let msg = SyncMessage {
            heads: Vec::new(),
            need: Vec::new(),
            have: vec![Have {
                last_sync: Vec::new(),
                bloom,
            }],
            changes: ChunkList::empty(),
            flags: None,
            version: MessageVersion::V1,
        };
        let before = s.peer.errors().len();
        s.peer
            .send(&Message::Sync {
                sender_id: s.peer.peer_id.clone(),
                target_id: s.peer.relay_id.clone(),
                document_id: s.doc_id.into(),
                data: msg.encode(),
            })
            .await?;
        let mut got = false;
        while let Some(_m) = s.peer.recv(Duration::from_secs(3)).await {
            if s.peer.errors().len() > before {
                got = true;
                break;
            }
        }
        ensure!(got, "an error answers the bad bloom filter {params:?}");
        ensure!(!s.peer.closed, "the connection goes on");
    }
    // The same connection still syncs the document.
    let ok = s
        .peer
        .sync_until(
            s.doc_id,
            &mut Automerge::new(),
            &mut State::new(),
            true,
            WAIT,
            |d| read_ticket(d, None).is_ok(),
        )
        .await?;
    ensure!(ok, "the connection still syncs");
    let manager = s.relay.api("manager").await?;
    let log = harness::eventually("the refusals in the security log", WAIT, || async {
        let (_, log) = manager.get("/api/v1/security-log").await.ok()?;
        let n = log["items"]
            .as_array()?
            .iter()
            .filter(|e| e["kind"] == "malformed_sync")
            .count();
        (n >= 2).then_some(n)
    })
    .await?;
    assert!(log >= 2);
    still_serving(&s).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_digest_question_about_a_document_not_yours_gives_nothing_away_but_a_change() -> Result<()>
{
    // eng3 learns the id of eng1's repair and asks, with a made-up digest,
    // whether it changed: the relay names it (it differs), and the sync
    // that follows is refused like any other request for it.
    let s = setup().await?;
    let token = s
        .relay
        .creds
        .get("eng3")
        .context("eng3")?
        .device_token
        .clone();
    let mut eng3 = RawPeer::connect(&s.relay.url, &token).await?;
    let on = s.doc_id; // the document the question travels on does not matter
    eng3.send(&Message::Ephemeral {
        sender_id: eng3.peer_id.clone(),
        target_id: eng3.relay_id.clone(),
        count: 1,
        session_id: "s".into(),
        document_id: on.into(),
        data: harness::server::schema::wire::HeadsDigests {
            docs: vec![(s.doc_id, [7; 16])],
        }
        .encode(),
    })
    .await?;
    let named = loop {
        let m = eng3.recv(WAIT).await.context("an answer to the digests")?;
        if let Message::Ephemeral { data, .. } = m
            && let Some(stale) = harness::server::schema::wire::Stale::decode(
                &data,
                &harness::server::schema::wire::Limits::default(),
            )
        {
            break stale.docs;
        }
    };
    ensure!(named == vec![s.doc_id], "{named:?}");
    let data = Automerge::new()
        .generate_sync_message(&mut State::new())
        .context("a first sync message")?
        .encode();
    eng3.send(&Message::Request {
        sender_id: eng3.peer_id.clone(),
        target_id: eng3.relay_id.clone(),
        document_id: s.doc_id.into(),
        data,
    })
    .await?;
    loop {
        match eng3.recv(WAIT).await.context("an answer to the request")? {
            Message::DocUnavailable { document_id, .. }
                if DocId::from(&document_id) == s.doc_id =>
            {
                break;
            }
            Message::Sync { document_id, .. } if DocId::from(&document_id) == s.doc_id => {
                anyhow::bail!("eng3 was sent eng1's repair")
            }
            _ => {}
        }
    }
    Ok(())
}
