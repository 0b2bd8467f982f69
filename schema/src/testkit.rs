//! Test helpers: canonical staff, events with data that satisfies a row, and a
//! search over the transition table that reaches every state.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::lifecycle::{self, Action, Field, Guard, Status, TABLE, To, Transition};
use crate::money::Fen;
use crate::policy::Policy;
use crate::projection::{Escalation, Projection, ReviewItem};
use crate::role::{Department, Principal, Role};
use crate::ticket::{ContactResult, Event, EventData, Kind, Material, Satisfaction, Urgency};
use crate::{DeviceId, DocId, EventId, Outcome, UserId};

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

pub(crate) fn user(name: &str) -> UserId {
    UserId::new(name).unwrap()
}

/// The canonical person for each role.
pub(crate) fn staff(role: Role) -> Principal {
    let (name, dept) = match role {
        Role::FrontDesk => ("frontdesk", Department::CustomerService),
        Role::Supervisor => ("supervisor", Department::CustomerService),
        Role::Dispatcher => ("dispatcher", Department::Engineering),
        Role::Engineer => ("eng1", Department::Engineering),
        Role::EngineeringSupervisor => ("engsup", Department::Engineering),
        Role::DepartmentStaff => ("security1", Department::Security),
        Role::Cashier => ("cashier", Department::Finance),
        Role::Manager => ("manager", Department::Management),
        Role::System => ("system", Department::Management),
    };
    Principal {
        user: user(name),
        role,
        department: dept,
        device: DeviceId::new(format!("dev-{name}")).unwrap(),
    }
}

pub(crate) fn event(by: &Principal, action: Action, at: DateTime<Utc>, data: EventData) -> Event {
    Event {
        id: EventId::random(),
        action: action.as_str().to_owned(),
        by: by.user.clone(),
        device: by.device.clone(),
        at,
        data,
    }
}

/// Data that satisfies `t`'s requirements and guards for `who` on `p`.
pub(crate) fn data_for(t: &Transition, p: &Projection, who: &Principal) -> EventData {
    let eng1 = user("eng1");
    let mut d = EventData {
        reason: Some("reason given".into()),
        result: Some("work done".into()),
        labour_min: Some(45),
        materials: Some(vec![Material {
            name: "washer".into(),
            qty: 2,
            unit_fen: Fen::new(150),
        }]),
        category: Some("plumbing".into()),
        urgency: Some(Urgency::Normal),
        receipt: Some("R-0001".into()),
        method: Some("wechat".into()),
        contact_result: Some(ContactResult::Reached),
        satisfaction: Some(Satisfaction::Dissatisfied),
        contractor: Some("City Lifts Ltd".into()),
        linked: Some(DocId::from_bytes([9; 16]).url()),
        owner: Some(user("supervisor")),
        next_step: Some("call the resident".into()),
        due_at: Some(t0() + Duration::days(3)),
        copy_received: Some(true),
        quote_fen: Some(Fen::new(5_000)),
        amount_fen: Some(p.outstanding()),
        ..EventData::default()
    };
    d.assignee = Some(match t.action {
        Action::Grab => who.user.clone(),
        Action::Transfer if p.assignee.as_ref() == Some(&eng1) => user("eng2"),
        _ => eng1,
    });
    d.department = Some(match (t.action, p.department) {
        (Action::Reroute, Some(Department::Security)) => Department::Cleaning,
        _ => Department::Security,
    });
    d.target = p
        .review
        .iter()
        .find(|r| r.resolution.is_none())
        .map(|r| r.event.id.clone());
    d
}

/// The principal of `role` fitted to `t`'s guards on `p` (the assignee for
/// assignee-only steps, the routed department for department steps).
pub(crate) fn fitted(role: Role, t: &Transition, p: &Projection) -> Principal {
    let mut who = staff(role);
    let needs_assignee = t.guards.contains(&Guard::Assignee)
        || (t.guards.contains(&Guard::AssigneeIfEngineer) && role == Role::Engineer);
    if needs_assignee && let Some(a) = &p.assignee {
        who.user = a.clone();
    }
    if t.guards.contains(&Guard::RoutedDepartment)
        && let Some(d) = p.department
    {
        who.department = d;
    }
    who
}

/// Gives `p` what `t`'s guards need beyond the path that reached it: an open
/// review item, an open escalation.
pub(crate) fn prepared(t: &Transition, mut p: Projection) -> Projection {
    let eng3 = staff(Role::Engineer);
    if t.guards.contains(&Guard::OpenReviewItem) {
        p.review.push(ReviewItem {
            event: event(&eng3, Action::Accept, t0(), EventData::default()),
            outcome: Outcome::Rejected,
            rule: "not_assignee".into(),
            reason: "test".into(),
            seq: 99,
            resolution: None,
        });
    }
    if t.guards.contains(&Guard::EscalationOpen) && p.escalation.is_none() {
        p.escalation = Some(Escalation {
            reason: "major leak".into(),
            by: user("manager"),
            at: t0(),
            decision: None,
            owner: None,
            due_at: None,
            resolved_at: None,
        });
    }
    p
}

