//! The offline engineer's three scenarios, end to end on real Automerge
//! documents: the relay judges each event against the document as it stood at
//! the change's dependencies (what the engineer saw) and against its own
//! latest state, exactly as DESIGN.md §5 describes.

use automerge::{AutoCommit, ChangeHash};
use chrono::{DateTime, Duration, TimeZone, Utc};
use schema::doc::{self, read_ticket};
use schema::ticket::{Channel, Reported, TicketHeader, Urgency};
use schema::{
    Action, DeviceId, Event, EventData, EventId, Kind, Outcome, Policy, Principal, Projection,
    Role, Status, UserId, VerdictRecord,
};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

fn person(name: &str, role: Role) -> Principal {
    Principal::new(
        UserId::new(name).unwrap(),
        role,
        DeviceId::new(format!("phone-{name}")).unwrap(),
    )
}

fn ev(who: &Principal, action: Action, minutes: i64, data: EventData) -> Event {
    Event {
        id: EventId::random(),
        action: action.as_str().into(),
        by: who.user.clone(),
        device: who.device.clone(),
        at: t0() + Duration::minutes(minutes),
        data,
    }
}

/// A minimal relay: one document, judging each new event of a merged change.
struct Relay {
    doc: AutoCommit,
    policy: Policy,
    staff: Vec<Principal>,
}

impl Relay {
    fn new(staff: Vec<Principal>) -> Self {
        let mut doc = AutoCommit::new();
        let header = TicketHeader {
            kind: Kind::Repair,
            household: None,
            location: "B2 lobby".into(),
            title: "Door closer broken".into(),
            description: String::new(),
            reported: Reported {
                by: UserId::new("frontdesk").unwrap(),
                channel: Channel::Phone,
                at: t0(),
            },
            caller: None,
        };
        doc::create_ticket(&mut doc, &header).unwrap();
        Self {
            doc,
            policy: Policy::default(),
            staff,
        }
    }

    fn principal(&self, user: &UserId) -> &Principal {
        self.staff.iter().find(|p| &p.user == user).unwrap()
    }

    /// Merges a device's document and judges every event without a verdict,
    /// in document order; returns the outcomes.
    fn sync_from(&mut self, device: &mut AutoCommit) -> Vec<(String, Outcome, String)> {
        let theirs: Vec<ChangeHash> = device.get_heads();
        self.doc.merge(device).unwrap();
        let mut outcomes = Vec::new();
        loop {
            let now = read_ticket(self.doc.document(), None).unwrap();
            let Some(e) = now.pending().next().cloned() else {
                break;
            };
            // What the author saw: the document at the heads of the change
            // that added the event (here: the device's heads), with the
            // author's earlier pending events applied.
            let at_deps = read_ticket(self.doc.document(), Some(&theirs)).unwrap();
            let who = self.principal(&e.by).clone();
            let seen = Projection::seen_before(&at_deps, &who, &e.id, &self.policy);
            let official = Projection::official(&now, &self.policy);
            let v = self.policy.judge(&who, &seen, &official, &e);
            let record = VerdictRecord {
                seq: now.next_seq(),
                outcome: v.outcome,
                rule: v.rule.name().into(),
                reason: v.reason.clone(),
                at: e.at,
            };
            doc::put_verdict(&mut self.doc, &e.id, &record).unwrap();
            outcomes.push((e.action.clone(), v.outcome, v.rule.name().to_owned()));
        }
        device.merge(&mut self.doc).unwrap();
        outcomes
    }

    fn act(&mut self, who: &Principal, action: Action, minutes: i64, data: EventData) -> Outcome {
        let mut desk = self.doc.fork();
        doc::append_event(&mut desk, &ev(who, action, minutes, data)).unwrap();
        let out = self.sync_from(&mut desk);
        out[0].1
    }

    fn official(&mut self) -> Projection {
        Projection::official(
            &read_ticket(self.doc.document(), None).unwrap(),
            &self.policy,
        )
    }
}

fn staff() -> Vec<Principal> {
    vec![
        person("frontdesk", Role::FrontDesk),
        person("engsup", Role::EngineeringSupervisor),
        person("eng1", Role::Engineer),
        person("eng2", Role::Engineer),
        person("eng3", Role::Engineer),
    ]
}

fn issued_and_assigned_to_eng1() -> Relay {
    let mut relay = Relay::new(staff());
    let desk = relay.principal(&UserId::new("frontdesk").unwrap()).clone();
    let issue = EventData {
        category: Some("door".into()),
        urgency: Some(Urgency::Normal),
        ..EventData::default()
    };
    assert_eq!(relay.act(&desk, Action::Issue, 0, issue), Outcome::Accepted);
    let assign = EventData {
        assignee: Some(UserId::new("eng1").unwrap()),
        ..EventData::default()
    };
    assert_eq!(
        relay.act(&desk, Action::Assign, 1, assign),
        Outcome::Accepted
    );
    relay
}

