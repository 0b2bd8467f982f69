//! The daily reports (DOMAIN.md 1–5): the front desk's register, the serial
//! register with its continuity check, the open and overdue list, orders not
//! returned, the cashier's close and device sync health. Each is a pure
//! function of a [`View`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use schema::doc::rfc3339;
use schema::{Flag, Status};
use serde_json::{Value, json};

use super::{
    Col, DeviceInfo, Entry, Report, Table, View, count_by, days, fen, flags, hours, opt_time,
};

/// Chinese names for the values people read in summary labels.
pub(super) fn kind_zh(kind: &str) -> &'static str {
    match kind {
        "repair" => "报修",
        "complaint" => "投诉",
        "praise" => "表扬",
        "suggestion" => "建议",
        "need" => "需求/咨询",
        "paid_service" => "有偿服务",
        _ => "其他",
    }
}

fn channel_zh(channel: &str) -> &'static str {
    match channel {
        "walk_in" => "来访",
        "phone" => "电话",
        "on_site" => "现场发现",
        "app" => "应用",
        _ => "其他",
    }
}

pub(super) fn department_zh(d: &str) -> &'static str {
    match d {
        "customer_service" => "客服",
        "engineering" => "工程",
        "security" => "秩序维护",
        "cleaning" => "保洁",
        "greening" => "绿化",
        "management" => "管理处",
        "finance" => "财务",
        "none" => "未分派",
        _ => "其他",
    }
}

/// 1. Matters received in the period, with the supervisor's check marks.
pub(crate) fn daily_register(v: &View<'_>) -> Report {
    let mut r = Report::new("daily-register", v);
    let mut t = Table::new(
        ("期间内受理", "Received in the period"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("received", "受理时间", "Received"),
            ("kind", "类型", "Kind"),
            ("channel", "渠道", "Channel"),
            ("clerk", "受理人", "Clerk"),
            ("title", "内容", "Title"),
            ("location", "位置", "Location"),
            ("status", "状态", "Status"),
            ("checked", "已检查", "Checked"),
            ("checker", "检查人", "Checker"),
            ("remarks", "检查意见", "Remarks"),
        ],
    );
    let mut today: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| v.in_period(e.received()))
        .collect();
    today.sort_by_key(|e| (e.received(), e.label()));
    for e in &today {
        let check = e.p.checks.last();
        t.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(rfc3339(e.received())),
            json!(e.ticket.header.kind.as_str()),
            json!(e.ticket.header.reported.channel.as_str()),
            json!(e.ticket.header.reported.by),
            json!(e.ticket.header.title),
            json!(e.ticket.header.location),
            json!(e.p.status.as_str()),
            json!(check.is_some()),
            json!(check.map(|c| c.by.to_string())),
            json!(check.and_then(|c| c.remarks.clone())),
        ]);
    }
    let checked = today.iter().filter(|e| !e.p.checks.is_empty()).count();
    r.stat("received", "受理", today.len());
    r.stat("checked", "已检查", checked);
    r.stat("not checked", "未检查", today.len() - checked);
    for (k, n) in count_by(today.iter().map(|e| e.ticket.header.kind.as_str())) {
        r.stat(format!("kind: {k}"), format!("类型：{}", kind_zh(k)), n);
    }
    for (k, n) in count_by(
        today
            .iter()
            .map(|e| e.ticket.header.reported.channel.as_str()),
    ) {
        r.stat(
            format!("channel: {k}"),
            format!("渠道：{}", channel_zh(k)),
            n,
        );
    }
    for (k, n) in count_by(
        today
            .iter()
            .map(|e| e.ticket.header.reported.by.to_string()),
    ) {
        r.stat(format!("clerk: {k}"), format!("受理人：{k}"), n);
    }
    r.tables.push(t);
    r
}

/// An order's state in the serial register.
fn register_state(status: Status) -> &'static str {
    match status {
        Status::Voided => "void",
        Status::Cancelled => "cancelled",
        st if st.is_terminal() => "closed",
        _ => "open",
    }
}

