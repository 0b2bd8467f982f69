//! Reports against fixed event histories with known answers: aging buckets,
//! the 7-day FOCUS rule, serial continuity with a void, collection totals in
//! fen, and what "as of" does with late arrivals.

use chrono::{DateTime, Duration, Utc};
use schema::ticket::{Channel, Material, Reported, Satisfaction, ServerSection, TicketHeader};
use schema::{
    DeviceId, DocId, Event, EventData, EventId, Fen, Kind, Outcome, Policy, Serial, Series, Ticket,
    UserId, VerdictRecord,
};
use serde_json::{Value, json};

use super::daily::*;
use super::weekly::*;
use super::*;
use crate::settings::DEFAULT_TIME_ZONE;

fn t0() -> DateTime<Utc> {
    "2026-03-02T01:00:00Z".parse().expect("a time")
}

fn user(name: &str) -> UserId {
    UserId::new(name).expect("a user id")
}

/// A ticket built event by event; every event is judged `accepted` at the
/// time given (relay time) unless said otherwise.
struct Built {
    id: DocId,
    t: Ticket,
}

fn ticket(kind: Kind, received: DateTime<Utc>) -> Built {
    let header = TicketHeader {
        kind,
        household: None,
        location: "B1-101".into(),
        title: format!("a {kind}"),
        description: String::new(),
        reported: Reported {
            by: user("frontdesk"),
            channel: Channel::Phone,
            at: received,
        },
        caller: None,
    };
    let mut t = Ticket::new(header);
    t.server = ServerSection {
        received_at: Some(received),
        ..ServerSection::default()
    };
    let b = Built {
        id: DocId::random(),
        t,
    };
    let create = if kind.is_order() { "issue" } else { "record" };
    b.ev(
        create,
        "frontdesk",
        EventData {
            category: Some("plumbing".into()),
            urgency: Some(schema::ticket::Urgency::Normal),
            paid: Some(kind == Kind::PaidService),
            ..EventData::default()
        },
        received,
    )
}

impl Built {
    fn ev(self, action: &str, by: &str, data: EventData, at: DateTime<Utc>) -> Self {
        self.judged(action, by, data, at, at, Outcome::Accepted)
    }

    fn judged(
        mut self,
        action: &str,
        by: &str,
        data: EventData,
        at: DateTime<Utc>,
        judged_at: DateTime<Utc>,
        outcome: Outcome,
    ) -> Self {
        let e = Event {
            id: EventId::random(),
            action: action.into(),
            by: user(by),
            device: DeviceId::new(format!("{by}-phone")).expect("a device id"),
            at,
            data,
        };
        let seq = self.t.next_seq();
        self.t.server.verdicts.insert(
            e.id.clone(),
            VerdictRecord {
                seq,
                outcome,
                rule: "allowed".into(),
                reason: String::new(),
                at: judged_at,
            },
        );
        self.t.events.push(e);
        self
    }

    fn serial(mut self, n: u32) -> Self {
        self.t.server.serial = Some(Serial::new(Series::Ro, 2026, n).expect("a serial"));
        self
    }

    fn done(self) -> (DocId, Ticket) {
        (self.id, self.t)
    }

    /// Assign, accept, start, complete (with a quote and materials), all at `at`.
    fn worked(self, eng: &str, at: DateTime<Utc>, quote: i64) -> Self {
        self.ev(
            "assign",
            "frontdesk",
            EventData {
                assignee: Some(user(eng)),
                ..EventData::default()
            },
            at,
        )
        .ev("accept", eng, EventData::default(), at)
        .ev("start", eng, EventData::default(), at)
        .ev(
            "complete",
            eng,
            EventData {
                result: Some("fixed".into()),
                labour_min: Some(30),
                materials: Some(vec![Material {
                    name: "valve".into(),
                    qty: 2,
                    unit_fen: Fen::new(1_250),
                }]),
                quote_fen: Some(Fen::new(quote)),
                ..EventData::default()
            },
            at,
        )
    }

    fn returned(self, at: DateTime<Utc>) -> Self {
        self.ev(
            "return",
            "frontdesk",
            EventData {
                copy_received: Some(true),
                ..EventData::default()
            },
            at,
        )
    }
}

fn reason(r: &str) -> EventData {
    EventData {
        reason: Some(r.into()),
        ..EventData::default()
    }
}

