//! Inboxes against failing storage and restarts: an inbox update the relay
//! owes survives a write error or a crash between the ticket's commit and
//! the inbox's, and inboxes that drifted from the tickets are repaired.

use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use schema::ticket::{Channel, Reported, TicketHeader, Urgency};
use schema::{Department, Event, EventData, EventId, Kind, Role};

use super::*;
use crate::store::Db;
use crate::store::records::{self, StoredDoc, TicketRow, User};
use crate::store::storage::{SecurityEntry as Entry, Storage};
use relay_core::ledger::ReviewEntry;
use relay_core::{Commit, Stored};
use schema::doc;

/// A store whose inbox writes fail while `fail` is set.
#[derive(Debug)]
struct FailingInboxes {
    db: Db,
    fail: AtomicBool,
}

impl Storage for FailingInboxes {
    fn load_document(&self, id: DocId) -> crate::store::storage::Fut<'_, Option<StoredDoc>> {
        self.db.load_document(id)
    }
    fn commit_document(&self, c: Commit, clock: Clock) -> crate::store::storage::Fut<'_, Stored> {
        if c.inbox_mirror.is_some() && self.fail.load(Ordering::SeqCst) {
            return Box::pin(async { Err(StoreError::Full) });
        }
        self.db.commit_document(c, clock)
    }
    fn actor_binding(&self, actor: &str) -> crate::store::StoreResult<Option<(DeviceId, UserId)>> {
        self.db.actor_binding(actor)
    }
    fn explicit_access(
        &self,
        doc: DocId,
        user: UserId,
    ) -> crate::store::storage::Fut<'_, Option<String>> {
        self.db.explicit_access(doc, user)
    }
    fn users(&self) -> crate::store::storage::Fut<'_, Vec<User>> {
        self.db.users()
    }
    fn ticket_row(&self, doc: DocId) -> crate::store::storage::Fut<'_, Option<TicketRow>> {
        self.db.ticket_row(doc)
    }
    fn start_session(
        &self,
        user: UserId,
        device: DeviceId,
        remote: Option<String>,
        at: DateTime<Utc>,
    ) -> crate::store::storage::Fut<'_, i64> {
        self.db.start_session(user, device, remote, at)
    }
    fn end_session(
        &self,
        id: i64,
        peer: Option<String>,
        c: records::SessionCounters,
        at: DateTime<Utc>,
        reason: String,
    ) -> crate::store::storage::Fut<'_, ()> {
        self.db.end_session(id, peer, c, at, reason)
    }
    fn log_refusal(
        &self,
        entry: Entry,
        review: Option<ReviewEntry>,
    ) -> crate::store::storage::Fut<'_, ()> {
        self.db.log_refusal(entry, review)
    }
    fn inbox_queued(&self) -> crate::store::storage::Fut<'_, Vec<(DocId, i64)>> {
        self.db.inbox_queued()
    }
    fn inbox_queued_upto(&self, doc: DocId) -> crate::store::storage::Fut<'_, Option<i64>> {
        self.db.inbox_queued_upto(doc)
    }
    fn inbox_done(&self, doc: DocId, upto: i64) -> crate::store::storage::Fut<'_, ()> {
        self.db.inbox_done(doc, upto)
    }
    fn inbox_listed_by(&self, doc: DocId) -> crate::store::storage::Fut<'_, Vec<UserId>> {
        self.db.inbox_listed_by(doc)
    }
    fn inbox_entries(&self) -> crate::store::storage::Fut<'_, Vec<(UserId, DocId)>> {
        self.db.inbox_entries()
    }
    fn seed_inbox_mirror(
        &self,
        entries: Vec<(UserId, DocId)>,
    ) -> crate::store::storage::Fut<'_, bool> {
        self.db.seed_inbox_mirror(entries)
    }
    fn inbox_mirror_ready(&self) -> crate::store::storage::Fut<'_, bool> {
        self.db.inbox_mirror_ready()
    }
    fn ticket_rows(&self) -> crate::store::storage::Fut<'_, Vec<TicketRow>> {
        self.db.ticket_rows()
    }
    fn stale(&self, docs: Vec<(DocId, [u8; 16])>) -> crate::store::storage::Fut<'_, Vec<DocId>> {
        self.db.stale(docs)
    }
}

async fn demo_relay(dir: &std::path::Path) -> crate::Relay {
    let addr = "127.0.0.1:0".parse().expect("an address");
    let relay = crate::open(crate::Config::new(dir.join("relay"), addr))
        .await
        .expect("the relay opens");
    crate::demo::seed(&relay).await.expect("the demo seeds");
    relay
}

fn desk() -> Principal {
    Principal {
        user: UserId::new("frontdesk").expect("a user"),
        role: Role::FrontDesk,
        department: Department::CustomerService,
        device: crate::admin::web_device(&UserId::new("frontdesk").expect("a user")),
    }
}