/// 2. Numbers issued in the period, each with its state at the cut-off, and
///    the continuity check per series and year: no missing numbers, number
///    order matching issue order.
pub(crate) fn serial_register(v: &View<'_>) -> Report {
    let mut r = Report::new("serial-register", v);
    let mut numbered: Vec<(&Entry, schema::Serial)> = v
        .entries
        .iter()
        .filter_map(|e| e.ticket.server.serial.map(|s| (e, s)))
        .collect();
    numbered.sort_by_key(|(_, s)| *s);
    let mut t = Table::new(
        ("期间内发出的单号", "Numbers issued in the period"),
        &[
            ("serial", "单号", "Serial"),
            ("id", "编号", "Id"),
            ("issued", "发出时间", "Issued"),
            ("state", "登记状态", "State"),
            ("status", "状态", "Status"),
            ("title", "内容", "Title"),
            ("reason", "作废或撤单原因", "Void or cancel reason"),
        ],
    );
    let mut c = Table::new(
        ("连续性检查", "Continuity"),
        &[
            ("series", "系列", "Series"),
            ("year", "年份", "Year"),
            ("issued", "已发出", "Issued"),
            ("first", "首号", "First"),
            ("last", "末号", "Last"),
            ("missing", "缺号", "Missing numbers"),
            ("out_of_order", "顺序不符", "Out of issue order"),
            ("continuous", "连续", "Continuous"),
        ],
    );
    // (received, serial) by series and year.
    type Issued = (DateTime<Utc>, schema::Serial);
    let mut groups: BTreeMap<(String, u16), Vec<Issued>> = BTreeMap::new();
    for n in &v.numbered {
        groups
            .entry((n.serial.series().code().to_owned(), n.serial.year()))
            .or_default()
            .push((n.received, n.serial));
    }
    for rows in groups.values_mut() {
        rows.sort_by_key(|(_, s)| *s);
    }
    let mut all_continuous = true;
    for ((series, year), rows) in &groups {
        let mut missing = Vec::new();
        let mut out_of_order = Vec::new();
        let mut expected = 1u32;
        let mut last_at: Option<DateTime<Utc>> = None;
        for &(received, s) in rows {
            while expected < s.number() {
                missing.push(expected);
                expected += 1;
            }
            expected = s.number() + 1;
            if last_at.is_some_and(|t| received < t) {
                out_of_order.push(s.number());
            }
            last_at = Some(received);
        }
        let continuous = missing.is_empty() && out_of_order.is_empty();
        all_continuous &= continuous;
        c.rows.push(vec![
            json!(series),
            json!(year),
            json!(rows.len()),
            json!(rows.first().map(|(_, s)| s.number())),
            json!(rows.last().map(|(_, s)| s.number())),
            json!(missing),
            json!(out_of_order),
            json!(continuous),
        ]);
    }
    let issued: Vec<&(&Entry, schema::Serial)> = numbered
        .iter()
        .filter(|(e, _)| v.in_period(e.received()))
        .collect();
    for (e, s) in &issued {
        t.rows.push(vec![
            json!(s.to_string()),
            json!(e.id.to_string()),
            json!(rfc3339(e.received())),
            json!(register_state(e.p.status)),
            json!(e.p.status.as_str()),
            json!(e.ticket.header.title),
            json!(e.p.end_reason),
        ]);
    }
    let states = count_by(issued.iter().map(|(e, _)| register_state(e.p.status)));
    let state = |s: &str| states.get(s).copied().unwrap_or(0);
    r.stat("issued in the period", "期间内发出", issued.len());
    r.stat("open", "未结", state("open"));
    r.stat("closed", "已结", state("closed"));
    r.stat("void", "作废", state("void"));
    r.stat("cancelled", "撤单", state("cancelled"));
    r.stat("continuous", "单号连续", all_continuous);
    r.tables.push(t);
    r.tables.push(c);
    r
}

fn open_row(e: &Entry, now: DateTime<Utc>) -> Vec<Value> {
    vec![
        json!(e.label()),
        json!(e.id.to_string()),
        json!(e.ticket.header.kind.as_str()),
        json!(e.p.department.map(|d| d.as_str())),
        json!(e.p.assignee),
        json!(e.p.status.as_str()),
        json!(e.ticket.header.title),
        json!(days(now - e.received())),
        opt_time(e.p.current_due()),
        flags(&e.p, now),
    ]
}

pub(super) const OPEN_COLUMNS: &[Col] = &[
    ("ticket", "单号", "Ticket"),
    ("id", "编号", "Id"),
    ("kind", "类型", "Kind"),
    ("department", "部门", "Department"),
    ("assignee", "负责人", "Assignee"),
    ("status", "状态", "Status"),
    ("title", "内容", "Title"),
    ("age_days", "已受理天数", "Age (days)"),
    ("due", "到期", "Due"),
    ("flags", "标记", "Flags"),
];