/// The view of the cut-off's local day (Shanghai). Every report at this
/// cut-off, for this day and for the week, is first checked to come out the
/// same from the tickets the relay's read model gives a period (open, or
/// touched since its start) as from every ticket.
fn view<'a>(all: &'a [(DocId, Ticket)], as_of: DateTime<Utc>, policy: &'a Policy) -> View<'a> {
    let from = crate::settings::day_start(as_of, DEFAULT_TIME_ZONE);
    for start in [
        from,
        crate::settings::week_start(as_of, DEFAULT_TIME_ZONE),
        from - Duration::days(30),
    ] {
        the_read_model_suffices(all, as_of, start, policy);
    }
    View::new(all, as_of, from, DEFAULT_TIME_ZONE, policy)
}

fn the_read_model_suffices(
    all: &[(DocId, Ticket)],
    as_of: DateTime<Utc>,
    from: DateTime<Utc>,
    policy: &Policy,
) {
    use crate::store::records::models::{relevant, touched_at};
    let devices = [];
    let whole = View::new(all, as_of, from, DEFAULT_TIME_ZONE, policy);
    let needed: Vec<(DocId, Ticket)> = all
        .iter()
        .filter(|(_, t)| {
            let open = !Projection::official(t, policy).status.is_terminal();
            relevant(open, touched_at(t), from)
        })
        .cloned()
        .collect();
    let mut part = View::new(&needed, as_of, from, DEFAULT_TIME_ZONE, policy);
    part.numbered.clone_from(&whole.numbered);
    for def in REPORTS.iter().filter(|d| d.name != "fee-collection") {
        let a = compute(def.name, &whole, &devices).expect("a report");
        let b = compute(def.name, &part, &devices).expect("a report");
        assert_eq!(
            serde_json::to_value(&a).expect("json"),
            serde_json::to_value(&b).expect("json"),
            "{} as of {as_of} from {from}: the read model's tickets give another report",
            def.name
        );
    }
}

fn figure(r: &Report, label: &str) -> Value {
    r.figure(label)
        .cloned()
        .unwrap_or_else(|| panic!("no figure {label:?} in {:?}", r.summary))
}

#[test]
fn buckets_have_inclusive_lower_bounds() {
    let check = |age: Duration, expected: &str| {
        assert_eq!(BUCKETS[bucket(age)], expected, "{age:?}");
    };
    check(Duration::minutes(0), "<1d");
    check(Duration::hours(23) + Duration::minutes(59), "<1d");
    check(Duration::hours(24), "1–3d");
    check(Duration::hours(71), "1–3d");
    check(Duration::days(3), "3–7d");
    check(Duration::days(7), "7–14d");
    check(Duration::days(14), "14–30d");
    check(Duration::days(30), ">30d");
    check(Duration::days(400), ">30d");
}

#[test]
fn weekly_summary_puts_open_items_in_aging_buckets() {
    let now = t0() + Duration::days(60);
    let ages = [
        Duration::hours(1),
        Duration::hours(23),
        Duration::hours(24),
        Duration::days(2),
        Duration::days(5),
        Duration::days(10),
        Duration::days(20),
        Duration::days(40),
    ];
    let mut all: Vec<(DocId, Ticket)> = ages
        .iter()
        .map(|a| ticket(Kind::Repair, now - *a).done())
        .collect();
    // Closed and voided tickets are not unresolved, however old.
    all.push(
        ticket(Kind::Repair, now - Duration::days(9))
            .ev(
                "void",
                "frontdesk",
                reason("duplicate"),
                now - Duration::days(9),
            )
            .done(),
    );
    all.push(
        ticket(Kind::Need, now - Duration::days(3))
            .ev(
                "answer",
                "frontdesk",
                EventData {
                    result: Some("told them".into()),
                    ..EventData::default()
                },
                now - Duration::days(3),
            )
            .done(),
    );
    // A complaint open 8 days: in the 7–14d bucket and FOCUS.
    all.push(ticket(Kind::Complaint, now - Duration::days(8)).done());
    let policy = Policy::default();
    let r = weekly_unresolved(&view(&all, now, &policy));
    let counts: Vec<Value> = BUCKETS.iter().map(|b| figure(&r, b)).collect();
    assert_eq!(counts, [2, 2, 1, 2, 1, 1].map(|n| json!(n)));
    assert_eq!(figure(&r, "open"), 9);
    assert_eq!(figure(&r, "FOCUS"), 1);
    let g = r.table("By kind and department").expect("groups");
    assert_eq!(g.rows.len(), 2, "{:?}", g.rows);
    assert_eq!(g.column("total"), [&json!(8), &json!(1)]);
    let chart = &r.charts[0];
    assert_eq!(chart.labels.len(), 6);
    let repair = chart
        .series
        .iter()
        .find(|s| s.name == "repair")
        .expect("repair series");
    assert_eq!(repair.values, [2.0, 2.0, 1.0, 1.0, 1.0, 1.0]);

    // As of ten days earlier, only what existed then, aged as it was then.
    let earlier = now - Duration::days(10);
    let r = weekly_unresolved(&view(&all, earlier, &policy));
    assert_eq!(
        figure(&r, "open"),
        3,
        "the 10-day-old repair, just received, and the 20- and 40-day-old ones"
    );
    assert_eq!(figure(&r, "<1d"), 1);
    assert_eq!(figure(&r, "7–14d"), 1);
    assert_eq!(figure(&r, "14–30d"), 0);
    assert_eq!(figure(&r, ">30d"), 1);
}

