//! Judging batches without IO: histories in which devices build changes on
//! old heads and reuse ids of entries anywhere in the document. Whatever the
//! history, the document reads (no id twice), each verdict belongs to exactly
//! the event body the relay judged, and the official projection every reader
//! computes equals the fold of what the relay judged.

use std::collections::{BTreeMap, HashMap};

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;
use schema::doc::{self, read_ticket};
use schema::ticket::{Attachment, Channel, Material, Note, Reported, TicketHeader, Urgency};
use schema::{
    Action, Department, DeviceId, Event, EventData, EventId, Fen, Kind, Policy, Principal,
    Projection, Role, Serial, UserId, VerdictRecord,
};

use super::*;

fn principal(name: &str, role: Role, department: Department) -> Principal {
    Principal {
        user: UserId::new(name).unwrap(),
        role,
        department,
        device: DeviceId::new(format!("{name}-phone")).unwrap(),
    }
}

fn staff() -> Vec<Principal> {
    vec![
        principal("eng1", Role::Engineer, Department::Engineering),
        principal("eng2", Role::Engineer, Department::Engineering),
        principal("frontdesk", Role::FrontDesk, Department::CustomerService),
        principal(
            "engsup",
            Role::EngineeringSupervisor,
            Department::Engineering,
        ),
    ]
}

/// The relay's side: the document, what it keeps between batches, the
/// actor bindings, and the model of everything it judged.
struct Relay {
    actor: ActorId,
    policy: Policy,
    doc: Automerge,
    summary: Option<Summary>,
    bindings: HashMap<ActorId, (DeviceId, UserId)>,
    judged: BTreeMap<String, (Event, VerdictRecord)>,
    history: Vec<Vec<ChangeHash>>,
    serials: u32,
    clock: chrono::DateTime<Utc>,
}

impl Relay {
    fn new() -> Self {
        Self {
            actor: ActorId::random(),
            policy: Policy::default(),
            doc: Automerge::new(),
            summary: None,
            bindings: HashMap::new(),
            judged: BTreeMap::new(),
            history: Vec::new(),
            serials: 0,
            clock: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap(),
        }
    }

    /// Judges `changes` from `author` and, as the hub's write does, seals
    /// the verdicts (and a serial) into the document.
    fn receive(&mut self, author: &Principal, changes: Vec<automerge::Change>) -> Ingest {
        self.clock += Duration::minutes(5);
        let bindings = self.bindings.clone();
        let lookup = move |a: &ActorId| Ok(bindings.get(a).cloned());
        let limits = validate::Limits::default();
        let cx = Context {
            author,
            relay_actor: &self.actor,
            policy: &self.policy,
            limits: &limits,
            bindings: &lookup,
            now: self.clock,
        };
        let mut out = judge_batch(&self.doc, self.summary.take(), changes, &cx);
        for a in &out.new_actors {
            self.bindings
                .insert(a.clone(), (author.device.clone(), author.user.clone()));
        }
        if let Some(mut trial) = out.trial.take() {
            trial.set_actor(self.actor.clone());
            let mut t = trial.transaction();
            for j in &out.judged {
                doc::put_verdict(&mut t, &j.event.id, &j.record).unwrap();
            }
            if let Some(series) = out.serial_due {
                self.serials += 1;
                doc::set_serial(&mut t, Serial::new(series, 2026, self.serials).unwrap()).unwrap();
            }
            t.commit();
            self.doc = trial;
            for j in &out.judged {
                let previous = self
                    .judged
                    .insert(j.event.id.to_string(), (j.event.clone(), j.record.clone()));
                assert!(
                    previous.is_none(),
                    "an event id judged twice: {}",
                    j.event.id
                );
            }
            self.summary = out.summary.take().map(|mut s| {
                s.heads = self.doc.get_heads();
                s
            });
            self.history.push(self.doc.get_heads());
        }
        out
    }

    /// Every id in the document now.
    fn ids(&self) -> Vec<EventId> {
        let t = read_ticket(&self.doc, None).expect("the relay's ticket reads");
        (t.events.iter().map(|e| e.id.clone()))
            .chain(t.notes.iter().map(|n| n.id.clone()))
            .chain(t.attachments.iter().map(|a| a.id.clone()))
            .collect()
    }
}

