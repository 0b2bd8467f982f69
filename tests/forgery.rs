//! Forgeries an unmodified automerge-repo client can build on a concurrent
//! branch (`changeAt` on old heads): an entry that reuses the id of one the
//! relay already accepted elsewhere in the history, and an entry slipped into
//! a list where the author's view did not have it. Each must be hard-rejected
//! whatever heads it was built on, and the official record must not change,
//! also after the relay has evicted the document and loaded it again.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::sync::State;
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ChangeHash, ObjType, ROOT, ReadDoc};
use harness::server::schema::doc::{self, read_ticket};
use harness::server::schema::ticket::{Attachment, Note};
use harness::server::schema::{DeviceId, Event, EventData, EventId, UserId};
use harness::{FetchedRepair, RawPeer, TestRelay, eventually};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(10);

fn eng1() -> (UserId, DeviceId) {
    (
        UserId::new("eng1").unwrap(),
        DeviceId::new("eng1-phone").unwrap(),
    )
}

fn event(action: &str, id: EventId) -> Event {
    let (by, device) = eng1();
    Event {
        id,
        action: action.into(),
        by,
        device,
        at: chrono::Utc::now(),
        data: EventData::default(),
    }
}

fn attachment(by: &str, device: &str) -> Attachment {
    Attachment {
        id: EventId::random(),
        sha256: "ab".repeat(32),
        mime: "image/jpeg".into(),
        size: 1234,
        caption: "after".into(),
        by: UserId::new(by).unwrap(),
        device: DeviceId::new(device).unwrap(),
        at: chrono::Utc::now(),
    }
}

/// A repair assigned to eng1, on a relay that evicts unused documents quickly.
async fn setup() -> Result<FetchedRepair> {
    let relay = TestRelay::start_with(|c| c.doc_idle = Duration::from_millis(200)).await?;
    FetchedRepair::on(relay, "Window latch broken", "B1-402").await
}