#[test]
fn a_complaint_is_focus_from_seven_days_until_it_closes() {
    let received = t0();
    let closed_at = received + Duration::days(9);
    let open = ticket(Kind::Complaint, received)
        .ev(
            "route",
            "frontdesk",
            EventData {
                department: Some(schema::Department::Security),
                ..EventData::default()
            },
            received + Duration::hours(1),
        )
        .ev(
            "follow_up",
            "supervisor",
            EventData {
                owner: Some(user("security1")),
                next_step: Some("meet the resident".into()),
                due_at: Some(received + Duration::days(8)),
                ..EventData::default()
            },
            received + Duration::days(7) + Duration::hours(1),
        )
        .done();
    let closes = ticket(Kind::Complaint, received)
        .ev(
            "withdraw",
            "frontdesk",
            reason("resident withdrew"),
            closed_at,
        )
        .done();
    let younger = ticket(Kind::Complaint, received + Duration::days(1)).done();
    let not_a_complaint = ticket(Kind::Suggestion, received).done();
    let all = vec![open, closes, younger, not_a_complaint];
    let policy = Policy::default();
    let focus_at = |as_of| {
        let r = focus_complaints(&view(&all, as_of, &policy));
        figure(&r, "FOCUS complaints")
    };
    assert_eq!(
        focus_at(received + Duration::days(7) - Duration::minutes(1)),
        0
    );
    assert_eq!(focus_at(received + Duration::days(7)), 2);
    assert_eq!(focus_at(received + Duration::days(8)), 3);
    assert_eq!(
        focus_at(closed_at),
        2,
        "the withdrawn complaint leaves the list"
    );

    let r = focus_complaints(&view(&all, received + Duration::days(7), &policy));
    assert_eq!(
        figure(&r, "without a named follow-up owner"),
        2,
        "the follow-up was named an hour after the cut-off"
    );
    let r = focus_complaints(&view(&all, received + Duration::days(8), &policy));
    let t = r.table("FOCUS complaints").expect("table");
    assert!(t.column("owner").contains(&&json!("security1")), "{t:?}");
    assert!(
        t.column("next_step").contains(&&json!("meet the resident")),
        "{t:?}"
    );
    assert!(
        t.column("actions")
            .contains(&&json!(["record", "route", "follow_up"])),
        "{t:?}"
    );
}

