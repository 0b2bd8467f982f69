//! The transition table, row by row: the allowed roles succeed, every other
//! role is refused by name, missing data is refused, terminal states take
//! annotations only. And the three scenarios of an offline engineer.

use chrono::Duration;

use crate::judge::{Outcome, Rule};
use crate::lifecycle::{Action, Status, TABLE};
use crate::policy::Policy;
use crate::projection::Projection;
use crate::role::Role;
use crate::testkit::{
    cases, data_for, event, first_row, fitted, in_state, is_generic, manual_rows, prepared,
    reachable, staff, t0, without,
};
use crate::ticket::{EventData, Kind};
use crate::{EventId, judge};

#[test]
fn every_state_named_in_the_table_is_reachable_for_its_kinds() {
    let mut missing = Vec::new();
    for t in manual_rows().filter(|t| !is_generic(t)) {
        for &kind in t.kinds {
            for &from in t.from {
                if in_state(kind, from).is_none() {
                    missing.push(format!(
                        "{kind}: no path reaches {from}, needed by {}",
                        t.action
                    ));
                }
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
    for &kind in Kind::ALL {
        let open = Status::ALL
            .iter()
            .filter(|s| s.is_open() && in_state(kind, **s).is_some())
            .count();
        assert!(open >= 2, "{kind} reaches only {open} open states");
    }
}

#[test]
fn every_transition_accepts_its_roles_and_refuses_the_others() {
    let policy = Policy::default();
    let mut checked = 0;
    for t in manual_rows() {
        for (kind, from, p) in cases(t) {
            {
                let p = prepared(t, p);
                for role in Role::ALL {
                    let who = fitted(role, t, &p);
                    let e = event(
                        &who,
                        t.action,
                        t0() + Duration::hours(1),
                        data_for(t, &p, &who),
                    );
                    let got = policy.check(&who, &p, &e);
                    let ctx = format!("{} by {role} on a {from} {kind}", t.action);
                    if t.roles.contains(&role) {
                        let row = got.unwrap_or_else(|f| panic!("{ctx}: refused: {f:?}"));
                        assert!(std::ptr::eq(row, t), "{ctx}: took another row");
                        let v = judge(&who, &p, &p, &e);
                        assert_eq!(v.outcome, Outcome::Accepted, "{ctx}: {v:?}");
                    } else {
                        let f = got.expect_err(&ctx);
                        assert_eq!(f.rule, Rule::RoleNotAllowed, "{ctx}: {f:?}");
                        assert_eq!(f.rule.name(), "role_not_allowed");
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 500, "only {checked} cases");
}

#[test]
fn every_required_field_is_required() {
    let policy = Policy::default();
    for t in manual_rows() {
        for (kind, _, p) in cases(t) {
            let p = prepared(t, p);
            let who = fitted(t.roles[0], t, &p);
            for &field in t.requires {
                let data = without(data_for(t, &p, &who), field);
                let e = event(&who, t.action, t0(), data);
                let f = policy
                    .check(&who, &p, &e)
                    .expect_err("missing data accepted");
                assert_eq!(f.rule, Rule::MissingData(field), "{} {kind}", t.action);
                assert_eq!(f.rule.name(), "missing_data");
                assert!(f.reason.contains(field.key()), "{}", f.reason);
            }
        }
    }
}

#[test]
fn terminal_states_accept_only_annotations() {
    let policy = Policy::default();
    let terminal = [
        Status::Closed,
        Status::Voided,
        Status::Cancelled,
        Status::Withdrawn,
        Status::Merged,
    ];
    let mut terminal_seen = 0;
    for &kind in Kind::ALL {
        for status in terminal {
            let Some(p) = in_state(kind, status) else {
                continue;
            };
            terminal_seen += 1;
            for &action in Action::ALL {
                let Some(t) = first_row(action, kind) else {
                    continue;
                };
                if t.automatic {
                    continue;
                }
                let p = prepared(t, p.clone());
                let who = fitted(t.roles[0], t, &p);
                let e = event(&who, action, t0(), data_for(t, &p, &who));
                let got = policy.check(&who, &p, &e);
                if t.is_annotation() {
                    assert!(got.is_ok(), "{action} on a {status} {kind}: {got:?}");
                } else {
                    let f = got.expect_err("terminal state took a step");
                    assert_eq!(f.rule, Rule::TerminalState, "{action} on a {status} {kind}");
                }
            }
        }
    }
    assert!(
        terminal_seen >= 12,
        "only {terminal_seen} terminal states reached"
    );
}

#[test]
fn a_step_from_the_wrong_state_names_the_state() {
    let policy = Policy::default();
    let p = in_state(Kind::Repair, Status::Issued).unwrap();
    let eng = staff(Role::Engineer);
    let e = event(&eng, Action::Complete, t0(), EventData::default());
    let f = policy.check(&eng, &p, &e).unwrap_err();
    assert_eq!(f.rule, Rule::WrongState);
    assert!(f.reason.contains("ISSUED"), "{}", f.reason);
}

#[test]
fn unknown_actions_and_forged_authors_are_rejected() {
    let p = in_state(Kind::Repair, Status::Assigned).unwrap();
    let eng = staff(Role::Engineer);
    let mut e = event(&eng, Action::Accept, t0(), EventData::default());
    e.action = "teleport".into();
    assert_eq!(judge(&eng, &p, &p, &e).rule, Rule::UnknownAction);
    let mut e = event(&eng, Action::Accept, t0(), EventData::default());
    e.by = crate::testkit::user("eng2");
    let v = judge(&eng, &p, &p, &e);
    assert_eq!(
        (v.outcome, v.rule),
        (Outcome::Rejected, Rule::AuthorMismatch)
    );
}

#[test]
fn matters_have_no_order_steps() {
    let p = in_state(Kind::Praise, Status::Recorded).unwrap();
    let rec = staff(Role::FrontDesk);
    let e = event(
        &rec,
        Action::Void,
        t0(),
        EventData {
            reason: Some("x".into()),
            ..EventData::default()
        },
    );
    assert_eq!(judge(&rec, &p, &p, &e).rule, Rule::NotForKind);
}

/// Folds events one by one as the relay would, judging each against `seen`
/// (what the author saw) and the running official state.
struct Relay {
    official: Projection,
    policy: Policy,
    seq: u64,
}

impl Relay {
    fn new(kind: Kind) -> Self {
        Self {
            official: Projection::new(kind),
            policy: Policy::default(),
            seq: 0,
        }
    }

    fn judge(&mut self, who: &crate::Principal, seen: &Projection, e: &crate::Event) -> Outcome {
        let v = self.policy.judge(who, seen, &self.official, e);
        self.seq += 1;
        let record = crate::VerdictRecord {
            seq: self.seq,
            outcome: v.outcome,
            rule: v.rule.name().into(),
            reason: v.reason,
            at: e.at,
        };
        self.official.fold_one(e, &record, &self.policy);
        v.outcome
    }
}

fn issued_and_assigned_to_eng1() -> (Relay, Projection) {
    let mut relay = Relay::new(Kind::Repair);
    let rec = staff(Role::FrontDesk);
    let t = first_row(Action::Issue, Kind::Repair).unwrap();
    let issue = event(
        &rec,
        Action::Issue,
        t0(),
        data_for(t, &relay.official, &rec),
    );
    let seen = relay.official.clone();
    assert_eq!(relay.judge(&rec, &seen, &issue), Outcome::Accepted);
    let t = first_row(Action::Assign, Kind::Repair).unwrap();
    let assign = event(
        &rec,
        Action::Assign,
        t0(),
        data_for(t, &relay.official, &rec),
    );
    let seen = relay.official.clone();
    assert_eq!(relay.judge(&rec, &seen, &assign), Outcome::Accepted);
    let snapshot = relay.official.clone();
    (relay, snapshot)
}

/// The engineer's device works offline from `snapshot`, applying its own
/// steps on top; returns the events with what the engineer saw before each.
fn offline_work(
    who: &crate::Principal,
    snapshot: &Projection,
    steps: &[Action],
) -> Vec<(Projection, crate::Event)> {
    let policy = Policy::default();
    let mut view = snapshot.clone();
    let mut out = Vec::new();
    for (i, &action) in steps.iter().enumerate() {
        let t = crate::lifecycle::rows(action, view.kind).find(|t| t.from.contains(&view.status));
        let data = t.map_or_else(EventData::default, |t| data_for(t, &view, who));
        let at = t0() + Duration::hours(1) + Duration::minutes(i64::try_from(i).unwrap());
        let e = event(who, action, at, data);
        let seen = view.clone();
        if let Ok(row) = policy.check(who, &view, &e) {
            view.apply(&e, row, at, &policy);
        }
        out.push((seen, e));
    }
    out
}

#[test]
fn offline_engineer_accept_start_complete_while_assigned_is_accepted() {
    let (mut relay, snapshot) = issued_and_assigned_to_eng1();
    let eng1 = staff(Role::Engineer);
    for (seen, e) in offline_work(
        &eng1,
        &snapshot,
        &[Action::Accept, Action::Start, Action::Complete],
    ) {
        assert_eq!(
            relay.judge(&eng1, &seen, &e),
            Outcome::Accepted,
            "{}",
            e.action
        );
    }
    assert_eq!(relay.official.status, Status::Completed);
    assert_eq!(relay.official.labour_min, 45);
}

#[test]
fn offline_engineer_completing_after_a_transfer_is_a_conflict() {
    let (mut relay, snapshot) = issued_and_assigned_to_eng1();
    let eng1 = staff(Role::Engineer);
    // eng1 accepted while online.
    let work = offline_work(&eng1, &snapshot, &[Action::Accept]);
    assert_eq!(
        relay.judge(&eng1, &work[0].0, &work[0].1),
        Outcome::Accepted
    );
    let after_accept = relay.official.clone();
    // The engineering supervisor transfers the order while eng1 is offline.
    let es = staff(Role::EngineeringSupervisor);
    let t = first_row(Action::Transfer, Kind::Repair).unwrap();
    let transfer = event(
        &es,
        Action::Transfer,
        t0() + Duration::minutes(30),
        data_for(t, &relay.official, &es),
    );
    let seen = relay.official.clone();
    assert_eq!(relay.judge(&es, &seen, &transfer), Outcome::Accepted);
    // eng1, offline, starts and completes; then syncs.
    let outcomes: Vec<Outcome> =
        offline_work(&eng1, &after_accept, &[Action::Start, Action::Complete])
            .iter()
            .map(|(seen, e)| relay.judge(&eng1, seen, e))
            .collect();
    assert_eq!(outcomes, [Outcome::Conflict, Outcome::Conflict]);
    assert_eq!(relay.official.status, Status::Assigned);
    assert_eq!(relay.official.assignee, Some(crate::testkit::user("eng2")));
    assert_eq!(
        relay.official.review.len(),
        2,
        "both steps wait in the review queue"
    );
    assert_eq!(relay.official.review[1].rule, "wrong_state");
}

#[test]
fn completing_a_ticket_never_assigned_to_you_is_rejected() {
    let (mut relay, snapshot) = issued_and_assigned_to_eng1();
    let mut eng3 = staff(Role::Engineer);
    eng3.user = crate::testkit::user("eng3");
    let outcomes: Vec<(Outcome, String)> = offline_work(
        &eng3,
        &snapshot,
        &[Action::Accept, Action::Start, Action::Complete],
    )
    .iter()
    .map(|(seen, e)| {
        let v = relay.policy.judge(&eng3, seen, &relay.official, e);
        relay.judge(&eng3, seen, e);
        (v.outcome, v.rule.name().to_owned())
    })
    .collect();
    assert_eq!(outcomes[0], (Outcome::Rejected, "not_assignee".to_owned()));
    assert_eq!(outcomes[2].0, Outcome::Rejected);
    assert_eq!(
        relay.official.status,
        Status::Assigned,
        "the projection is unchanged"
    );
    assert_eq!(relay.official.assignee, Some(crate::testkit::user("eng1")));
}

#[test]
fn a_supervisor_override_applies_a_conflicting_completion() {
    let (mut relay, snapshot) = issued_and_assigned_to_eng1();
    let eng1 = staff(Role::Engineer);
    let work = offline_work(&eng1, &snapshot, &[Action::Accept, Action::Start]);
    for (seen, e) in &work {
        relay.judge(&eng1, seen, e);
    }
    let before = relay.official.clone();
    let es = staff(Role::EngineeringSupervisor);
    let t = first_row(Action::Hold, Kind::Repair).unwrap();
    let hold = event(
        &es,
        Action::Hold,
        t0() + Duration::minutes(70),
        data_for(t, &relay.official, &es),
    );
    let seen = relay.official.clone();
    relay.judge(&es, &seen, &hold);
    let done = offline_work(&eng1, &before, &[Action::Complete]);
    assert_eq!(
        relay.judge(&eng1, &done[0].0, &done[0].1),
        Outcome::Conflict
    );
    let target: EventId = done[0].1.id.clone();
    let css = staff(Role::Supervisor);
    let ov = event(
        &css,
        Action::Override,
        t0() + Duration::hours(3),
        EventData {
            target: Some(target.clone()),
            reason: Some("work confirmed by phone".into()),
            ..EventData::default()
        },
    );
    let seen = relay.official.clone();
    assert_eq!(relay.judge(&css, &seen, &ov), Outcome::Accepted);
    assert_eq!(relay.official.status, Status::Completed);
    assert!(relay.official.open_review_item(&target).is_none());
    // A second decision on the same item finds nothing open.
    let again = event(
        &css,
        Action::Dismiss,
        t0() + Duration::hours(4),
        ov.data.clone(),
    );
    let v = judge(&css, &relay.official, &relay.official, &again);
    assert_eq!(v.rule.name(), "no_open_review_item");
}

#[test]
fn grab_is_first_come() {
    let mut relay = Relay::new(Kind::Repair);
    let rec = staff(Role::FrontDesk);
    let t = first_row(Action::Issue, Kind::Repair).unwrap();
    let issue = event(
        &rec,
        Action::Issue,
        t0(),
        data_for(t, &relay.official, &rec),
    );
    let seen = relay.official.clone();
    relay.judge(&rec, &seen, &issue);
    let snapshot = relay.official.clone();
    let eng1 = staff(Role::Engineer);
    let mut eng2 = staff(Role::Engineer);
    eng2.user = crate::testkit::user("eng2");
    let g1 = offline_work(&eng1, &snapshot, &[Action::Grab]);
    let g2 = offline_work(&eng2, &snapshot, &[Action::Grab]);
    assert_eq!(relay.judge(&eng2, &g2[0].0, &g2[0].1), Outcome::Accepted);
    assert_eq!(relay.judge(&eng1, &g1[0].0, &g1[0].1), Outcome::Conflict);
    assert_eq!(relay.official.assignee, Some(eng2.user));
}

#[test]
fn the_table_covers_domain_rows() {
    // A spot check that the numbered rows of DOMAIN.md §3 are all present.
    let order_actions = [
        Action::Issue,
        Action::Assign,
        Action::Grab,
        Action::Accept,
        Action::HandBack,
        Action::Transfer,
        Action::Start,
        Action::Hold,
        Action::Resume,
        Action::Complete,
        Action::CannotFix,
        Action::Outsource,
        Action::CloseUnfixable,
        Action::Return,
        Action::Charge,
        Action::Collect,
        Action::Waive,
        Action::ReturnVisit,
        Action::Close,
        Action::Rework,
        Action::Void,
        Action::Cancel,
        Action::Escalate,
    ];
    for a in order_actions {
        assert!(
            TABLE
                .iter()
                .any(|t| t.action == a && t.kinds.contains(&Kind::Repair)),
            "{a}"
        );
    }
    let r = reachable(Kind::Repair, true);
    for s in [
        Status::ChargePending,
        Status::Paid,
        Status::Waived,
        Status::ReturnVisited,
        Status::Closed,
    ] {
        assert!(r.contains_key(&s), "paid repair never reaches {s}");
    }
}