/// Every state reachable for `kind` (paid or free), with the projection the
/// shortest path there gives.
pub(crate) fn reachable(kind: Kind, paid: bool) -> BTreeMap<Status, Projection> {
    let policy = Policy::default();
    let mut found = BTreeMap::new();
    let mut start = Projection::new(kind);
    start.paid = paid || kind == Kind::PaidService;
    found.insert(Status::New, start.clone());
    let mut queue = VecDeque::from([start]);
    let mut clock = t0();
    while let Some(p) = queue.pop_front() {
        for t in TABLE.iter().filter(|t| {
            t.kinds.contains(&kind)
                && t.from.contains(&p.status)
                && !t.automatic
                && t.to != To::Stay
        }) {
            for &role in t.roles {
                let who = fitted(role, t, &p);
                let mut data = data_for(t, &p, &who);
                if matches!(t.action, Action::Issue) {
                    data.paid = Some(start_paid(kind, paid));
                }
                clock += Duration::minutes(5);
                let e = event(&who, t.action, clock, data);
                if let Ok(row) = policy.check(&who, &p, &e) {
                    let mut next = p.clone();
                    next.apply(&e, row, clock, &policy);
                    if let std::collections::btree_map::Entry::Vacant(slot) =
                        found.entry(next.status)
                    {
                        slot.insert(next.clone());
                        queue.push_back(next);
                    }
                    break;
                }
            }
        }
    }
    found
}

fn start_paid(kind: Kind, paid: bool) -> bool {
    paid || kind == Kind::PaidService
}

/// The projection in `status` for `kind`, free or paid, whichever reaches it.
pub(crate) fn in_state(kind: Kind, status: Status) -> Option<Projection> {
    static ALL: std::sync::OnceLock<BTreeMap<(Kind, bool), BTreeMap<Status, Projection>>> =
        std::sync::OnceLock::new();
    let all = ALL.get_or_init(|| {
        Kind::ALL
            .iter()
            .flat_map(|&k| [(k, false), (k, true)])
            .map(|(k, paid)| ((k, paid), reachable(k, paid)))
            .collect()
    });
    [false, true]
        .into_iter()
        .find_map(|paid| all[&(kind, paid)].get(&status).cloned())
}

/// Whether `t` is one of the rows for every kind (escalation, review, checks),
/// whose `from` lists states of both orders and matters.
pub(crate) fn is_generic(t: &Transition) -> bool {
    t.kinds.len() == Kind::ALL.len()
}

/// Every (kind, from-state, projection) a row can be tried in.
pub(crate) fn cases(t: &Transition) -> Vec<(Kind, Status, Projection)> {
    let mut out = Vec::new();
    for &kind in t.kinds {
        for &from in t.from {
            match in_state(kind, from) {
                Some(p) => out.push((kind, from, p)),
                None => assert!(
                    is_generic(t),
                    "{kind}: no path reaches {from}, needed by {}",
                    t.action
                ),
            }
        }
    }
    out
}

/// Sets `field` of `data` to absent.
pub(crate) fn without(mut d: EventData, field: Field) -> EventData {
    match field {
        Field::Assignee => d.assignee = None,
        Field::Reason => d.reason = None,
        Field::Result => d.result = None,
        Field::LabourMin => d.labour_min = None,
        Field::Materials => d.materials = None,
        Field::Category => d.category = None,
        Field::Urgency => d.urgency = None,
        Field::Department => d.department = None,
        Field::AmountFen => d.amount_fen = None,
        Field::Receipt => d.receipt = None,
        Field::Method => d.method = None,
        Field::ContactResult => d.contact_result = None,
        Field::Contractor => d.contractor = None,
        Field::Linked => d.linked = None,
        Field::Target => d.target = None,
        Field::Owner => d.owner = None,
        Field::NextStep => d.next_step = None,
        Field::DueAt => d.due_at = None,
        Field::CopyReceived => d.copy_received = None,
    }
    d
}

/// All non-automatic rows.
pub(crate) fn manual_rows() -> impl Iterator<Item = &'static Transition> {
    TABLE.iter().filter(|t| !t.automatic)
}

/// Rows of `action` that apply to `kind`.
pub(crate) fn first_row(action: Action, kind: Kind) -> Option<&'static Transition> {
    lifecycle::rows(action, kind).next()
}