#[test]
fn continuity_holds_with_a_void_and_finds_a_gap() {
    let at = t0();
    let policy = Policy::default();
    let voided = ticket(Kind::Repair, at + Duration::minutes(10))
        .serial(2)
        .ev(
            "void",
            "frontdesk",
            reason("wrong entry"),
            at + Duration::minutes(15),
        )
        .done();
    let all = vec![
        ticket(Kind::Repair, at).serial(1).done(),
        voided,
        ticket(Kind::Repair, at + Duration::minutes(20))
            .serial(3)
            .done(),
        // A matter has no number.
        ticket(Kind::Praise, at).done(),
    ];
    let r = serial_register(&view(&all, at + Duration::hours(1), &policy));
    assert_eq!(figure(&r, "issued in the period"), 3);
    assert_eq!(figure(&r, "void"), 1);
    assert_eq!(figure(&r, "open"), 2);
    assert_eq!(figure(&r, "continuous"), true);
    let c = r.table("Continuity").expect("continuity");
    assert_eq!(c.column("missing"), [&json!([])]);
    let t = r.table("Numbers issued in the period").expect("numbers");
    assert_eq!(
        t.column("serial"),
        [
            &json!("RO-2026-000001"),
            &json!("RO-2026-000002"),
            &json!("RO-2026-000003")
        ]
    );
    assert_eq!(
        t.column("state"),
        [&json!("open"), &json!("void"), &json!("open")]
    );
    assert_eq!(t.column("reason")[1], &json!("wrong entry"));

    // As of before number 3 was issued: two numbers, still continuous.
    let r = serial_register(&view(&all, at + Duration::minutes(12), &policy));
    assert_eq!(figure(&r, "issued in the period"), 2);
    assert_eq!(figure(&r, "void"), 0, "the void came later");
    assert_eq!(figure(&r, "continuous"), true);

    // A missing number, and a number issued before an earlier one.
    let gap = vec![
        ticket(Kind::Repair, at).serial(1).done(),
        ticket(Kind::Repair, at + Duration::minutes(30))
            .serial(3)
            .done(),
        ticket(Kind::Repair, at + Duration::minutes(20))
            .serial(4)
            .done(),
    ];
    let r = serial_register(&view(&gap, at + Duration::hours(1), &policy));
    assert_eq!(figure(&r, "continuous"), false);
    let c = r.table("Continuity").expect("continuity");
    assert_eq!(c.column("missing"), [&json!([2])]);
    assert_eq!(c.column("out_of_order"), [&json!([4])]);

    // The next day's register lists the next day's numbers, and the
    // continuity check still covers the whole year.
    let next_day = vec![
        ticket(Kind::Repair, at).serial(1).done(),
        ticket(Kind::Repair, at + Duration::days(1))
            .serial(2)
            .done(),
    ];
    let r = serial_register(&view(&next_day, at + Duration::days(1), &policy));
    assert_eq!(figure(&r, "issued in the period"), 1);
    let t = r.table("Numbers issued in the period").expect("numbers");
    assert_eq!(t.column("serial"), [&json!("RO-2026-000002")]);
    let c = r.table("Continuity").expect("continuity");
    assert_eq!(c.column("issued"), [&json!(2)]);
}

#[test]
fn cashier_close_totals_collections_waivers_and_costs_in_fen() {
    let day = t0();
    let yesterday = day - Duration::days(1);
    let collect = |amount: i64, receipt: &str| EventData {
        amount_fen: Some(Fen::new(amount)),
        receipt: Some(receipt.into()),
        method: Some("wechat".into()),
        ..EventData::default()
    };
    let all = vec![
        ticket(Kind::PaidService, day)
            .serial(1)
            .worked("eng1", day, 8_000)
            .returned(day)
            .ev(
                "collect",
                "cashier",
                collect(8_000, "R-1"),
                day + Duration::hours(2),
            )
            .done(),
        ticket(Kind::PaidService, day)
            .serial(2)
            .worked("eng2", day, 12_050)
            .returned(day)
            .ev(
                "collect",
                "cashier",
                collect(12_050, "R-2"),
                day + Duration::hours(3),
            )
            .done(),
        // Collected yesterday: not in today's close.
        ticket(Kind::PaidService, yesterday)
            .serial(3)
            .worked("eng1", yesterday, 3_000)
            .returned(yesterday)
            .ev("collect", "cashier", collect(3_000, "R-0"), yesterday)
            .done(),
        // Waived today.
        ticket(Kind::PaidService, day)
            .serial(4)
            .worked("eng1", day, 2_000)
            .returned(day)
            .ev(
                "waive",
                "supervisor",
                reason("elderly resident"),
                day + Duration::hours(4),
            )
            .done(),
        // Awaiting the cashier.
        ticket(Kind::PaidService, day)
            .serial(5)
            .worked("eng3", day, 5_000)
            .returned(day)
            .done(),
        // Free repair: materials cost counts, no charge.
        ticket(Kind::Repair, day)
            .serial(6)
            .worked("eng2", day, 0)
            .done(),
    ];
    let policy = Policy::default();
    let r = cashier_close(&view(&all, day + Duration::hours(10), &policy));
    assert_eq!(figure(&r, "collections"), 2);
    assert_eq!(figure(&r, "collected (fen)"), 20_050);
    assert_eq!(figure(&r, "collected"), "¥200.50");
    assert_eq!(figure(&r, "waived (fen)"), 2_000);
    assert_eq!(figure(&r, "outstanding (fen)"), 5_000);
    assert_eq!(figure(&r, "orders awaiting the cashier"), 1);
    // Five orders completed today, each with 2 × ¥12.50 of valves.
    assert_eq!(figure(&r, "materials cost (fen)"), 5 * 2_500);
    let w = r.table("Waivers").expect("waivers");
    assert_eq!(w.column("approver"), [&json!("supervisor")]);
    let c = r.table("Collections").expect("collections");
    assert_eq!(c.column("receipt"), [&json!("R-1"), &json!("R-2")]);

    // As of before the second collection and the waiver: only the first
    // collection; the other two still owed.
    let r = cashier_close(&view(&all, day + Duration::hours(2), &policy));
    assert_eq!(figure(&r, "collected (fen)"), 8_000);
    assert_eq!(figure(&r, "waived (fen)"), 0);
    assert_eq!(figure(&r, "outstanding (fen)"), 12_050 + 2_000 + 5_000);
}