/// The front desk records a repair and assigns it to eng1, through `hub`.
async fn assigned_to_eng1(hub: &Hub) -> DocId {
    let id = DocId::random();
    let p = desk();
    let now = Utc::now();
    let event = |action: &str, data: EventData| Event {
        id: EventId::random(),
        action: action.into(),
        by: p.user.clone(),
        device: p.device.clone(),
        at: now,
        data,
    };
    let issue = event(
        "issue",
        EventData {
            category: Some("plumbing".into()),
            urgency: Some(Urgency::Normal),
            ..EventData::default()
        },
    );
    let assign = event(
        "assign",
        EventData {
            assignee: Some(UserId::new("eng1").expect("a user")),
            ..EventData::default()
        },
    );
    let header = TicketHeader {
        kind: Kind::Repair,
        household: None,
        location: "B1-101".into(),
        title: "Leaking tap".into(),
        description: String::new(),
        reported: Reported {
            by: p.user.clone(),
            channel: Channel::Phone,
            at: now,
        },
        caller: None,
    };
    let refused = hub
        .author(&p, id, true, None, move |t| {
            doc::create_ticket(t, &header)?;
            doc::append_event(t, &issue)?;
            doc::append_event(t, &assign)
        })
        .await
        .expect("the ticket is stored");
    assert!(refused.is_none(), "{refused:?}");
    id
}

/// Whether eng1's inbox document (as stored) lists `ticket`.
async fn eng1_lists(db: &Db, ticket: DocId) -> bool {
    let eng1 = db
        .read(|c| records::user(c, "eng1"))
        .await
        .expect("read")
        .expect("eng1")
        .0;
    let stored = db
        .load_document(eng1.inbox_doc)
        .await
        .expect("read")
        .expect("an inbox");
    let doc = stored.assemble().expect("it loads");
    let inbox = doc::read_inbox(&doc).expect("it reads");
    assert!(!doc.get_heads().is_empty());
    inbox.docs.contains_key(&ticket.url())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_update_that_failed_is_made_at_the_next_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let relay = demo_relay(dir.path()).await;
    let failing = Arc::new(FailingInboxes {
        db: relay.db.clone(),
        fail: AtomicBool::new(true),
    });
    let hub = relay.hub.sibling(failing.clone());
    let ticket = assigned_to_eng1(&hub).await;
    // The ticket is stored and assigned; eng1's inbox write failed.
    assert_eq!(
        relay
            .db
            .ticket_row(ticket)
            .await
            .expect("read")
            .map(|r| r.assignee),
        Some(Some("eng1".into()))
    );
    assert!(!eng1_lists(&relay.db, ticket).await);
    let queued = relay.db.inbox_queued().await.expect("read");
    assert_eq!(
        queued.iter().map(|(d, _)| *d).collect::<Vec<_>>(),
        vec![ticket]
    );
    // The relay restarts on the same data (the store works again).
    drop(hub);
    let restarted = relay.hub.sibling(Arc::new(relay.db.clone()));
    let written = restarted.recover_inboxes(true).await.expect("repair");
    assert!(written >= 1, "{written}");
    assert!(eng1_lists(&relay.db, ticket).await);
    assert!(relay.db.inbox_queued().await.expect("read").is_empty());
    // Nothing is left to repair.
    assert_eq!(restarted.recover_inboxes(true).await.expect("repair"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbox_that_drifted_from_the_tickets_is_repaired_and_reported() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let relay = demo_relay(dir.path()).await;
    let ticket = assigned_to_eng1(&relay.hub).await;
    assert!(eng1_lists(&relay.db, ticket).await);
    // Drift: eng1's inbox loses the ticket (inbox and mirror together).
    let eng1 = UserId::new("eng1").expect("a user");
    let inbox = relay
        .db
        .read(|c| records::user(c, "eng1"))
        .await
        .expect("read")
        .expect("eng1")
        .0
        .inbox_doc;
    let url = ticket.url();
    relay
        .hub
        .relay_write_with(
            inbox,
            None,
            Some((eng1, vec![(ticket, false)])),
            Box::new(move |t| doc::inbox_remove(t, url)),
        )
        .await
        .expect("written");
    assert!(!eng1_lists(&relay.db, ticket).await);
    let written = relay.hub.recover_inboxes(true).await.expect("repair");
    assert_eq!(written, 1);
    assert!(eng1_lists(&relay.db, ticket).await);
    let log = relay
        .db
        .read(|c| records::security_log(c, 100))
        .await
        .expect("read");
    assert!(
        log.iter().any(|r| r.kind == "inbox_repaired"),
        "the repair is recorded for a manager"
    );
}
