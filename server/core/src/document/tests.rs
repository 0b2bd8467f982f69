//! The per-document state machine on a simulated network, without tokio:
//! phones create and work a ticket through the real core; a store that
//! seals commits as the relay's does; every effect inspected.

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{ActorId, Automerge};
use chrono::{TimeZone, Utc};
use schema::ticket::{Channel, Reported, TicketHeader, Urgency};
use schema::wire::{Message, PeerId};
use schema::{
    Department, DeviceId, DocId, Event, EventData, EventId, Kind, Policy, Principal, Role, Serial,
    Status, UserId,
};

use super::*;
use crate::validate::HardRule;

fn principal(name: &str, role: Role, department: Department) -> Principal {
    Principal {
        user: UserId::new(name).unwrap(),
        role,
        department,
        device: DeviceId::new(format!("{name}-phone")).unwrap(),
    }
}

fn peer(conn: ConnId, p: Principal) -> PeerInfo {
    PeerInfo {
        conn,
        peer_id: PeerId::new(format!("phone-{conn}")).unwrap(),
        principal: p,
        session: None,
    }
}

/// The relay side: one document, a serial counter, a clock.
struct Relay {
    id: PeerId,
    actor: ActorId,
    policy: Policy,
    limits: Limits,
    doc: Document,
    serials: u32,
    bindings: HashMap<ActorId, (schema::DeviceId, UserId)>,
    stored: Vec<Commit>,
}

/// A phone: its copy, its sync state with the relay.
struct Phone {
    info: PeerInfo,
    doc: Automerge,
    sync: SyncState,
}

impl Phone {
    fn new(conn: ConnId, p: Principal) -> Self {
        let actor = ActorId::from(format!("{:0<32}", conn).into_bytes()[..16].to_vec());
        Self {
            info: peer(conn, p),
            doc: Automerge::new().with_actor(actor),
            sync: SyncState::new(),
        }
    }

    fn event(&self, action: &str, data: EventData) -> Event {
        Event {
            id: EventId::random(),
            action: action.into(),
            by: self.info.principal.user.clone(),
            device: self.info.principal.device.clone(),
            at: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(),
            data,
        }
    }
}

impl Relay {
    fn new(id: DocId) -> Self {
        let actor = ActorId::random();
        Self {
            id: PeerId::new("relay").unwrap(),
            doc: Document::empty(id, &actor),
            actor,
            policy: Policy::default(),
            limits: Limits::default(),
            serials: 0,
            bindings: HashMap::new(),
            stored: Vec::new(),
        }
    }

    /// One message from `phone`, the whole step; returns the effects.
    fn step(&mut self, phone: &Phone, msg: SyncMessage) -> Vec<Effect> {
        let received = self
            .doc
            .receive(&phone.info, msg, false)
            .expect("a well-formed message");
        let now = Utc.with_ymd_and_hms(2026, 11, 2, 10, 0, 0).unwrap();
        let known = self.bindings.clone();
        let bindings = move |a: &ActorId| Ok(known.get(a).cloned());
        let cx = JudgeContext {
            relay: &self.actor,
            policy: &self.policy,
            limits: &self.limits,
            bindings: &bindings,
            now,
        };
        let mut step = self.doc.judge(phone.info.conn, &received.chunks, &cx);
        for a in &step.bound {
            self.bindings.insert(
                a.clone(),
                (
                    phone.info.principal.device.clone(),
                    phone.info.principal.user.clone(),
                ),
            );
        }
        if let Some(mut commit) = step.commit.take() {
            let serial = commit
                .serial_due
                .filter(|_| commit.seal.is_some())
                .map(|series| {
                    self.serials += 1;
                    Serial::new(series, 2026, self.serials).unwrap()
                });
            let doc = commit
                .seal
                .take()
                .map(|s| s.seal(self.doc.id(), serial, 0).expect("sealed"));
            self.stored.push(commit);
            self.doc.committed(
                &mut step,
                Stored {
                    serial,
                    snapshot_len: None,
                    doc: doc.map(|s| s.doc),
                },
            );
        }
        let relay_core_replies = self.doc.replies(&self.id, phone.info.conn, step.rejection);
        let (effects, gone) = (relay_core_replies.effects, relay_core_replies.gone);
        assert!(!gone);
        effects
    }