#[test]
fn late_arrivals_are_left_out_as_of_the_cut_off_and_listed() {
    let at = t0();
    let cutoff = at + Duration::hours(5);
    let all = vec![
        ticket(Kind::Repair, at)
            .serial(1)
            .ev(
                "assign",
                "frontdesk",
                EventData {
                    assignee: Some(user("eng1")),
                    ..EventData::default()
                },
                at,
            )
            .ev("accept", "eng1", EventData::default(), at)
            .ev(
                "start",
                "eng1",
                EventData::default(),
                at + Duration::hours(1),
            )
            .judged(
                "hold",
                "eng1",
                reason("awaiting parts"),
                at + Duration::hours(2),
                at + Duration::hours(30),
                Outcome::Accepted,
            )
            .done(),
    ];
    let policy = Policy::default();
    // As the HTTP side gives it at the cut-off: the last session before it.
    let devices = [DeviceInfo {
        device: "eng1-phone".into(),
        user: "eng1".into(),
        last_seen: Some(at + Duration::hours(1)),
        revoked: false,
    }];
    let r = compute("open-overdue", &view(&all, cutoff, &policy), &devices).expect("a report");
    let open = r.table("Open").expect("open");
    assert_eq!(open.column("status"), [&json!("IN_PROGRESS")]);
    assert!(r.tables.iter().all(|t| !t.title.starts_with("Recorded")));
    let late = r
        .table("Recorded before the cut-off, arrived after")
        .expect("late table");
    assert_eq!(late.column("action"), [&json!("hold")]);

    // Sync health at the cut-off counts only what the relay had; the hold
    // that came a day later is under "changes since".
    let r = compute("sync-health", &view(&all, cutoff, &policy), &devices).expect("a report");
    assert_eq!(figure(&r, "events received in the period"), 4);
    assert_eq!(figure(&r, "devices seen in the period"), 1);
    let d = r.table("Devices").expect("devices");
    assert_eq!(d.column("received"), [&json!(2)], "accept and start");
    assert_eq!(d.column("last_seen"), [&json!("2026-03-02T02:00:00.000Z")]);
    let late = r
        .table("Devices whose events recorded by the cut-off arrived after it")
        .expect("late devices");
    assert_eq!(late.column("events"), [&json!(1)]);
    assert_eq!(late.column("oldest"), [&json!("2026-03-02T03:00:00.000Z")]);

    let now = at + Duration::hours(31);
    let r = compute("open-overdue", &view(&all, now, &policy), &devices).expect("a report");
    assert_eq!(
        r.table("Open").expect("open").column("status"),
        [&json!("ON_HOLD")]
    );
}