/// 3. Open tickets by department and engineer, with age and flags; the
///    orders completed but not returned; the return visits falling due by
///    the end of the cut-off's local day.
pub(crate) fn open_overdue(v: &View<'_>) -> Report {
    let mut r = Report::new("open-overdue", v);
    let mut open: Vec<&Entry> = v.entries.iter().filter(|e| e.p.status.is_open()).collect();
    open.sort_by(|a, b| {
        (a.p.department, &a.p.assignee, a.received(), a.label()).cmp(&(
            b.p.department,
            &b.p.assignee,
            b.received(),
            b.label(),
        ))
    });
    let mut t = Table::new(("未结", "Open"), OPEN_COLUMNS);
    t.rows = open.iter().map(|e| open_row(e, v.as_of)).collect();
    let overdue = open
        .iter()
        .filter(|e| e.p.flags(v.as_of).contains(&Flag::Overdue))
        .count();
    let end_of_day = crate::settings::day_end(v.as_of, v.tz);
    let mut due: Vec<&Entry> = open
        .iter()
        .copied()
        .filter(|e| e.p.awaits_return_visit() && e.p.visit_due.is_some_and(|d| d < end_of_day))
        .collect();
    due.sort_by_key(|e| (e.p.visit_due, e.label()));
    let mut visits = Table::new(
        ("今日应回访", "Return visits due by the end of the day"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("kind", "类型", "Kind"),
            ("status", "状态", "Status"),
            ("title", "内容", "Title"),
            ("visit_due", "回访到期", "Visit due"),
            ("attempts", "已尝试", "Attempts"),
        ],
    );
    visits.rows = due
        .iter()
        .map(|e| {
            vec![
                json!(e.label()),
                json!(e.id.to_string()),
                json!(e.p.kind.as_str()),
                json!(e.p.status.as_str()),
                json!(e.ticket.header.title),
                opt_time(e.p.visit_due),
                json!(e.p.visit_attempts),
            ]
        })
        .collect();
    let unreturned = not_returned_table(v);
    r.stat("open", "未结", open.len());
    r.stat("overdue", "超时", overdue);
    r.stat(
        "completed, not returned",
        "完工未回单",
        unreturned.rows.len(),
    );
    r.stat(
        "return visits due by the end of the day",
        "今日应回访",
        visits.rows.len(),
    );
    for (d, n) in count_by(
        open.iter()
            .map(|e| e.p.department.map_or("none", |d| d.as_str())),
    ) {
        r.stat(
            format!("department: {d}"),
            format!("部门：{}", department_zh(d)),
            n,
        );
    }
    r.tables.push(t);
    r.tables.push(unreturned);
    r.tables.push(visits);
    r
}

fn not_returned_table(v: &View<'_>) -> Table {
    let mut t = Table::new(
        ("完工未回单", "Completed, not returned"),
        &[
            ("ticket", "单号", "Ticket"),
            ("id", "编号", "Id"),
            ("engineer", "维修人员", "Engineer"),
            ("title", "内容", "Title"),
            ("completed", "完工时间", "Completed"),
            ("return_due", "回单到期", "Return due"),
            ("overdue_hours", "超时（小时）", "Hours overdue"),
        ],
    );
    let mut done: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| e.p.status == Status::Completed)
        .collect();
    done.sort_by_key(|e| (e.p.completed_at, e.label()));
    for e in done {
        let overdue =
            e.p.return_due
                .filter(|d| *d < v.as_of)
                .map(|d| hours(v.as_of - d));
        t.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.completed_by),
            json!(e.ticket.header.title),
            opt_time(e.p.completed_at),
            opt_time(e.p.return_due),
            json!(overdue),
        ]);
    }
    t
}

/// 3b. Orders completed but whose engineering copy is not back (回单超时).
pub(crate) fn not_returned(v: &View<'_>) -> Report {
    let mut r = Report::new("not-returned", v);
    let t = not_returned_table(v);
    let overdue = t
        .column("overdue_hours")
        .into_iter()
        .filter(|h| !h.is_null())
        .count();
    r.stat("completed, not returned", "完工未回单", t.rows.len());
    r.stat("past the return time", "回单超时", overdue);
    r.tables.push(t);
    r
}

