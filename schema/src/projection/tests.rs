//! Properties of the judge and the fold over random event sequences, and
//! flags from a given clock.

use chrono::Duration;
use proptest::prelude::*;

use crate::judge::Outcome;
use crate::lifecycle::{Action, Status};
use crate::money::Fen;
use crate::policy::Policy;
use crate::projection::{Flag, Projection};
use crate::role::Role;
use crate::testkit::{data_for, event, first_row, fitted, in_state, staff, t0};
use crate::ticket::{Event, EventData, Kind, VerdictRecord};

/// One step of a random history: which action, by which role, and how to
/// spoil its data.
#[derive(Clone, Debug)]
struct Step {
    action: usize,
    role: usize,
    spoil: u8,
    amount: i64,
    seen_lag: usize,
    minutes: i64,
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (
            0..Action::ALL.len(),
            0..Role::ALL.len(),
            any::<u8>(),
            -10_000i64..100_000,
            0usize..4,
            0i64..20_000,
        )
            .prop_map(|(action, role, spoil, amount, seen_lag, minutes)| Step {
                action,
                role,
                spoil,
                amount,
                seen_lag,
                minutes,
            }),
        0..60,
    )
}

/// Plays `steps` against a simulated relay; returns every judged event, in
/// verdict order, and the projection after each.
fn play(kind: Kind, steps: &[Step]) -> (Vec<(Event, VerdictRecord)>, Vec<Projection>) {
    let policy = Policy::default();
    let mut official = Projection::new(kind);
    let mut history = vec![official.clone()];
    let mut judged = Vec::new();
    // The first step is always the creation, so histories get somewhere.
    let creation = if kind.is_order() {
        Action::Issue
    } else {
        Action::Record
    };
    let lead = Step {
        action: Action::ALL.iter().position(|a| *a == creation).unwrap(),
        role: 0,
        spoil: 0,
        amount: 0,
        seen_lag: 0,
        minutes: 0,
    };
    for (i, s) in std::iter::once(&lead).chain(steps).enumerate() {
        let action = Action::ALL[s.action];
        let role = Role::ALL[s.role];
        let seen = history[history.len().saturating_sub(1 + s.seen_lag)].clone();
        let (who, mut data) = match first_row(action, kind) {
            Some(t) => {
                let who = fitted(role, t, &seen);
                let d = data_for(t, &seen, &who);
                (who, d)
            }
            None => (staff(role), EventData::default()),
        };
        match s.spoil % 6 {
            0 => data.amount_fen = Some(Fen::new(s.amount)),
            1 => data.quote_fen = Some(Fen::new(s.amount)),
            2 => data = EventData::default(),
            3 => data.labour_min = Some(s.amount),
            _ => {}
        }
        let at = t0() + Duration::minutes(s.minutes);
        let e = event(&who, action, at, data);
        let v = policy.judge(&who, &seen, &official, &e);
        let record = VerdictRecord {
            seq: u64::try_from(i + 1).unwrap(),
            outcome: v.outcome,
            rule: v.rule.name().into(),
            reason: v.reason,
            at,
        };
        official.fold_one(&e, &record, &policy);
        history.push(official.clone());
        judged.push((e, record));
    }
    (judged, history)
}

