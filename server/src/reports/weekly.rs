//! The weekly reports (DOMAIN.md 6–9): the unresolved summary in aging
//! buckets, the FOCUS complaints, return visits and satisfaction, and
//! engineer performance. Each is a pure function of a [`View`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use schema::doc::rfc3339;
use schema::lifecycle::Action;
use schema::projection::Visit;
use schema::ticket::Satisfaction;
use schema::{Flag, Kind};
use serde_json::json;

use super::{
    Chart, Entry, Report, Series, Table, View, count_by, days, flags, hours, opt_time, pct, round1,
};

/// The aging buckets of the weekly summary.
pub(crate) const BUCKETS: [&str; 6] = ["<1d", "1–3d", "3–7d", "7–14d", "14–30d", ">30d"];

/// Which aging bucket an age falls in (lower bounds inclusive).
pub(crate) fn bucket(age: Duration) -> usize {
    let h = age.num_hours();
    match h {
        ..24 => 0,
        24..72 => 1,
        72..168 => 2,
        168..336 => 3,
        336..720 => 4,
        _ => 5,
    }
}

/// 6. Every ticket open at the cut-off, grouped by kind and department, in
///    aging buckets counted from receipt.
pub(crate) fn weekly_unresolved(v: &View<'_>) -> Report {
    let mut r = Report::new("weekly-unresolved", v);
    let open: Vec<&Entry> = v.entries.iter().filter(|e| e.p.status.is_open()).collect();
    let mut groups: BTreeMap<(Kind, String), [usize; 6]> = BTreeMap::new();
    let mut totals = [0usize; 6];
    let mut by_kind: BTreeMap<Kind, [usize; 6]> = BTreeMap::new();
    for e in &open {
        let b = bucket(v.as_of - e.received());
        let dept = e.p.department.map_or("none", |d| d.as_str()).to_owned();
        groups.entry((e.p.kind, dept)).or_default()[b] += 1;
        by_kind.entry(e.p.kind).or_default()[b] += 1;
        totals[b] += 1;
    }
    let mut g = Table::new(
        ("按类型和部门", "By kind and department"),
        &[
            ("kind", "类型", "Kind"),
            ("department", "部门", "Department"),
            ("lt_1d", "<1天", "<1d"),
            ("d1_3", "1–3天", "1–3d"),
            ("d3_7", "3–7天", "3–7d"),
            ("d7_14", "7–14天", "7–14d"),
            ("d14_30", "14–30天", "14–30d"),
            ("gt_30d", ">30天", ">30d"),
            ("total", "合计", "Total"),
        ],
    );
    for ((kind, dept), counts) in &groups {
        let mut row = vec![json!(kind.as_str()), json!(dept)];
        row.extend(counts.iter().map(|n| json!(n)));
        row.push(json!(counts.iter().sum::<usize>()));
        g.rows.push(row);
    }
    let mut items = Table::new(
        ("未结事项", "Open items"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("kind", "类型", "Kind"),
            ("department", "部门", "Department"),
            ("assignee", "负责人", "Assignee"),
            ("status", "状态", "Status"),
            ("title", "内容", "Title"),
            ("age_days", "已受理天数", "Age (days)"),
            ("bucket", "账龄", "Bucket"),
            ("flags", "标记", "Flags"),
            ("follow_up", "跟进负责人", "Follow-up owner"),
        ],
    );
    let mut sorted = open.clone();
    sorted.sort_by_key(|e| (e.received(), e.label()));
    for e in sorted {
        items.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.kind.as_str()),
            json!(e.p.department.map(|d| d.as_str())),
            json!(e.p.assignee),
            json!(e.p.status.as_str()),
            json!(e.ticket.header.title),
            json!(days(v.as_of - e.received())),
            json!(BUCKETS[bucket(v.as_of - e.received())]),
            flags(&e.p, v.as_of),
            json!(e.p.follow_up.as_ref().map(|f| f.owner.to_string())),
        ]);
    }
    r.stat("open", "未结", open.len());
    for (name, n) in BUCKETS.iter().zip(totals) {
        r.stat(*name, name.replace('d', "天"), n);
    }
    r.stat(
        "FOCUS",
        "重点跟进",
        open.iter()
            .filter(|e| e.p.flags(v.as_of).contains(&Flag::Focus))
            .count(),
    );
    r.charts.push(Chart {
        title: "Open items by age".into(),
        stacked: true,
        unit: "items",
        labels: BUCKETS.iter().map(|s| (*s).to_owned()).collect(),
        series: by_kind
            .iter()
            .map(|(k, counts)| Series {
                name: k.as_str().to_owned(),
                values: counts.iter().map(|n| *n as f64).collect(),
            })
            .collect(),
    });
    r.tables.push(g);
    r.tables.push(items);
    r
}