fn actor_of(p: &Principal) -> ActorId {
    ActorId::from(format!("{:0<32}", hex::encode(p.user.as_str())).as_bytes()[..16].to_vec())
}

/// What a device adds in one step.
#[derive(Clone, Debug)]
enum What {
    Event(Action),
    Note,
    Attachment,
}

fn data_for(action: Action) -> EventData {
    match action {
        Action::Hold | Action::HandBack => EventData {
            reason: Some("awaiting parts".into()),
            ..EventData::default()
        },
        Action::Complete => EventData {
            result: Some("replaced the washer".into()),
            labour_min: Some(30),
            materials: Some(vec![Material {
                name: "washer".into(),
                qty: 1,
                unit_fen: Fen::new(150),
            }]),
            resident_absent: Some(true),
            witness: Some("guard".into()),
            ..EventData::default()
        },
        Action::Transfer => EventData {
            assignee: Some(UserId::new("eng2").unwrap()),
            reason: Some("eng1 is off sick".into()),
            ..EventData::default()
        },
        _ => EventData::default(),
    }
}

/// The change `who` makes adding `what` with `id` on the document as it was
/// at `heads` (a branch, as automerge's `changeAt` makes it).
fn change(
    relay: &Relay,
    who: &Principal,
    heads: &[ChangeHash],
    what: &What,
    id: EventId,
    at: chrono::DateTime<Utc>,
) -> automerge::Change {
    let mut device = relay.doc.fork().with_actor(actor_of(who));
    let mut tx = device
        .transaction_at(automerge::patches::PatchLog::inactive(), heads)
        .expect("heads the relay had");
    match what {
        What::Event(action) => doc::append_event(
            &mut tx,
            &Event {
                id,
                action: action.as_str().into(),
                by: who.user.clone(),
                device: who.device.clone(),
                at,
                data: data_for(*action),
            },
        ),
        What::Note => doc::append_note(
            &mut tx,
            &Note {
                id,
                by: who.user.clone(),
                device: who.device.clone(),
                at,
                text: "a note".into(),
            },
        ),
        What::Attachment => doc::append_attachment(
            &mut tx,
            &Attachment {
                id,
                sha256: "ab".repeat(32),
                mime: "image/jpeg".into(),
                size: 10,
                caption: String::new(),
                by: who.user.clone(),
                device: who.device.clone(),
                at,
            },
        ),
    }
    .expect("a well-formed entry");
    let (hash, _) = tx.commit();
    device
        .get_change_by_hash(&hash.expect("a change"))
        .expect("the change")
}

/// A repair issued by the front desk and assigned to eng1.
fn issued(relay: &mut Relay) {
    let out = issued_with(relay, None);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
}

/// A repair with `caller`, issued by the front desk and assigned to eng1.
fn issued_with(relay: &mut Relay, caller: Option<schema::ticket::Caller>) -> Ingest {
    let desk = &staff()[2];
    let mut d = Automerge::new().with_actor(actor_of(desk));
    let mut tx = d.transaction();
    doc::create_ticket(
        &mut tx,
        &TicketHeader {
            kind: Kind::Repair,
            household: None,
            location: "B1 lobby".into(),
            title: "Light out".into(),
            description: String::new(),
            reported: Reported {
                by: desk.user.clone(),
                channel: Channel::Phone,
                at: relay.clock,
            },
            caller,
        },
    )
    .unwrap();
    let issue = |action: Action, data: EventData| Event {
        id: EventId::random(),
        action: action.as_str().into(),
        by: desk.user.clone(),
        device: desk.device.clone(),
        at: relay.clock,
        data,
    };
    doc::append_event(
        &mut tx,
        &issue(
            Action::Issue,
            EventData {
                category: Some("electrical".into()),
                urgency: Some(Urgency::Normal),
                ..EventData::default()
            },
        ),
    )
    .unwrap();
    doc::append_event(
        &mut tx,
        &issue(
            Action::Assign,
            EventData {
                assignee: Some(UserId::new("eng1").unwrap()),
                ..EventData::default()
            },
        ),
    )
    .unwrap();
    tx.commit();
    relay.receive(desk, d.get_changes(&[]))
}