fn kinds() -> impl Strategy<Value = Kind> {
    proptest::sample::select(Kind::ALL)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Random histories never panic the judge or the fold, and the running
    /// fold equals the fold of the whole verdict sequence.
    #[test]
    fn random_histories_never_panic(kind in kinds(), steps in steps()) {
        let (judged, history) = play(kind, &steps);
        let folded = Projection::fold(kind, judged.iter().map(|(e, v)| (e, v)), &Policy::default());
        prop_assert_eq!(&folded, history.last().unwrap());
        let _ = folded.flags(t0() + Duration::days(30));
    }

    /// Every replica computes the same projection from the same verdicts,
    /// whatever order it holds the events in.
    #[test]
    fn the_fold_is_the_same_on_every_replica(kind in kinds(), steps in steps(), seed in any::<u64>()) {
        let (judged, _) = play(kind, &steps);
        let policy = Policy::default();
        let a = Projection::fold(kind, judged.iter().map(|(e, v)| (e, v)), &policy);
        let mut shuffled: Vec<_> = judged.iter().collect();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            let j = usize::try_from(x % (i as u64 + 1)).unwrap();
            shuffled.swap(i, j);
        }
        let b = Projection::fold(kind, shuffled.into_iter().map(|(e, v)| (e, v)), &policy);
        prop_assert_eq!(a, b);
    }

    /// Money: no amount on the ticket is negative, the balance never goes
    /// below zero, and a charge settled for less than it was needs a waiver.
    #[test]
    fn money_never_goes_negative_without_a_waiver(steps in steps()) {
        for kind in [Kind::PaidService, Kind::Repair] {
            let (judged, history) = play(kind, &steps);
            for p in &history {
                prop_assert!(!p.outstanding().is_negative());
                prop_assert!(p.collections.iter().all(|c| !c.amount.is_negative()));
                prop_assert!(p.waivers.iter().all(|w| !w.amount.is_negative()));
                prop_assert!(p.income() <= p.charge);
                if p.status == Status::Paid || p.status == Status::Waived {
                    prop_assert_eq!(p.outstanding(), Fen::ZERO);
                    if p.income() < p.charge {
                        prop_assert!(!p.waivers.is_empty());
                    }
                }
            }
            for (e, v) in &judged {
                if v.outcome == Outcome::Accepted && e.action() == Some(Action::Collect) {
                    prop_assert!(e.data.amount_fen.is_some_and(|a| !a.is_negative()));
                }
            }
        }
    }
}

#[test]
fn a_complaint_is_focus_after_seven_days_open() {
    let p = in_state(Kind::Complaint, Status::Routed).unwrap();
    let received = p.received_at.unwrap();
    assert!(
        !p.flags(received + Duration::days(7) - Duration::seconds(1))
            .contains(&Flag::Focus)
    );
    assert!(p.flags(received + Duration::days(7)).contains(&Flag::Focus));
    let closed = in_state(Kind::Complaint, Status::Closed).unwrap();
    assert!(
        !closed
            .flags(received + Duration::days(30))
            .contains(&Flag::Focus)
    );
    let need = in_state(Kind::Need, Status::Routed).unwrap();
    assert!(
        !need
            .flags(received + Duration::days(30))
            .contains(&Flag::Focus)
    );
}

#[test]
fn overdue_follows_the_current_step() {
    let p = in_state(Kind::Repair, Status::Issued).unwrap();
    let due = p.response_due.unwrap();
    assert!(!p.flags(due).contains(&Flag::Overdue));
    assert!(p.flags(due + Duration::seconds(1)).contains(&Flag::Overdue));
    let done = in_state(Kind::Repair, Status::Completed).unwrap();
    let return_due = done.return_due.unwrap();
    assert!(!done.flags(return_due).contains(&Flag::Overdue));
    assert!(
        done.flags(return_due + Duration::minutes(1))
            .contains(&Flag::Overdue)
    );
    let on_hold = in_state(Kind::Repair, Status::OnHold).unwrap();
    assert!(
        !on_hold
            .flags(due + Duration::days(30))
            .contains(&Flag::Overdue),
        "the clock pauses on hold"
    );
}

#[test]
fn return_visit_due_and_escalated_flags() {
    let p = in_state(Kind::Repair, Status::Returned).unwrap();
    assert!(!p.paid);
    let due = p.visit_due.unwrap();
    assert!(
        !p.flags(due - Duration::seconds(1))
            .contains(&Flag::ReturnVisitDue)
    );
    assert!(p.flags(due).contains(&Flag::ReturnVisitDue));

    let policy = Policy::default();
    let mut p = in_state(Kind::Repair, Status::Assigned).unwrap();
    let css = staff(Role::Supervisor);
    let t = first_row(Action::Escalate, Kind::Repair).unwrap();
    let e = event(&css, Action::Escalate, t0(), data_for(t, &p, &css));
    let row = policy.check(&css, &p, &e).unwrap();
    p.apply(&e, row, t0(), &policy);
    assert_eq!(
        p.status,
        Status::Assigned,
        "escalation is a flag, not a state"
    );
    assert!(p.flags(t0()).contains(&Flag::Escalated));
}

