//! Who may sync and write what (DESIGN.md §3), tried from a bare peer:
//! a cashier gets private household files only; an engineer transferred
//! away flushes what they did offline but adds nothing once they saw it.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::Automerge;
use automerge::sync::State;
use harness::server::schema::doc::{self, read_ticket};
use harness::server::schema::ticket::Note;
use harness::server::schema::{DeviceId, DocId, EventId, UserId};
use harness::{FetchedRepair, RawPeer, TestRelay};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(10);

/// Asks for `id` from a fresh peer; whether the relay served it.
async fn fetch(peer: &mut RawPeer, id: DocId) -> Result<bool> {
    let mut doc = Automerge::new();
    peer.sync_until(id, &mut doc, &mut State::new(), true, WAIT, |d| {
        !d.get_heads().is_empty()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashier_syncs_private_household_files_only() -> Result<()> {
    let relay = TestRelay::start().await?;
    let desk = relay.api("frontdesk").await?;
    let (_, list) = desk.get("/api/v1/households?q=B1").await?;
    let hh = &list["households"][0];
    let public: DocId = hh["id"].as_str().context("id")?.parse()?;
    let private: DocId = hh["private"]
        .as_str()
        .context("private")?
        .trim_start_matches("automerge:")
        .parse()?;
    let mut cashier = RawPeer::connect(&relay.url, &relay.creds["cashier"].device_token).await?;
    assert!(fetch(&mut cashier, private).await?, "the private file");
    assert!(!fetch(&mut cashier, public).await?, "not the public file");
    // The front desk still gets both.
    let mut frontdesk =
        RawPeer::connect(&relay.url, &relay.creds["frontdesk"].device_token).await?;
    assert!(fetch(&mut frontdesk, public).await?);
    // On the dashboard the cashier sees the unit and the private file.
    let cashier_web = relay.api("cashier").await?;
    let (status, page) = cashier_web
        .get(&format!("/api/v1/households/{public}"))
        .await?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["public_visible"], false);
    assert_eq!(page["public"]["unit"], hh["unit"]);
    assert_eq!(page["private_visible"], true);
    assert!(page["public"].get("residents").is_none());
    Ok(())
}

fn note(text: &str) -> Note {
    Note {
        id: EventId::random(),
        by: UserId::new("eng1").unwrap(),
        device: DeviceId::new("eng1-phone").unwrap(),
        at: chrono::Utc::now(),
        text: text.into(),
    }
}

async fn sync(s: &mut FetchedRepair, done: impl Fn(&Automerge) -> bool) -> Result<Option<String>> {
    let before = s.peer.rejections().len();
    let mut doc = std::mem::take(&mut s.doc);
    s.peer
        .sync_until(s.doc_id, &mut doc, &mut s.state, false, WAIT, done)
        .await?;
    s.doc = doc;
    Ok(s.peer.rejections().get(before).map(|r| r.rule.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engineer_transferred_away_flushes_offline_work_but_adds_nothing_after() -> Result<()> {
    let mut s = FetchedRepair::on(TestRelay::start().await?, "Boiler noise", "B1-202").await?;
    // Offline, before the transfer reaches the phone: a note.
    let mut tx = s.doc.transaction();
    doc::append_note(&mut tx, &note("checked the pressure"))?;
    tx.commit();
    let engsup = s.relay.api("engsup").await?;
    let outcome = engsup
        .act(
            &s.id,
            "transfer",
            json!({"assignee": "eng2", "reason": "eng1 is needed at B3"}),
        )
        .await?;
    ensure!(outcome == "accepted", "{outcome}");
    // The phone syncs: its note flushes, and it learns of the transfer.
    let rule = sync(&mut s, |d| {
        read_ticket(d, None).is_ok_and(|t| t.events.iter().any(|e| e.action == "transfer"))
    })
    .await?;
    assert_eq!(rule, None, "work made before the transfer is kept");
    let manager = s.relay.api("manager").await?;
    let t = manager.ticket(&s.id).await?;
    assert_eq!(t["notes"].as_array().map(Vec::len), Some(1));
    // Now it knows: a new note is refused.
    let mut tx = s.doc.transaction();
    doc::append_note(&mut tx, &note("still here"))?;
    tx.commit();
    let rule = sync(&mut s, |_| false).await?;
    assert_eq!(rule.as_deref(), Some("read_only"));
    let t = manager.ticket(&s.id).await?;
    assert_eq!(t["notes"].as_array().map(Vec::len), Some(1));
    Ok(())
}

/// Inboxes list open work: a cancelled order leaves the inboxes of its
/// assignee and its creator, and stays readable on demand by those entitled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_ticket_leaves_every_inbox_and_stays_readable_on_demand() -> Result<()> {
    let s = FetchedRepair::on(TestRelay::start().await?, "Gate buzzer", "B1 gate").await?;
    let inbox_lists = |who: &'static str| {
        let relay = &s.relay;
        let id = s.doc_id;
        async move {
            let api = relay.api(who).await?;
            let (_, me) = api.get("/api/v1/me").await?;
            let inbox: DocId = me["inbox"]
                .as_str()
                .context("inbox")?
                .trim_start_matches("automerge:")
                .parse()?;
            let mut peer = RawPeer::connect(&relay.url, &relay.creds[who].device_token).await?;
            let mut doc = Automerge::new();
            peer.sync_until(inbox, &mut doc, &mut State::new(), true, WAIT, |d| {
                doc::read_inbox(d).is_ok()
            })
            .await?;
            anyhow::Ok(doc::read_inbox(&doc)?.docs.contains_key(&id.url()))
        }
    };
    assert!(inbox_lists("eng1").await?, "the assignee's inbox lists it");
    assert!(
        inbox_lists("frontdesk").await?,
        "its creator's inbox lists it"
    );
    let desk = s.relay.api("frontdesk").await?;
    let outcome = desk
        .act(&s.id, "cancel", json!({"reason": "the resident fixed it"}))
        .await?;
    ensure!(outcome == "accepted", "{outcome}");
    harness::eventually("the inboxes drop it", WAIT, || async {
        let eng1 = inbox_lists("eng1").await.ok()?;
        let desk = inbox_lists("frontdesk").await.ok()?;
        (!eng1 && !desk).then_some(())
    })
    .await?;
    // Still readable on demand by the engineer who worked on it.
    let mut peer = RawPeer::connect(&s.relay.url, &s.relay.creds["eng1"].device_token).await?;
    assert!(fetch(&mut peer, s.doc_id).await?, "eng1 fetches it by id");
    Ok(())
}