/// 4. Money collected and waived in the period, materials cost of the work
///    completed in it, and the charges still outstanding at the cut-off.
///    Amounts in fen.
pub(crate) fn cashier_close(v: &View<'_>) -> Report {
    use schema::Fen;
    let mut r = Report::new("cashier-close", v);
    let mut coll = Table::new(
        ("收款", "Collections"),
        &[
            ("ticket", "单号", "Ticket"),
            ("receipt", "收据号", "Receipt"),
            ("amount_fen", "金额（分）", "Amount (fen)"),
            ("amount", "金额", "Amount"),
            ("method", "方式", "Method"),
            ("cashier", "收银员", "Cashier"),
            ("at", "时间", "At"),
        ],
    );
    let mut waived = Table::new(
        ("减免", "Waivers"),
        &[
            ("ticket", "单号", "Ticket"),
            ("amount_fen", "金额（分）", "Amount (fen)"),
            ("amount", "金额", "Amount"),
            ("reason", "原因", "Reason"),
            ("approver", "批准人", "Approver"),
            ("at", "时间", "At"),
        ],
    );
    let mut materials = Table::new(
        ("期间内完工的材料成本", "Materials cost of work completed"),
        &[
            ("ticket", "单号", "Ticket"),
            ("engineer", "维修人员", "Engineer"),
            ("materials", "材料", "Materials"),
            ("cost_fen", "成本（分）", "Cost (fen)"),
            ("cost", "成本", "Cost"),
        ],
    );
    let mut outstanding = Table::new(
        ("待收款", "Outstanding charges"),
        &[
            ("ticket", "单号", "Ticket"),
            ("status", "状态", "Status"),
            ("charge_fen", "应收（分）", "Charge (fen)"),
            ("outstanding_fen", "未收（分）", "Outstanding (fen)"),
            ("outstanding", "未收", "Outstanding"),
        ],
    );
    let (mut total_in, mut total_waived, mut total_cost, mut total_out) =
        (Fen::ZERO, Fen::ZERO, Fen::ZERO, Fen::ZERO);
    let mut entries: Vec<&Entry> = v.entries.iter().filter(|e| e.p.kind.is_order()).collect();
    entries.sort_by_key(|e| (e.ticket.server.serial, e.label()));
    for e in entries {
        for c in e.p.collections.iter().filter(|c| v.in_period(c.at)) {
            total_in = total_in.checked_add(c.amount).unwrap_or(total_in);
            coll.rows.push(vec![
                json!(e.label()),
                json!(c.receipt),
                fen(c.amount),
                json!(c.amount.to_string()),
                json!(c.method),
                json!(c.by),
                json!(rfc3339(c.at)),
            ]);
        }
        for w in e.p.waivers.iter().filter(|w| v.in_period(w.at)) {
            total_waived = total_waived.checked_add(w.amount).unwrap_or(total_waived);
            waived.rows.push(vec![
                json!(e.label()),
                fen(w.amount),
                json!(w.amount.to_string()),
                json!(w.reason),
                json!(w.by),
                json!(rfc3339(w.at)),
            ]);
        }
        if e.p.completed_at.is_some_and(|t| v.in_period(t)) && !e.p.materials.is_empty() {
            let cost = e.p.materials_cost();
            total_cost = total_cost.checked_add(cost).unwrap_or(total_cost);
            let names: Vec<String> =
                e.p.materials
                    .iter()
                    .map(|m| format!("{} × {}", m.name, m.qty))
                    .collect();
            materials.rows.push(vec![
                json!(e.label()),
                json!(e.p.completed_by),
                json!(names),
                fen(cost),
                json!(cost.to_string()),
            ]);
        }
        let owed = e.p.outstanding();
        if e.p.status == Status::ChargePending && owed.get() > 0 {
            total_out = total_out.checked_add(owed).unwrap_or(total_out);
            outstanding.rows.push(vec![
                json!(e.label()),
                json!(e.p.status.as_str()),
                fen(e.p.charge),
                fen(owed),
                json!(owed.to_string()),
            ]);
        }
    }
    r.stat("collections", "收款笔数", coll.rows.len());
    r.stat("collected (fen)", "收款（分）", total_in.get());
    r.stat("collected", "收款", total_in.to_string());
    r.stat("waivers", "减免笔数", waived.rows.len());
    r.stat("waived (fen)", "减免（分）", total_waived.get());
    r.stat("materials cost (fen)", "材料成本（分）", total_cost.get());
    r.stat("outstanding (fen)", "待收（分）", total_out.get());
    r.stat(
        "orders awaiting the cashier",
        "待收款单数",
        outstanding.rows.len(),
    );
    r.tables.extend([coll, waived, materials, outstanding]);
    r
}