#[test]
fn a_paid_order_goes_to_the_cashier_on_return_and_is_collected_in_fen() {
    let p = in_state(Kind::PaidService, Status::ChargePending).unwrap();
    assert_eq!(p.charge, Fen::new(5_000));
    assert_eq!(p.outstanding(), Fen::new(5_000));
    let paid = in_state(Kind::PaidService, Status::Paid).unwrap();
    assert_eq!(paid.income(), Fen::new(5_000));
    assert_eq!(paid.outstanding(), Fen::ZERO);
    let waived = in_state(Kind::PaidService, Status::Waived).unwrap();
    assert_eq!(waived.waivers[0].amount, Fen::new(5_000));
    assert_eq!(waived.income(), Fen::ZERO);
}

#[test]
fn a_wrong_amount_is_refused_with_the_amounts() {
    let policy = Policy::default();
    let p = in_state(Kind::PaidService, Status::ChargePending).unwrap();
    let cash = staff(Role::Cashier);
    let t = first_row(Action::Collect, Kind::PaidService).unwrap();
    let mut data = data_for(t, &p, &cash);
    data.amount_fen = Some(Fen::new(4_999));
    let f = policy
        .check(&cash, &p, &event(&cash, Action::Collect, t0(), data))
        .unwrap_err();
    assert_eq!(f.rule.name(), "amount_mismatch");
    assert!(
        f.reason.contains("¥49.99") && f.reason.contains("¥50.00"),
        "{}",
        f.reason
    );
}

#[test]
fn concluded_return_visits_are_kept_one_per_cycle() {
    let policy = Policy::default();
    let desk = staff(Role::FrontDesk);
    let visit = |p: &mut Projection, reached: bool, at| {
        let t = first_row(Action::ReturnVisit, p.kind).unwrap();
        let mut d = data_for(t, p, &desk);
        if !reached {
            d.contact_result = Some(crate::ticket::ContactResult::Unreachable);
            d.satisfaction = None;
        }
        let e = event(&desk, Action::ReturnVisit, at, d);
        let row = policy.check(&desk, p, &e).unwrap();
        p.apply(&e, row, at, &policy);
    };

    // A paid order's visit falls due when the cashier is done, not on return.
    let pending = in_state(Kind::PaidService, Status::ChargePending).unwrap();
    assert_eq!(pending.visit_due, None);
    let paid = in_state(Kind::PaidService, Status::Paid).unwrap();
    assert!(paid.visit_due.is_some());

    // An unreachable attempt is not a visit; the second one concludes it.
    let mut order = in_state(Kind::Repair, Status::Returned).unwrap();
    let due = order.visit_due.unwrap();
    visit(&mut order, false, due + Duration::hours(1));
    assert!(order.visits.is_empty());
    assert_eq!(order.status, Status::Returned);
    visit(&mut order, false, due + Duration::hours(30));
    assert_eq!(order.status, Status::ReturnVisited);
    let v = &order.visits[..];
    assert_eq!(v.len(), 1);
    assert_eq!(
        (v[0].reached, v[0].attempts, v[0].due, v[0].at),
        (false, 2, Some(due), due + Duration::hours(30))
    );

    // A complaint reached and dissatisfied, reopened: the visit stays, the
    // next one falls due only after the next reply.
    let mut c = in_state(Kind::Complaint, Status::Responded).unwrap();
    let due = c.visit_due.unwrap();
    visit(&mut c, true, due - Duration::hours(2));
    assert_eq!(c.visits.len(), 1);
    assert!(c.visits[0].reached);
    assert_eq!(
        c.visits[0].satisfaction,
        Some(crate::ticket::Satisfaction::Dissatisfied)
    );
    assert_eq!(c.visits[0].at, due - Duration::hours(2), "an early visit");
    let t = first_row(Action::Reopen, Kind::Complaint).unwrap();
    let e = event(&desk, Action::Reopen, t0(), data_for(t, &c, &desk));
    let row = policy.check(&desk, &c, &e).unwrap();
    c.apply(&e, row, t0(), &policy);
    assert_eq!(c.status, Status::Routed);
    assert_eq!(c.visit_due, None);
    assert_eq!(c.visits.len(), 1, "the first cycle's visit is kept");
}