/// 7. Complaints still open seven days or more after they were received
///    (FOCUS), with owner, actions taken, next step and due date.
pub(crate) fn focus_complaints(v: &View<'_>) -> Report {
    let mut r = Report::new("focus-complaints", v);
    let mut t = Table::new(
        ("重点跟进投诉", "FOCUS complaints"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("title", "内容", "Title"),
            ("location", "位置", "Location"),
            ("received", "受理时间", "Received"),
            ("days_open", "已受理天数", "Days open"),
            ("status", "状态", "Status"),
            ("department", "部门", "Department"),
            ("owner", "跟进负责人", "Owner"),
            ("actions", "已采取措施", "Actions taken"),
            ("next_step", "下一步", "Next step"),
            ("due", "期限", "Due"),
        ],
    );
    let mut focus: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| e.p.kind == Kind::Complaint && e.p.flags(v.as_of).contains(&Flag::Focus))
        .collect();
    focus.sort_by_key(|e| (e.received(), e.label()));
    for e in &focus {
        let actions: Vec<&str> = e.accepted().map(Action::as_str).collect();
        let f = e.p.follow_up.as_ref();
        t.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.ticket.header.title),
            json!(e.ticket.header.location),
            json!(rfc3339(e.received())),
            json!(days(v.as_of - e.received())),
            json!(e.p.status.as_str()),
            json!(e.p.department.map(|d| d.as_str())),
            json!(
                f.map(|f| f.owner.to_string())
                    .or(e.p.assignee.as_ref().map(ToString::to_string))
            ),
            json!(actions),
            json!(f.map(|f| f.next_step.clone())),
            opt_time(f.map(|f| f.due_at)),
        ]);
    }
    r.stat("FOCUS complaints", "重点跟进投诉", focus.len());
    r.stat(
        "without a named follow-up owner",
        "未指定跟进负责人",
        focus.iter().filter(|e| e.p.follow_up.is_none()).count(),
    );
    r.tables.push(t);
    r
}

/// When a concluded visit was made relative to when it fell due.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Timing {
    /// Before it fell due: the prompt visit the rules ask for (及时回访).
    Early,
    /// After it fell due, within the policy's `visit_late_after`.
    OnTime,
    /// Later than that.
    Late,
    /// The resident was not reached after the policy's attempts.
    NotReached,
}

impl Timing {
    fn of(visit: &Visit, late_after: Duration) -> Self {
        match visit.due {
            _ if !visit.reached => Timing::NotReached,
            Some(due) if visit.at < due => Timing::Early,
            Some(due) if visit.at > due + late_after => Timing::Late,
            _ => Timing::OnTime,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Timing::Early => "early",
            Timing::OnTime => "on_time",
            Timing::Late => "late",
            Timing::NotReached => "not_reached",
        }
    }
}

fn satisfaction_zh(s: Satisfaction) -> &'static str {
    match s {
        Satisfaction::Satisfied => "满意",
        Satisfaction::Basic => "基本满意",
        Satisfaction::Dissatisfied => "不满意",
    }
}