    /// Syncs `phone` until neither side has anything to say; returns every
    /// effect the relay produced for other connections.
    fn sync(&mut self, phone: &mut Phone) -> (Vec<Effect>, Vec<Rejection>) {
        let mut others = Vec::new();
        let mut rejections = Vec::new();
        for _ in 0..20 {
            let Some(msg) = phone.doc.generate_sync_message(&mut phone.sync) else {
                return (others, rejections);
            };
            for e in self.step(phone, msg) {
                match e {
                    Effect::Send(conn, Message::Sync { data, .. }) if conn == phone.info.conn => {
                        let m = SyncMessage::decode(&data).unwrap();
                        phone.doc.receive_sync_message(&mut phone.sync, m).unwrap();
                    }
                    Effect::Reject { rejection, .. } => rejections.push(rejection),
                    other => others.push(other),
                }
            }
        }
        panic!("the sync did not settle");
    }
}

fn report(phone: &mut Phone) {
    let header = TicketHeader {
        kind: Kind::Repair,
        household: None,
        location: "B2 lift lobby".into(),
        title: "Light out".into(),
        description: String::new(),
        reported: Reported {
            by: phone.info.principal.user.clone(),
            channel: Channel::OnSite,
            at: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(),
        },
        caller: None,
    };
    let issue = phone.event(
        "issue",
        EventData {
            category: Some("electrical".into()),
            urgency: Some(Urgency::Normal),
            ..EventData::default()
        },
    );
    let mut tx = phone.doc.transaction();
    doc::create_ticket(&mut tx, &header).unwrap();
    doc::append_event(&mut tx, &issue).unwrap();
    tx.commit();
}

#[test]
fn a_phone_creates_a_ticket_and_gets_its_serial_and_verdict() {
    let id = DocId::random();
    let mut relay = Relay::new(id);
    let mut eng = Phone::new(
        1,
        principal("eng1", Role::Engineer, Department::Engineering),
    );
    assert!(Document::may_start(&eng.info.principal, false));
    assert!(
        !Document::may_start(&eng.info.principal, true),
        "a request is for an existing document"
    );
    report(&mut eng);
    let (_, rejections) = relay.sync(&mut eng);
    assert!(rejections.is_empty(), "{rejections:?}");
    let t = read_ticket(&eng.doc, None).unwrap();
    assert_eq!(
        t.server.serial.map(|s| s.to_string()).as_deref(),
        Some("RO-2026-000001")
    );
    assert_eq!(t.server.verdicts.len(), 1);
    assert!(t.server.received_at.is_some());
    assert_eq!(
        Projection::official(&t, &Policy::default()).status,
        Status::Issued
    );
    // What was stored: the creation, the change, the verdict, no review.
    let c = &relay.stored[0];
    assert_eq!(c.create, Some(DocKind::Ticket));
    assert_eq!(c.changes.len(), 1);
    assert_eq!(c.verdicts.len(), 1);
    assert!(c.reviews.is_empty());
    assert!(c.inbox_queue, "a new ticket's inboxes are queued");
    assert!(matches!(relay.doc.class(), Some(DocClass::Ticket(_))));
}

#[test]
fn a_forged_change_is_rejected_the_peer_goes_read_only_and_nothing_merges() {
    let id = DocId::random();
    let mut relay = Relay::new(id);
    let mut eng = Phone::new(
        1,
        principal("eng1", Role::Engineer, Department::Engineering),
    );
    report(&mut eng);
    relay.sync(&mut eng);
    let heads = relay.doc.doc().get_heads();
    // An event claiming eng2 wrote it.
    let mut forged = eng.event("accept", EventData::default());
    forged.by = UserId::new("eng2").unwrap();
    let mut tx = eng.doc.transaction();
    doc::append_event(&mut tx, &forged).unwrap();
    tx.commit();
    let (_, rejections) = relay.sync(&mut eng);
    assert_eq!(rejections.len(), 1);
    assert_eq!(rejections[0].rule, HardRule::ForgedAuthor);
    assert_eq!(relay.doc.doc().get_heads(), heads, "nothing merged");
    let c = relay.stored.last().unwrap();
    assert_eq!(c.reviews.len(), 1);
    assert_eq!(c.reviews[0].kind, ReviewKind::HardRejected);
    assert!(
        c.reviews[0].payload.is_some(),
        "the raw change is kept for a manager"
    );
    // The peer's sync state is read-only: a further change is not judged.
    let start = eng.event("start", EventData::default());
    let mut tx = eng.doc.transaction();
    doc::append_event(&mut tx, &start).unwrap();
    tx.commit();
    let before = relay.stored.len();
    relay.sync(&mut eng);
    assert_eq!(relay.stored.len(), before);
}