/// 5. Per device at the cut-off: its last sync, the events the relay
///    received from it in the period and the longest delay among them, and
///    the conflicts awaiting review. Events recorded by the cut-off that
///    arrived after it are only known later: they go to "changes since".
pub(crate) fn sync_health(v: &View<'_>, devices: &[DeviceInfo]) -> Report {
    let mut r = Report::new("sync-health", v);
    #[derive(Default)]
    struct Acc {
        received: usize,
        longest: Option<Duration>,
        review: usize,
        late: usize,
        oldest_late: Option<DateTime<Utc>>,
        late_arrived: Option<DateTime<Utc>>,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (_, ticket) in v.full {
        for e in &ticket.events {
            let Some(vd) = ticket.server.verdicts.get(&e.id) else {
                continue;
            };
            if v.in_period(vd.at) {
                let a = acc.entry(e.device.to_string()).or_default();
                a.received += 1;
                let delay = (vd.at - e.at).max(Duration::zero());
                a.longest = Some(a.longest.map_or(delay, |l| l.max(delay)));
            } else if e.at <= v.as_of && vd.at > v.as_of {
                let a = acc.entry(e.device.to_string()).or_default();
                a.late += 1;
                a.oldest_late = Some(a.oldest_late.map_or(e.at, |o| o.min(e.at)));
                a.late_arrived = Some(a.late_arrived.map_or(vd.at, |o| o.min(vd.at)));
            }
        }
    }
    for e in &v.entries {
        for item in e.p.review.iter().filter(|i| i.resolution.is_none()) {
            acc.entry(item.event.device.to_string()).or_default().review += 1;
        }
    }
    let mut t = Table::new(
        ("设备", "Devices"),
        &[
            ("device", "设备", "Device"),
            ("user", "用户", "User"),
            ("last_seen", "最近同步", "Last seen"),
            ("revoked", "已吊销", "Revoked"),
            (
                "received",
                "期间内收到事件",
                "Events received in the period",
            ),
            (
                "longest_delay_hours",
                "最长延迟（小时）",
                "Longest delay (hours)",
            ),
            ("open_review", "待复核", "Awaiting review"),
        ],
    );
    let mut late = Table::new(
        (
            "截止前记录、截止后才同步的设备",
            "Devices whose events recorded by the cut-off arrived after it",
        ),
        &[
            ("device", "设备", "Device"),
            ("user", "用户", "User"),
            ("events", "事件数", "Events"),
            ("oldest", "最早记录（设备时间）", "Oldest (device time)"),
            ("arrived", "首次到达", "First arrived"),
        ],
    );
    let empty = Acc::default();
    let mut longest: Option<Duration> = None;
    for d in devices {
        let a = acc.get(&d.device).unwrap_or(&empty);
        longest = longest.max(a.longest);
        t.rows.push(vec![
            json!(d.device),
            json!(d.user),
            opt_time(d.last_seen),
            json!(d.revoked),
            json!(a.received),
            json!(a.longest.map(hours)),
            json!(a.review),
        ]);
        if a.late > 0 {
            late.rows.push(vec![
                json!(d.device),
                json!(d.user),
                json!(a.late),
                opt_time(a.oldest_late),
                opt_time(a.late_arrived),
            ]);
        }
    }
    r.stat("devices", "设备数", devices.len());
    r.stat(
        "devices seen in the period",
        "期间内同步过的设备",
        devices
            .iter()
            .filter(|d| d.last_seen.is_some_and(|s| v.in_period(s)))
            .count(),
    );
    r.stat(
        "events received in the period",
        "期间内收到事件",
        acc.values().map(|a| a.received).sum::<usize>(),
    );
    r.stat(
        "longest delay (hours)",
        "最长延迟（小时）",
        json!(longest.map(hours)),
    );
    r.stat(
        "conflicts awaiting review",
        "待复核冲突",
        acc.values().map(|a| a.review).sum::<usize>(),
    );
    r.tables.push(t);
    r.changes_since.push(late);
    r
}