/// A new ticket carries its caller's number masked: a whole number (which
/// would sync to every engineer and patroller of the ticket) is refused.
#[test]
fn a_callers_number_in_a_ticket_must_be_masked() {
    let caller = |phone: &str| {
        Some(schema::ticket::Caller {
            name: "王芳".into(),
            phone: phone.into(),
            read_back: true,
        })
    };
    let mut relay = Relay::new();
    let out = issued_with(&mut relay, caller("139 1234 5678"));
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].1.rule, HardRule::BadShape);
    assert!(out.rejected[0].1.reason.contains("masked"));
    let mut relay = Relay::new();
    let out = issued_with(&mut relay, caller("139 **** 5678"));
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let t = read_ticket(&relay.doc, None).unwrap();
    assert_eq!(t.header.caller, caller("139 **** 5678"));
}

#[derive(Clone, Debug)]
struct Step {
    who: usize,
    /// Which earlier version of the document the change is built on.
    base: usize,
    what: What,
    /// Reuse the id of an entry already in the document (by index), or a fresh one.
    reuse: Option<usize>,
    /// Drop what the relay kept from its last commit (as eviction does).
    evict: bool,
}

fn step() -> impl Strategy<Value = Step> {
    let what = prop_oneof![
        prop::sample::select(vec![
            Action::Accept,
            Action::Start,
            Action::Hold,
            Action::Resume,
            Action::Complete,
            Action::HandBack,
            Action::Transfer,
            Action::Close,
        ])
        .prop_map(What::Event),
        Just(What::Note),
        Just(What::Attachment),
    ];
    (
        0..4usize,
        any::<usize>(),
        what,
        prop::option::weighted(0.4, any::<usize>()),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(who, base, what, reuse, evict)| Step {
            who,
            base,
            what,
            reuse,
            evict,
        })
}

fn run(steps: &[Step]) {
    let staff = staff();
    let mut relay = Relay::new();
    issued(&mut relay);
    for s in steps {
        if s.evict {
            relay.summary = None;
        }
        let who = &staff[s.who];
        let ids = relay.ids();
        let (id, reused) = match s.reuse {
            Some(i) => (ids[i % ids.len()].clone(), true),
            None => (EventId::random(), false),
        };
        let heads = relay.history[s.base % relay.history.len()].clone();
        let at = relay.clock;
        let c = change(&relay, who, &heads, &s.what, id, at);
        let out = relay.receive(who, vec![c]);
        let duplicate = out
            .rejected
            .iter()
            .any(|(_, r)| r.rule == HardRule::DuplicateId);
        assert_eq!(
            duplicate, reused,
            "an id already in the document is refused, a fresh one is not: {:?}",
            out.rejected
        );
        // The document always reads: no id twice, on any branch.
        read_ticket(&relay.doc, None).expect("the relay's document reads");
    }
    let t = read_ticket(&relay.doc, None).unwrap();
    // Each verdict belongs to the body the relay judged, and every event has one.
    for e in &t.events {
        let (body, record) = relay
            .judged
            .get(e.id.as_str())
            .unwrap_or_else(|| panic!("event {} was never judged", e.id));
        assert_eq!(e, body, "the event under id {} is the one judged", e.id);
        assert_eq!(t.server.verdicts.get(&e.id), Some(record));
    }
    assert_eq!(t.events.len(), relay.judged.len());
    let fold = Projection::fold(
        t.header.kind,
        relay.judged.values().map(|(e, r)| (e, r)),
        &relay.policy,
    );
    assert_eq!(Projection::official(&t, &relay.policy), fold);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(48),
        ..ProptestConfig::default()
    })]

    #[test]
    fn branches_with_colliding_ids_never_give_a_verdict_two_bodies(
        steps in prop::collection::vec(step(), 1..14)
    ) {
        run(&steps);
    }
}