#[test]
fn a_change_reaches_the_other_peers_of_the_document() {
    let id = DocId::random();
    let mut relay = Relay::new(id);
    let mut eng = Phone::new(
        1,
        principal("eng1", Role::Engineer, Department::Engineering),
    );
    report(&mut eng);
    relay.sync(&mut eng);
    // The front desk's phone fetches the ticket.
    let mut desk = Phone::new(
        2,
        principal("frontdesk", Role::FrontDesk, Department::CustomerService),
    );
    assert!(relay.doc.admits(&desk.info, false));
    relay.sync(&mut desk);
    assert!(read_ticket(&desk.doc, None).is_ok());
    // eng1 adds a note: the desk's phone is told unasked.
    let note = schema::ticket::Note {
        id: EventId::random(),
        by: eng.info.principal.user.clone(),
        device: eng.info.principal.device.clone(),
        at: Utc::now(),
        text: "the ballast hums".into(),
    };
    let mut tx = eng.doc.transaction();
    doc::append_note(&mut tx, &note).unwrap();
    tx.commit();
    let (others, _) = relay.sync(&mut eng);
    assert!(
        others
            .iter()
            .any(|e| matches!(e, Effect::Send(2, Message::Sync { .. }))),
        "the desk gets an update: {others:?}"
    );
}

#[test]
fn who_may_sync_a_ticket_is_decided_by_the_shared_rules() {
    let id = DocId::random();
    let mut relay = Relay::new(id);
    let mut eng = Phone::new(
        1,
        principal("eng1", Role::Engineer, Department::Engineering),
    );
    report(&mut eng);
    relay.sync(&mut eng);
    let cashier = peer(3, principal("cashier", Role::Cashier, Department::Finance));
    let other_eng = peer(
        4,
        principal("eng2", Role::Engineer, Department::Engineering),
    );
    let security = peer(
        5,
        principal("security1", Role::DepartmentStaff, Department::Security),
    );
    assert!(
        !relay.doc.admits(&cashier, false),
        "a free repair is not the cashier's"
    );
    assert!(
        !relay.doc.admits(&other_eng, false),
        "never assigned to eng2"
    );
    assert!(!relay.doc.admits(&security, false));
    assert!(relay.doc.admits(&eng.info, false), "its creator");
    // A document being created is open only to the peers creating it.
    let fresh = Document::empty(DocId::random(), &ActorId::random());
    assert!(!fresh.admits(&eng.info, false));
}

#[test]
fn a_creation_refused_whole_is_dropped_with_doc_unavailable() {
    let id = DocId::random();
    let mut relay = Relay::new(id);
    let mut eng = Phone::new(
        1,
        principal("eng1", Role::Engineer, Department::Engineering),
    );
    // Reported "by" someone else.
    let header = TicketHeader {
        kind: Kind::Repair,
        household: None,
        location: "B2".into(),
        title: "Forged".into(),
        description: String::new(),
        reported: Reported {
            by: UserId::new("frontdesk").unwrap(),
            channel: Channel::OnSite,
            at: Utc::now(),
        },
        caller: None,
    };
    let mut tx = eng.doc.transaction();
    doc::create_ticket(&mut tx, &header).unwrap();
    tx.commit();
    let mut gone = false;
    for _ in 0..5 {
        let Some(msg) = eng.doc.generate_sync_message(&mut eng.sync) else {
            break;
        };
        let received = relay.doc.receive(&eng.info, msg, false).unwrap();
        let known = relay.bindings.clone();
        let bindings = move |a: &ActorId| Ok(known.get(a).cloned());
        let cx = JudgeContext {
            relay: &relay.actor,
            policy: &relay.policy,
            limits: &relay.limits,
            bindings: &bindings,
            now: Utc::now(),
        };
        let step = relay.doc.judge(1, &received.chunks, &cx);
        let r = relay.doc.replies(&relay.id, 1, step.rejection);
        let (effects, dropped) = (r.effects, r.gone);
        if dropped {
            assert!(
                effects
                    .iter()
                    .any(|e| matches!(e, Effect::Send(1, Message::DocUnavailable { .. })))
            );
            gone = true;
            break;
        }
        for e in effects {
            if let Effect::Send(1, Message::Sync { data, .. }) = e {
                let m = SyncMessage::decode(&data).unwrap();
                eng.doc.receive_sync_message(&mut eng.sync, m).unwrap();
            }
        }
    }
    assert!(gone, "the refused creation is dropped");
}