/// Who did the work a visit asks about: the engineer for an order, the
/// department's handler for a matter.
fn handler(e: &Entry) -> Option<String> {
    e.p.completed_by
        .as_ref()
        .or(e.p.assignee.as_ref())
        .map(ToString::to_string)
}

/// 8. Return visits: a visit counts in the period it was made; coverage is
///    the visits made in the period over the visits due or made in it (a
///    visit due in the period and not made by the cut-off counts against
///    it); early, on-time, late and not-reached visits apart; satisfaction
///    of those reached; dissatisfied items and their rework.
pub(crate) fn return_visits(v: &View<'_>) -> Report {
    let mut r = Report::new("return-visits", v);
    let late_after = v.policy.visit_late_after;
    let mut made: Vec<(&Entry, &Visit, Timing)> = Vec::new();
    let mut waiting: Vec<(&Entry, DateTime<Utc>)> = Vec::new();
    let mut due_in_period = 0usize;
    for e in &v.entries {
        for visit in &e.p.visits {
            if visit.due.is_some_and(|d| v.in_period(d)) && visit.at >= v.from {
                due_in_period += 1;
            }
            if v.in_period(visit.at) {
                made.push((e, visit, Timing::of(visit, late_after)));
            }
        }
        if e.p.awaits_return_visit()
            && let Some(due) = e.p.visit_due.filter(|d| v.in_period(*d))
        {
            due_in_period += 1;
            waiting.push((e, due));
        }
    }
    made.sort_by_key(|(e, visit, _)| (visit.at, e.label()));
    waiting.sort_by_key(|(e, due)| (*due, e.label()));
    let timing = count_by(made.iter().map(|(_, _, t)| *t));
    let count = |t: Timing| timing.get(&t).copied().unwrap_or(0);
    let reached = made.len() - count(Timing::NotReached);
    let sats = count_by(made.iter().filter_map(|(_, visit, _)| visit.satisfaction));
    let considered = made.len() + waiting.len();
    r.stat("due in the period", "期间内到期", due_in_period);
    r.stat("made in the period", "期间内完成", made.len());
    r.stat("due or made in the period", "期间内到期或完成", considered);
    r.stat("coverage %", "回访率 %", pct(made.len(), considered));
    r.stat("due, not yet made", "到期未回访", waiting.len());
    r.stat("early", "提前（及时）", count(Timing::Early));
    r.stat("on time", "按时", count(Timing::OnTime));
    r.stat("late", "逾期", count(Timing::Late));
    r.stat("not reached", "未联系上", count(Timing::NotReached));
    r.stat("reached", "已联系上", reached);
    r.stat("reached %", "联系上比例 %", pct(reached, made.len()));
    for s in Satisfaction::ALL {
        r.stat(
            s.as_str(),
            satisfaction_zh(*s),
            sats.get(s).copied().unwrap_or(0),
        );
    }
    let mut visits = Table::new(
        ("期间内完成的回访", "Visits made in the period"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("kind", "类型", "Kind"),
            ("title", "内容", "Title"),
            ("handler", "处理人", "Handled by"),
            ("visit_due", "回访到期", "Visit due"),
            ("made_at", "回访时间", "Made at"),
            ("by", "回访人", "By"),
            ("timing", "及时性", "Timing"),
            ("attempts", "尝试次数", "Attempts"),
            ("satisfaction", "满意度", "Satisfaction"),
        ],
    );
    for (e, visit, t) in &made {
        visits.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.kind.as_str()),
            json!(e.ticket.header.title),
            json!(handler(e)),
            opt_time(visit.due),
            json!(rfc3339(visit.at)),
            json!(visit.by),
            json!(t.as_str()),
            json!(visit.attempts),
            json!(visit.satisfaction.map(Satisfaction::as_str)),
        ]);
    }
    let mut pending = Table::new(
        (
            "期间内到期、截止时未回访",
            "Due in the period, not made by the cut-off",
        ),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("kind", "类型", "Kind"),
            ("title", "内容", "Title"),
            ("status", "状态", "Status"),
            ("visit_due", "回访到期", "Visit due"),
            ("attempts", "已尝试", "Attempts"),
        ],
    );
    for (e, due) in &waiting {
        pending.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.kind.as_str()),
            json!(e.ticket.header.title),
            json!(e.p.status.as_str()),
            json!(rfc3339(*due)),
            json!(e.p.visit_attempts),
        ]);
    }
    let mut unhappy = Table::new(
        ("不满意及返修", "Dissatisfied"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("kind", "类型", "Kind"),
            ("title", "内容", "Title"),
            ("status", "状态", "Status"),
            ("handler", "处理人", "Handled by"),
            ("rework", "返修单", "Rework order"),
            ("reopened", "重开次数", "Reopened"),
        ],
    );
    for (e, _, _) in made
        .iter()
        .filter(|(_, visit, _)| visit.satisfaction == Some(Satisfaction::Dissatisfied))
    {
        let reworked = e.accepted().any(|a| a == Action::Rework);
        unhappy.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.kind.as_str()),
            json!(e.ticket.header.title),
            json!(e.p.status.as_str()),
            json!(handler(e)),
            json!(
                reworked
                    .then(|| e.p.linked.map(|l| v.label_of(l.id())))
                    .flatten()
            ),
            json!(e.p.reopen_count),
        ]);
    }
    r.charts.push(Chart {
        title: "Satisfaction".into(),
        stacked: false,
        unit: "visits",
        labels: Satisfaction::ALL
            .iter()
            .map(|s| s.as_str().to_owned())
            .collect(),
        series: vec![Series {
            name: "visits".into(),
            values: Satisfaction::ALL
                .iter()
                .map(|s| sats.get(s).copied().unwrap_or(0) as f64)
                .collect(),
        }],
    });
    r.charts.push(Chart {
        title: "Timeliness".into(),
        stacked: false,
        unit: "visits",
        labels: [
            Timing::Early,
            Timing::OnTime,
            Timing::Late,
            Timing::NotReached,
        ]
        .iter()
        .map(|t| t.as_str().to_owned())
        .collect(),
        series: vec![Series {
            name: "visits".into(),
            values: [
                Timing::Early,
                Timing::OnTime,
                Timing::Late,
                Timing::NotReached,
            ]
            .iter()
            .map(|t| count(*t) as f64)
            .collect(),
        }],
    });
    r.tables.push(visits);
    r.tables.push(pending);
    r.tables.push(unhappy);
    r
}