/// The history of the issue's report, as one case: an engineer accepts,
/// then on the heads before the accept appends a `close` under the
/// accept's id.
#[test]
fn a_close_under_an_accepted_events_id_is_refused() {
    let staff = staff();
    let eng1 = &staff[0];
    let mut relay = Relay::new();
    issued(&mut relay);
    let old = relay.doc.get_heads();
    let accept = EventId::random();
    let heads = relay.doc.get_heads();
    let at = relay.clock;
    let c = change(
        &relay,
        eng1,
        &heads,
        &What::Event(Action::Accept),
        accept.clone(),
        at,
    );
    let out = relay.receive(eng1, vec![c]);
    assert!(out.rejected.is_empty());
    let c = change(&relay, eng1, &old, &What::Event(Action::Close), accept, at);
    let out = relay.receive(eng1, vec![c]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].1.rule, HardRule::DuplicateId);
    let t = read_ticket(&relay.doc, None).unwrap();
    assert_eq!(
        Projection::official(&t, &relay.policy).status,
        schema::Status::Accepted
    );
}

/// An engineer transferred away: work made before they saw the transfer
/// still flushes; a note made after they saw it is refused.
#[test]
fn a_former_assignee_is_read_only_once_they_saw_the_transfer() {
    let staff = staff();
    let (eng1, engsup) = (&staff[0], &staff[3]);
    let mut relay = Relay::new();
    issued(&mut relay);
    let before_transfer = relay.doc.get_heads();
    let at = relay.clock;
    let heads = relay.doc.get_heads();
    let t = change(
        &relay,
        engsup,
        &heads,
        &What::Event(Action::Transfer),
        EventId::random(),
        at,
    );
    assert!(relay.receive(engsup, vec![t]).rejected.is_empty());
    // Made offline before the transfer reached the phone: flushes.
    let offline = change(
        &relay,
        eng1,
        &before_transfer,
        &What::Note,
        EventId::random(),
        at,
    );
    assert!(relay.receive(eng1, vec![offline]).rejected.is_empty());
    // Made on a view that shows the transfer: refused.
    let heads = relay.doc.get_heads();
    let late = change(
        &relay,
        eng1,
        &heads,
        &What::Attachment,
        EventId::random(),
        at,
    );
    let out = relay.receive(eng1, vec![late]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].1.rule, HardRule::ReadOnly);
}

/// automerge-repo's JavaScript clients write seconds; ours milliseconds.
#[test]
fn a_changes_time_is_read_in_seconds_or_milliseconds() {
    let t = Utc.with_ymd_and_hms(2026, 11, 27, 8, 30, 0).unwrap();
    assert_eq!(authored_at(t.timestamp()), t);
    assert_eq!(authored_at(t.timestamp_millis()), t);
    assert_eq!(authored_at(0), chrono::DateTime::<Utc>::default());
}