/// Syncs what the peer has; returns the rule of the first new hard rejection.
async fn sync(s: &mut FetchedRepair) -> Result<Option<String>> {
    let before = s.peer.rejections().len();
    let mut doc = std::mem::take(&mut s.doc);
    s.peer
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

/// Makes a change with `f` on the peer's document as it was at `heads` (a
/// concurrent branch, as automerge's `changeAt` makes it) and returns its hash.
fn change_at(
    s: &mut FetchedRepair,
    heads: &[ChangeHash],
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Result<ChangeHash> {
    let mut tx = s
        .doc
        .transaction_at(automerge::patches::PatchLog::inactive(), heads)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    f(&mut tx);
    let (hash, _) = tx.commit();
    let hash = hash.context("the branch's change")?;
    let change = s.doc.get_change_by_hash(&hash).context("the change")?;
    ensure!(change.deps() == heads, "built on the old heads");
    Ok(hash)
}

/// Appends an event on the peer's document at its own heads (a normal action).
fn act(s: &mut FetchedRepair, e: &Event) -> Result<()> {
    let mut tx = s.doc.transaction();
    doc::append_event(&mut tx, e)?;
    tx.commit();
    Ok(())
}

/// The ticket as the relay serves it now (the manager's view over REST).
async fn official(s: &FetchedRepair) -> Result<Value> {
    s.relay.api("manager").await?.ticket(&s.id).await
}

async fn wait_evicted(s: &FetchedRepair) -> Result<()> {
    let desk = s.relay.api("frontdesk").await?;
    eventually("the ticket to leave memory", WAIT, || async {
        let (_, h) = desk.get("/api/v1/health").await.ok()?;
        (h["documents_loaded"].as_u64() == Some(0)).then_some(())
    })
    .await
}

/// A fresh peer reads the relay's ticket: it must read (no duplicate ids).
async fn fresh_read(s: &FetchedRepair) -> Result<harness::server::schema::Ticket> {
    let mut other =
        RawPeer::connect(&s.relay.url, &s.relay.creds["supervisor"].device_token).await?;
    let mut doc = Automerge::new();
    let ok = other
        .sync_until(s.doc_id, &mut doc, &mut State::new(), true, WAIT, |d| {
            read_ticket(d, None).is_ok()
        })
        .await?;
    ensure!(ok, "a fresh peer reads the ticket");
    Ok(read_ticket(&doc, None)?)
}

async fn event_forgery(evict: bool) -> Result<()> {
    let mut s = setup().await?;
    let old = s.doc.get_heads();
    let accept = event("accept", EventId::random());
    act(&mut s, &accept)?;
    ensure!(sync(&mut s).await?.is_none(), "the real accept is taken");
    let before = official(&s).await?;
    ensure!(before["status"] == "ACCEPTED", "{before}");
    if evict {
        wait_evicted(&s).await?;
    }
    // On the heads before the accept: the same id, another action, another author.
    let mut forged = event("close", accept.id.clone());
    forged.by = UserId::new("manager")?;
    forged.device = DeviceId::new("manager-phone")?;
    change_at(&mut s, &old, |tx| doc::append_event(tx, &forged).unwrap())?;
    let rule = sync(&mut s).await?;
    assert_eq!(rule.as_deref(), Some("duplicate_id"));
    let after = official(&s).await?;
    assert_eq!(after["status"], "ACCEPTED");
    assert_eq!(
        after["events"], before["events"],
        "the timeline is unchanged"
    );
    assert_eq!(after["projection"], before["projection"]);
    let t = fresh_read(&s).await?;
    assert_eq!(t.events.len(), 3);
    assert!(t.events.iter().all(|e| e.action != "close"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_reusing_an_accepted_id_on_an_old_branch_is_refused() -> Result<()> {
    event_forgery(false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_reusing_an_id_is_refused_after_the_relay_reloads_the_ticket() -> Result<()> {
    event_forgery(true).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_reusing_an_id_on_an_old_branch_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let old = s.doc.get_heads();
    let (by, device) = eng1();
    let note = Note {
        id: EventId::random(),
        by: by.clone(),
        device: device.clone(),
        at: chrono::Utc::now(),
        text: "the latch needs a new spring".into(),
    };
    let mut tx = s.doc.transaction();
    doc::append_note(&mut tx, &note)?;
    tx.commit();
    ensure!(sync(&mut s).await?.is_none(), "the real note is taken");
    wait_evicted(&s).await?;
    let mut forged = note.clone();
    forged.text = "the resident broke it on purpose".into();
    change_at(&mut s, &old, |tx| doc::append_note(tx, &forged).unwrap())?;
    assert_eq!(sync(&mut s).await?.as_deref(), Some("duplicate_id"));
    let t = fresh_read(&s).await?;
    assert_eq!(t.notes.len(), 1);
    assert_eq!(t.notes[0].text, note.text);
    Ok(())
}

/// An id an event already has, reused by a note on a branch: one namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_note_reusing_an_event_id_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let old = s.doc.get_heads();
    let accept = event("accept", EventId::random());
    act(&mut s, &accept)?;
    ensure!(sync(&mut s).await?.is_none());
    let (by, device) = eng1();
    let note = Note {
        id: accept.id.clone(),
        by,
        device,
        at: chrono::Utc::now(),
        text: "same id".into(),
    };
    change_at(&mut s, &old, |tx| doc::append_note(tx, &note).unwrap())?;
    assert_eq!(sync(&mut s).await?.as_deref(), Some("duplicate_id"));
    Ok(())
}

/// An attachment on a branch whose view had fewer attachments than the
/// relay's: it is checked for its author like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_the_authors_view_did_not_have_is_still_checked() -> Result<()> {
    let mut s = setup().await?;
    let old = s.doc.get_heads();
    let mine = attachment("eng1", "eng1-phone");
    let mut tx = s.doc.transaction();
    doc::append_attachment(&mut tx, &mine)?;
    tx.commit();
    ensure!(
        sync(&mut s).await?.is_none(),
        "the real attachment is taken"
    );
    wait_evicted(&s).await?;
    let forged = attachment("manager", "manager-phone");
    change_at(&mut s, &old, |tx| {
        doc::append_attachment(tx, &forged).unwrap()
    })?;
    assert_eq!(sync(&mut s).await?.as_deref(), Some("forged_author"));
    let t = fresh_read(&s).await?;
    assert_eq!(t.attachments.len(), 1);
    assert_eq!(t.attachments[0].by.as_str(), "eng1");
    Ok(())
}

/// An attachment inserted at the head of the list rather than appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_inserted_mid_list_is_checked() -> Result<()> {
    let mut s = setup().await?;
    let mine = attachment("eng1", "eng1-phone");
    let mut tx = s.doc.transaction();
    doc::append_attachment(&mut tx, &mine)?;
    tx.commit();
    ensure!(sync(&mut s).await?.is_none());
    let forged = attachment("eng2", "eng2-phone");
    let list = match s.doc.get(ROOT, "attachments")? {
        Some((automerge::Value::Object(ObjType::List), id)) => id,
        other => anyhow::bail!("no attachments list: {other:?}"),
    };
    let mut tx = s.doc.transaction();
    let m = tx.insert_object(&list, 0, ObjType::Map)?;
    tx.put(&m, "id", forged.id.as_str())?;
    tx.put(&m, "sha256", forged.sha256.as_str())?;
    tx.put(&m, "mime", "image/jpeg")?;
    tx.put(&m, "size", 10_i64)?;
    tx.put(&m, "caption", "")?;
    tx.put(&m, "by", "eng2")?;
    tx.put(&m, "device", "eng2-phone")?;
    tx.put(&m, "at", doc::rfc3339(chrono::Utc::now()))?;
    tx.commit();
    assert_eq!(sync(&mut s).await?.as_deref(), Some("forged_author"));
    Ok(())
}

/// An attachment reusing an accepted attachment's id on an old branch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_reusing_an_id_is_refused() -> Result<()> {
    let mut s = setup().await?;
    let old = s.doc.get_heads();
    let mine = attachment("eng1", "eng1-phone");
    let mut tx = s.doc.transaction();
    doc::append_attachment(&mut tx, &mine)?;
    tx.commit();
    ensure!(sync(&mut s).await?.is_none());
    let mut again = attachment("eng1", "eng1-phone");
    again.id = mine.id.clone();
    again.sha256 = "cd".repeat(32);
    change_at(&mut s, &old, |tx| {
        doc::append_attachment(tx, &again).unwrap()
    })?;
    assert_eq!(sync(&mut s).await?.as_deref(), Some("duplicate_id"));
    Ok(())
}

/// The same forged event sent by a device whose actor is another user's
/// is refused for the actor before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_forgery_with_a_fresh_actor_is_still_refused() -> Result<()> {
    let mut s = setup().await?;
    let old = s.doc.get_heads();
    let accept = event("accept", EventId::random());
    act(&mut s, &accept)?;
    ensure!(sync(&mut s).await?.is_none());
    s.doc.set_actor(ActorId::random());
    let forged = event("hand_back", accept.id.clone());
    change_at(&mut s, &old, |tx| doc::append_event(tx, &forged).unwrap())?;
    assert_eq!(sync(&mut s).await?.as_deref(), Some("duplicate_id"));
    Ok(())
}

/// A dashboard user's actor was a hash of the relay's actor (public: it
/// writes every verdict) and the user name, and was bound at its first use:
/// a phone could compute it, upload a change with it first, and make every
/// later dashboard action of that user fail. It is now a keyed MAC under a
/// secret the relay keeps, bound when the user is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_cannot_take_a_dashboard_users_actor() -> Result<()> {
    use sha2::Digest;
    let mut s = setup().await?;
    // The relay's actor wrote the last change (the verdict of the assignment).
    let changes = s.doc.get_changes(&[]);
    let relay_actor = changes.last().context("a change")?.actor_id().clone();
    // What the supervisor's dashboard actor used to be.
    let mut h = sha2::Sha256::new();
    h.update(relay_actor.to_bytes());
    h.update(b"/web/");
    h.update(b"supervisor");
    let guessed = ActorId::from(&h.finalize()[..16]);
    s.doc.set_actor(guessed);
    let (by, device) = eng1();
    let note = Note {
        id: EventId::random(),
        by,
        device,
        at: chrono::Utc::now(),
        text: "taking the supervisor's actor".into(),
    };
    let mut tx = s.doc.transaction();
    doc::append_note(&mut tx, &note)?;
    tx.commit();
    // Whether the relay takes it or not, the supervisor must still act.
    let _ = sync(&mut s).await?;
    let supervisor = s.relay.api("supervisor").await?;
    let outcome = supervisor
        .act(
            &s.id,
            "cancel",
            serde_json::json!({"reason": "the resident fixed it"}),
        )
        .await?;
    assert_eq!(outcome, "accepted");
    // The supervisor's real actor, now in the document, is no phone's either.
    let mut doc = std::mem::take(&mut s.doc);
    s.peer
        .sync_until(s.doc_id, &mut doc, &mut s.state, false, WAIT, |d| {
            read_ticket(d, None).is_ok_and(|t| t.events.iter().any(|e| e.action == "cancel"))
        })
        .await?;
    s.doc = doc;
    let t = read_ticket(&s.doc, None)?;
    let cancel = t
        .events
        .iter()
        .find(|e| e.action == "cancel")
        .context("the cancel")?;
    let real = s
        .doc
        .get_changes(&[])
        .into_iter()
        .rev()
        .find(|c| {
            c.decode().operations.iter().any(|op| {
                op.primitive_value()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    == Some(cancel.id.to_string())
            })
        })
        .context("the supervisor's change")?
        .actor_id()
        .clone();
    s.doc.set_actor(real);
    let note = Note {
        id: EventId::random(),
        by: UserId::new("eng1")?,
        device: DeviceId::new("eng1-phone")?,
        at: chrono::Utc::now(),
        text: "and now the real one".into(),
    };
    let mut tx = s.doc.transaction();
    doc::append_note(&mut tx, &note)?;
    tx.commit();
    assert_eq!(sync(&mut s).await?.as_deref(), Some("actor_not_bound"));
    Ok(())
}