/// A prompt visit (made the day the work was handed back, before it fell
/// due) counts at once, in the period it was made: the bug of issue 15 was
/// "0 visited" until the next day.
#[test]
fn a_prompt_visit_counts_the_day_it_is_made() {
    let at = t0();
    let h = Duration::hours;
    let all = vec![
        ticket(Kind::Repair, at)
            .worked("eng1", at + h(2), 0)
            .returned(at + h(3))
            .ev(
                "return_visit",
                "frontdesk",
                reached(Satisfaction::Satisfied),
                at + h(5),
            )
            .done(),
    ];
    let policy = Policy::default();
    let r = return_visits(&view(&all, at + h(10), &policy));
    assert_eq!(figure(&r, "made in the period"), 1);
    assert_eq!(figure(&r, "due in the period"), 0, "it falls due tomorrow");
    assert_eq!(figure(&r, "coverage %"), 100.0);
    assert_eq!(figure(&r, "early"), 1);
    assert_eq!(figure(&r, "reached %"), 100.0);
    assert_eq!(figure(&r, "satisfied"), 1);
    // The next day it is not counted again.
    let r = return_visits(&view(&all, at + h(30), &policy));
    assert_eq!(figure(&r, "made in the period"), 0);
    assert_eq!(figure(&r, "due in the period"), 0, "made before the period");
    assert_eq!(figure(&r, "coverage %"), Value::Null);
}

fn reached(sat: Satisfaction) -> EventData {
    EventData {
        contact_result: Some(schema::ticket::ContactResult::Reached),
        satisfaction: Some(sat),
        ..EventData::default()
    }
}