/// A phone's offline work arrives as one line of changes, each on the one
/// before: judged from one read of the fork (in debug builds every view is
/// also checked against the read at its change), each event against what
/// its author saw then, so a step needing the one before is accepted.
#[test]
fn an_offline_line_of_changes_is_judged_step_by_step_from_one_read() {
    let staff = staff();
    let eng1 = &staff[0];
    let mut relay = Relay::new();
    issued(&mut relay);
    let base = relay.doc.get_heads();
    let mut phone = relay.doc.fork().with_actor(actor_of(eng1));
    let at = relay.clock;
    let event = |action: Action| Event {
        id: EventId::random(),
        action: action.as_str().into(),
        by: eng1.user.clone(),
        device: eng1.device.clone(),
        at,
        data: data_for(action),
    };
    let mut ids = Vec::new();
    for action in [Action::Accept, Action::Start, Action::Complete] {
        let e = event(action);
        ids.push(e.id.clone());
        let mut tx = phone.transaction();
        doc::append_event(&mut tx, &e).unwrap();
        tx.commit();
        let mut tx = phone.transaction();
        doc::append_note(
            &mut tx,
            &Note {
                id: EventId::random(),
                by: eng1.user.clone(),
                device: eng1.device.clone(),
                at,
                text: format!("after {action}"),
            },
        )
        .unwrap();
        tx.commit();
    }
    let line = phone.get_changes(&base);
    assert_eq!(line.len(), 6);
    let out = relay.receive(eng1, line);
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let judged: Vec<_> = out
        .judged
        .iter()
        .map(|j| (j.event.id.clone(), j.record.outcome))
        .collect();
    assert_eq!(
        judged,
        ids.iter()
            .map(|id| (id.clone(), Outcome::Accepted))
            .collect::<Vec<_>>()
    );
    let t = read_ticket(&relay.doc, None).unwrap();
    assert_eq!(
        Projection::official(&t, &relay.policy).status,
        schema::Status::Completed
    );

    // A line whose third change reuses the first one's id: that change and
    // the one after it are refused, the first two kept.
    let base = relay.doc.get_heads();
    let mut phone = relay.doc.fork().with_actor(actor_of(eng1));
    let first = EventId::random();
    for id in [first.clone(), EventId::random(), first, EventId::random()] {
        let mut tx = phone.transaction();
        doc::append_note(
            &mut tx,
            &Note {
                id,
                by: eng1.user.clone(),
                device: eng1.device.clone(),
                at,
                text: "a note".into(),
            },
        )
        .unwrap();
        tx.commit();
    }
    let line = phone.get_changes(&base);
    let out = relay.receive(eng1, line);
    assert_eq!(out.accepted.len(), 2, "{:?}", out.rejected);
    assert_eq!(out.rejected.len(), 2);
    assert!(
        out.rejected
            .iter()
            .any(|(_, r)| r.rule == HardRule::DuplicateId),
        "{:?}",
        out.rejected
    );
}

/// Not a test: the figures behind BENCHMARKS.md's "one read per batch" row.
/// `cargo test --release -p propsync-relay-core -- --ignored one_read --nocapture`
#[test]
#[ignore = "a benchmark, run by hand in release"]
fn one_read_against_a_read_per_change() {
    use std::time::Instant;
    let staff = staff();
    let eng1 = &staff[0];
    let mut relay = Relay::new();
    issued(&mut relay);
    // A ticket with some history, then a phone's line of 10 changes.
    for _ in 0..20 {
        let heads = relay.doc.get_heads();
        let at = relay.clock;
        let c = change(&relay, eng1, &heads, &What::Note, EventId::random(), at);
        assert!(relay.receive(eng1, vec![c]).rejected.is_empty());
    }
    let base = relay.doc.get_heads();
    let mut phone = relay.doc.fork().with_actor(actor_of(eng1));
    for i in 0..10 {
        let mut tx = phone.transaction();
        doc::append_note(
            &mut tx,
            &Note {
                id: EventId::random(),
                by: eng1.user.clone(),
                device: eng1.device.clone(),
                at: relay.clock,
                text: format!("offline {i}"),
            },
        )
        .unwrap();
        tx.commit();
    }
    let line = phone.get_changes(&base);
    let hashes: Vec<ChangeHash> = line.iter().map(automerge::Change::hash).collect();
    let mut trial = relay.doc.fork();
    trial.apply_changes(line.clone()).unwrap();
    let rounds = 200;
    let t = Instant::now();
    for _ in 0..rounds {
        for (i, h) in hashes.iter().enumerate() {
            let at = if i + 1 == hashes.len() {
                read_ticket(&trial, None)
            } else {
                read_ticket(&trial, Some(&[*h]))
            };
            std::hint::black_box(at.unwrap());
        }
    }
    let per_change = t.elapsed() / rounds;
    let entries: Vec<Vec<Entry>> = hashes
        .iter()
        .map(|h| {
            let t = read_ticket(&trial, Some(&[*h])).unwrap();
            vec![Entry::Note(t.notes.last().unwrap().clone())]
        })
        .collect();
    let t = Instant::now();
    for _ in 0..rounds {
        let chain = Chain::of(&trial, &trial.get_heads(), &line, &entries, eng1).unwrap();
        for i in 0..hashes.len() {
            std::hint::black_box(chain.at(i));
        }
    }
    let one = t.elapsed() / rounds;
    eprintln!(
        "views of a 10-change line on a 30-entry ticket: a read per change {per_change:?}, one read {one:?} ({:.1}x)",
        per_change.as_secs_f64() / one.as_secs_f64()
    );
}