/// The engineer's phone records steps offline, one change each.
fn work_offline(phone: &mut AutoCommit, who: &Principal, steps: &[(Action, i64)]) {
    for (action, minutes) in steps {
        let data = match action {
            Action::Complete => EventData {
                result: Some("replaced the closer".into()),
                labour_min: Some(50),
                materials: Some(vec![]),
                ..EventData::default()
            },
            _ => EventData::default(),
        };
        doc::append_event(phone, &ev(who, *action, *minutes, data)).unwrap();
        phone.commit();
    }
}

#[test]
fn offline_accept_start_complete_while_assigned_is_accepted() {
    let mut relay = issued_and_assigned_to_eng1();
    let eng1 = relay.principal(&UserId::new("eng1").unwrap()).clone();
    let mut phone = relay.doc.fork();
    work_offline(
        &mut phone,
        &eng1,
        &[
            (Action::Accept, 10),
            (Action::Start, 40),
            (Action::Complete, 95),
        ],
    );
    let out = relay.sync_from(&mut phone);
    assert!(
        out.iter().all(|(_, o, _)| *o == Outcome::Accepted),
        "{out:?}"
    );
    let p = relay.official();
    assert_eq!(p.status, Status::Completed);
    assert_eq!(p.labour_min, 50);
    // The phone, after the sync, shows the same official state.
    let on_phone = Projection::official(
        &read_ticket(phone.document(), None).unwrap(),
        &Policy::default(),
    );
    assert_eq!(on_phone, p);
}

#[test]
fn offline_complete_after_a_transfer_away_is_a_conflict() {
    let mut relay = issued_and_assigned_to_eng1();
    let eng1 = relay.principal(&UserId::new("eng1").unwrap()).clone();
    let mut phone = relay.doc.fork();
    work_offline(&mut phone, &eng1, &[(Action::Accept, 10)]);
    relay.sync_from(&mut phone);
    // eng1 goes offline; the supervisor transfers the order to eng2.
    let es = relay.principal(&UserId::new("engsup").unwrap()).clone();
    let transfer = EventData {
        assignee: Some(UserId::new("eng2").unwrap()),
        reason: Some("eng1 is on another site".into()),
        ..EventData::default()
    };
    assert_eq!(
        relay.act(&es, Action::Transfer, 30, transfer),
        Outcome::Accepted
    );
    work_offline(
        &mut phone,
        &eng1,
        &[(Action::Start, 40), (Action::Complete, 95)],
    );
    let out = relay.sync_from(&mut phone);
    assert_eq!(
        out.iter()
            .map(|(a, o, _)| (a.as_str(), *o))
            .collect::<Vec<_>>(),
        [
            ("start", Outcome::Conflict),
            ("complete", Outcome::Conflict)
        ]
    );
    let p = relay.official();
    assert_eq!(
        (p.status, p.assignee.clone()),
        (Status::Assigned, Some(UserId::new("eng2").unwrap()))
    );
    assert_eq!(p.review.len(), 2, "both wait for a supervisor");
    // Nothing eng1 recorded is lost: the events stay in the document.
    let t = read_ticket(relay.doc.document(), None).unwrap();
    assert!(
        t.events
            .iter()
            .any(|e| e.action == "complete" && e.data.labour_min == Some(50))
    );
}

#[test]
fn completing_a_ticket_never_assigned_is_rejected() {
    let mut relay = issued_and_assigned_to_eng1();
    let eng3 = relay.principal(&UserId::new("eng3").unwrap()).clone();
    let before = relay.official();
    let mut phone = relay.doc.fork();
    work_offline(
        &mut phone,
        &eng3,
        &[
            (Action::Accept, 10),
            (Action::Start, 40),
            (Action::Complete, 95),
        ],
    );
    let out = relay.sync_from(&mut phone);
    assert!(
        out.iter().all(|(_, o, _)| *o == Outcome::Rejected),
        "{out:?}"
    );
    assert_eq!(out[0].2, "not_assignee");
    let after = relay.official();
    assert_eq!(
        (after.status, after.assignee.clone()),
        (before.status, before.assignee.clone())
    );
    assert_eq!(after.review.len(), 3);
    let t = read_ticket(relay.doc.document(), None).unwrap();
    assert_eq!(t.server.verdicts.len(), 5, "every event has a verdict");
    assert_eq!(
        relay.doc.get_heads(),
        phone.get_heads(),
        "the phone has every verdict too"
    );
}