#[test]
fn return_visits_and_engineer_performance_over_a_week() {
    let at = t0();
    let h = Duration::hours;
    let unreachable = || EventData {
        contact_result: Some(schema::ticket::ContactResult::Unreachable),
        ..EventData::default()
    };
    let rework = ticket(Kind::Repair, at + h(31)).serial(9).done();
    let assign = |eng: &str| EventData {
        assignee: Some(user(eng)),
        ..EventData::default()
    };
    let all = vec![
        // A: handed back at +3 h, visited at +5 h: early.
        ticket(Kind::Repair, at)
            .serial(1)
            .worked("eng1", at + h(2), 0)
            .returned(at + h(3))
            .ev(
                "return_visit",
                "frontdesk",
                reached(Satisfaction::Satisfied),
                at + h(5),
            )
            .done(),
        // B: due at +29 h, visited at +30 h: on time, dissatisfied, reworked.
        ticket(Kind::Repair, at)
            .serial(2)
            .worked("eng1", at + h(4), 0)
            .returned(at + h(5))
            .ev(
                "return_visit",
                "frontdesk",
                reached(Satisfaction::Dissatisfied),
                at + h(30),
            )
            .ev(
                "rework",
                "frontdesk",
                EventData {
                    linked: Some(rework.0.url()),
                    ..EventData::default()
                },
                at + h(31),
            )
            .done(),
        // C: due at +35 h, never visited.
        ticket(Kind::Repair, at)
            .serial(3)
            .worked("eng2", at + h(10), 0)
            .returned(at + h(11))
            .done(),
        // D: due at +25 h, visited at +60 h: late.
        ticket(Kind::Repair, at)
            .serial(4)
            .worked("eng2", at + h(1), 0)
            .returned(at + h(1))
            .ev(
                "return_visit",
                "frontdesk",
                reached(Satisfaction::Basic),
                at + h(60),
            )
            .done(),
        // E: due at +26 h, unreachable twice: not reached.
        ticket(Kind::Repair, at)
            .serial(5)
            .worked("eng3", at + h(2), 0)
            .returned(at + h(2))
            .ev("return_visit", "frontdesk", unreachable(), at + h(26))
            .ev("return_visit", "frontdesk", unreachable(), at + h(28))
            .done(),
        // F: done and visited the week before: in neither count.
        ticket(Kind::Repair, at - Duration::days(3))
            .serial(6)
            .worked("eng3", at - Duration::days(3), 0)
            .returned(at - Duration::days(3))
            .ev(
                "return_visit",
                "frontdesk",
                reached(Satisfaction::Satisfied),
                at - h(47),
            )
            .done(),
        // G: handed back in the week; H: the week before.
        ticket(Kind::Repair, at)
            .serial(7)
            .ev("assign", "frontdesk", assign("eng1"), at + h(1))
            .ev("hand_back", "eng1", reason("wrong trade"), at + h(2))
            .done(),
        ticket(Kind::Repair, at - Duration::days(3))
            .serial(8)
            .ev(
                "assign",
                "frontdesk",
                assign("eng2"),
                at - Duration::days(3),
            )
            .ev(
                "hand_back",
                "eng2",
                reason("no parts"),
                at - Duration::days(3),
            )
            .done(),
        rework,
    ];
    let policy = Policy::default();
    let from = crate::settings::week_start(at, DEFAULT_TIME_ZONE);
    let v = View::new(&all, at + h(72), from, DEFAULT_TIME_ZONE, &policy);
    let r = return_visits(&v);
    for (label, value) in [
        ("due in the period", json!(5)),
        ("made in the period", json!(4)),
        ("due or made in the period", json!(5)),
        ("coverage %", json!(80.0)),
        ("due, not yet made", json!(1)),
        ("early", json!(1)),
        ("on time", json!(1)),
        ("late", json!(1)),
        ("not reached", json!(1)),
        ("reached", json!(3)),
        ("reached %", json!(75.0)),
        ("satisfied", json!(1)),
        ("basically_satisfied", json!(1)),
        ("dissatisfied", json!(1)),
    ] {
        assert_eq!(figure(&r, label), value, "{label}");
    }
    let t = r.table("Visits made in the period").expect("visits");
    let serial = |n: u32| json!(format!("RO-2026-{n:06}"));
    assert_eq!(
        t.column("ticket"),
        [&serial(1), &serial(5), &serial(2), &serial(4)]
    );
    assert_eq!(
        t.column("timing"),
        [
            &json!("early"),
            &json!("not_reached"),
            &json!("on_time"),
            &json!("late")
        ]
    );
    assert_eq!(t.column("attempts")[1], &json!(2));
    let w = r
        .table("Due in the period, not made by the cut-off")
        .expect("waiting");
    assert_eq!(w.column("ticket"), [&serial(3)]);
    let d = r.table("Dissatisfied").expect("dissatisfied");
    assert_eq!(d.column("ticket"), [&serial(2)]);
    assert_eq!(d.column("rework"), [&serial(9)]);

    let r = engineer_performance(&v);
    assert_eq!(figure(&r, "orders completed"), 5);
    assert_eq!(figure(&r, "hand-backs"), 1);
    let t = r.table("Engineers").expect("engineers");
    assert_eq!(
        t.column("engineer"),
        [&json!("eng1"), &json!("eng2"), &json!("eng3")]
    );
    assert_eq!(t.column("completed"), [&json!(2), &json!(2), &json!(1)]);
    assert_eq!(
        t.column("completion_median_h"),
        [&json!(2.0), &json!(1.0), &json!(2.0)]
    );
    assert_eq!(
        t.column("completion_p90_h"),
        [&json!(4.0), &json!(10.0), &json!(2.0)]
    );
    assert_eq!(
        t.column("rework_pct"),
        [&json!(50.0), &json!(0.0), &json!(0.0)]
    );
    assert_eq!(
        t.column("first_time_fix_pct"),
        [&json!(50.0), &json!(100.0), &json!(100.0)]
    );
    assert_eq!(
        t.column("hand_backs"),
        [&json!(1), &json!(0), &json!(0)],
        "eng2's hand-back was the week before"
    );
    assert_eq!(
        t.column("appraisal"),
        [&json!(2.0), &json!(2.0), &Value::Null]
    );
}

#[test]
fn percentiles_are_nearest_rank() {
    let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    assert_eq!(percentile(&v, 50), Some(5.0));
    assert_eq!(percentile(&v, 90), Some(9.0));
    assert_eq!(percentile(&[7.0], 90), Some(7.0));
    assert_eq!(percentile(&[], 50), None);
}

#[test]
fn csv_quotes_what_it_must() {
    let all = vec![ticket(Kind::Repair, t0()).serial(1).done()];
    let policy = Policy::default();
    let r = compute("serial-register", &view(&all, t0(), &policy), &[]).expect("a report");
    let csv = r.to_csv();
    assert!(
        csv.starts_with(
            "report,维修单号登记表 / Repair-order serial register\r\nperiod,\"期间内发出的单号"
        ),
        "{csv}"
    );
    assert!(csv.contains("\r\ntime_zone,Asia/Shanghai\r\n"), "{csv}");
    assert!(
        csv.contains("\r\n期间内发出的单号 / Numbers issued in the period\r\nserial,id,issued,"),
        "{csv}"
    );
    assert!(csv.contains("RO-2026-000001,"), "{csv}");
}