/// The nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[f64], pct: usize) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (pct * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// 9. Per engineer: orders completed in the period, response (receipt to
///    start) and completion (receipt to completion) times, median and 90th
///    percentile, first-time fix and rework rates, the hand-backs and
///    transfers made in the period, and the average appraisal (3 satisfied,
///    2 basically satisfied, 1 dissatisfied) of the orders completed.
pub(crate) fn engineer_performance(v: &View<'_>) -> Report {
    let mut r = Report::new("engineer-performance", v);
    #[derive(Default)]
    struct Acc {
        completed: usize,
        response_h: Vec<f64>,
        completion_h: Vec<f64>,
        first_fix: usize,
        reworked: usize,
        hand_backs: usize,
        transfers: usize,
        appraisal: Vec<f64>,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for e in v.entries.iter().filter(|e| e.p.kind.is_order()) {
        for a in &e.p.assignments {
            if !a.ended_at.is_some_and(|t| v.in_period(t)) {
                continue;
            }
            let slot = acc.entry(a.engineer.to_string()).or_default();
            match a.ended_by {
                Some(Action::HandBack) => slot.hand_backs += 1,
                Some(Action::Transfer) => slot.transfers += 1,
                _ => {}
            }
        }
        let (Some(by), Some(done)) = (&e.p.completed_by, e.p.completed_at) else {
            continue;
        };
        if !v.in_period(done) {
            continue;
        }
        let slot = acc.entry(by.to_string()).or_default();
        slot.completed += 1;
        let received = e.received();
        if let Some(start) = e.p.started_at {
            slot.response_h.push(hours(start - received));
        }
        slot.completion_h.push(hours(done - received));
        let reworked = e.accepted().any(|a| a == Action::Rework);
        let cannot = e.accepted().any(|a| a == Action::CannotFix);
        if reworked {
            slot.reworked += 1;
        }
        if !reworked && !cannot && e.p.satisfaction != Some(Satisfaction::Dissatisfied) {
            slot.first_fix += 1;
        }
        if let Some(s) = e.p.satisfaction {
            slot.appraisal.push(match s {
                Satisfaction::Satisfied => 3.0,
                Satisfaction::Basic => 2.0,
                Satisfaction::Dissatisfied => 1.0,
            });
        }
    }
    let mut t = Table::new(
        ("工程人员", "Engineers"),
        &[
            ("engineer", "工程人员", "Engineer"),
            ("completed", "完工", "Completed"),
            (
                "response_median_h",
                "响应中位数（小时）",
                "Response median (h)",
            ),
            ("response_p90_h", "响应90分位（小时）", "Response p90 (h)"),
            (
                "completion_median_h",
                "完工中位数（小时）",
                "Completion median (h)",
            ),
            (
                "completion_p90_h",
                "完工90分位（小时）",
                "Completion p90 (h)",
            ),
            ("first_time_fix_pct", "一次修复率 %", "First-time fix %"),
            ("rework_pct", "返修率 %", "Rework %"),
            ("hand_backs", "退单", "Hand-backs"),
            ("transfers", "转单", "Transfers"),
            ("appraisal", "平均评价", "Average appraisal"),
        ],
    );
    let rate = |a: usize, b: usize| (b > 0).then(|| round1(100.0 * a as f64 / b as f64));
    let mut names = Vec::new();
    let mut completed = Vec::new();
    let mut medians = Vec::new();
    for (name, a) in &mut acc {
        a.response_h.sort_by(f64::total_cmp);
        a.completion_h.sort_by(f64::total_cmp);
        let appraisal = (!a.appraisal.is_empty())
            .then(|| round1(a.appraisal.iter().sum::<f64>() / a.appraisal.len() as f64));
        t.rows.push(vec![
            json!(name),
            json!(a.completed),
            json!(percentile(&a.response_h, 50)),
            json!(percentile(&a.response_h, 90)),
            json!(percentile(&a.completion_h, 50)),
            json!(percentile(&a.completion_h, 90)),
            json!(rate(a.first_fix, a.completed)),
            json!(rate(a.reworked, a.completed)),
            json!(a.hand_backs),
            json!(a.transfers),
            json!(appraisal),
        ]);
        names.push(name.clone());
        completed.push(a.completed as f64);
        medians.push(percentile(&a.completion_h, 50).unwrap_or(0.0));
    }
    r.stat("engineers", "工程人员", acc.len());
    r.stat(
        "orders completed",
        "完工单数",
        acc.values().map(|a| a.completed).sum::<usize>(),
    );
    r.stat(
        "hand-backs",
        "退单",
        acc.values().map(|a| a.hand_backs).sum::<usize>(),
    );
    r.stat(
        "transfers",
        "转单",
        acc.values().map(|a| a.transfers).sum::<usize>(),
    );
    r.charts.push(Chart {
        title: "Orders completed".into(),
        stacked: false,
        unit: "orders",
        labels: names.clone(),
        series: vec![Series {
            name: "completed".into(),
            values: completed,
        }],
    });
    r.charts.push(Chart {
        title: "Median completion time".into(),
        stacked: false,
        unit: "hours",
        labels: names,
        series: vec![Series {
            name: "median hours".into(),
            values: medians,
        }],
    });
    r.tables.push(t);
    r
}
