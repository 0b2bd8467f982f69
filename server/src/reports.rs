//! The supervisor's and manager's reports (DOMAIN.md, "Reports a supervisor or
//! manager expects"), computed "as of" a cut-off.
//!
//! Every report is a pure function over ticket documents: each ticket is cut
//! back to the verdicts the relay had written by the cut-off ([`as_of`]) and
//! folded with [`Projection::official`], so a weekly summary printed on Monday
//! 09:00 can be reproduced exactly later, whatever arrived since. Events that
//! were made before the cut-off but reached the relay after it are listed in
//! each report's "arrived after the cut-off" table.
//!
//! A [`Report`] is a few summary figures, tables (columns and rows) and charts;
//! the dashboard draws it and [`Report::to_csv`] exports it. The HTTP side
//! (`/api/v1/reports/{name}`) is [`router`].

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use schema::doc::rfc3339;
use schema::lifecycle::Action;
use schema::ticket::Satisfaction;
use schema::{DocId, Fen, Flag, Kind, Outcome, Policy, Projection, Role, Status, Ticket};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::Authed;
use crate::error::{AppError, AppResult};
use crate::state::Relay;
use crate::store::records;

/// One report's figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) as_of: String,
    pub(crate) from: String,
    pub(crate) summary: Vec<Stat>,
    pub(crate) tables: Vec<Table>,
    pub(crate) charts: Vec<Chart>,
}

/// A labelled figure.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Stat {
    pub(crate) label: String,
    pub(crate) value: Value,
}

/// A table: column keys and labels, then rows in column order.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Table {
    pub(crate) title: String,
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Vec<Value>>,
}

/// A table column.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Column {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
}

/// A bar chart: one bar group per label, one bar per series.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Chart {
    pub(crate) title: String,
    pub(crate) stacked: bool,
    pub(crate) unit: &'static str,
    pub(crate) labels: Vec<String>,
    pub(crate) series: Vec<Series>,
}

/// One series of a chart.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) values: Vec<f64>,
}

impl Table {
    fn new(title: impl Into<String>, columns: &[(&'static str, &'static str)]) -> Self {
        Self {
            title: title.into(),
            columns: columns
                .iter()
                .map(|&(key, label)| Column { key, label })
                .collect(),
            rows: Vec::new(),
        }
    }

    /// The values of one column, by key (for tests and charts).
    pub(crate) fn column(&self, key: &str) -> Vec<&Value> {
        let Some(i) = self.columns.iter().position(|c| c.key == key) else {
            return Vec::new();
        };
        self.rows.iter().filter_map(|r| r.get(i)).collect()
    }
}

impl Report {
    fn new(name: &'static str, title: &'static str, v: &View<'_>) -> Self {
        Self {
            name,
            title,
            as_of: rfc3339(v.as_of),
            from: rfc3339(v.from),
            summary: Vec::new(),
            tables: Vec::new(),
            charts: Vec::new(),
        }
    }

    fn stat(&mut self, label: impl Into<String>, value: impl Into<Value>) {
        self.summary.push(Stat {
            label: label.into(),
            value: value.into(),
        });
    }

    /// A summary figure by label (for tests).
    #[cfg(test)]
    pub(crate) fn figure(&self, label: &str) -> Option<&Value> {
        self.summary
            .iter()
            .find(|s| s.label == label)
            .map(|s| &s.value)
    }

    /// A table by title (for tests).
    #[cfg(test)]
    pub(crate) fn table(&self, title: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.title == title)
    }

    /// The report as CSV: a header block (report, cut-off, summary), then each
    /// table under its title, separated by blank lines.
    pub(crate) fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            let cells: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        };
        line(&mut out, &["report".into(), self.title.into()]);
        line(&mut out, &["as_of".into(), self.as_of.clone()]);
        line(&mut out, &["from".into(), self.from.clone()]);
        for s in &self.summary {
            line(&mut out, &[s.label.clone(), plain(&s.value)]);
        }
        for t in &self.tables {
            out.push_str("\r\n");
            line(&mut out, std::slice::from_ref(&t.title));
            let head: Vec<String> = t.columns.iter().map(|c| c.key.to_owned()).collect();
            line(&mut out, &head);
            for r in &t.rows {
                let cells: Vec<String> = r.iter().map(plain).collect();
                line(&mut out, &cells);
            }
        }
        out
    }
}

fn plain(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a.iter().map(plain).collect::<Vec<_>>().join("; "),
        other => other.to_string(),
    }
}

/// One CSV cell, quoted when it must be (RFC 4180), and with a leading `'`
/// when a spreadsheet would take it for a formula.
pub(crate) fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

// ------------------------------------------------------------ as of a cut-off

/// A ticket cut back to what the relay had judged by `cutoff`: the verdicts
/// written after it are dropped (their events then count as not yet arrived).
pub(crate) fn as_of(ticket: &Ticket, cutoff: DateTime<Utc>) -> Ticket {
    let mut t = ticket.clone();
    t.server.verdicts.retain(|_, v| v.at <= cutoff);
    if t.server.received_at.is_some_and(|r| r > cutoff) {
        t.server.received_at = None;
    }
    if t.judged().is_empty() {
        t.server.serial = None;
    }
    t
}

/// One ticket as of the cut-off.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: DocId,
    pub(crate) ticket: Ticket,
    pub(crate) p: Projection,
}

impl Entry {
    fn label(&self) -> String {
        self.ticket
            .server
            .serial
            .map_or_else(|| short_id(self.id), |s| s.to_string())
    }

    /// The accepted actions, in verdict order.
    fn accepted(&self) -> impl Iterator<Item = Action> + '_ {
        self.ticket
            .judged()
            .into_iter()
            .filter(|(_, v)| v.outcome == Outcome::Accepted)
            .filter_map(|(e, _)| e.action())
    }

    fn received(&self) -> DateTime<Utc> {
        self.p.received_at.unwrap_or(self.ticket.header.reported.at)
    }
}

fn short_id(id: DocId) -> String {
    id.to_string().chars().take(8).collect()
}

/// The tickets as of a cut-off, and the window a daily report covers.
#[derive(Debug)]
pub(crate) struct View<'a> {
    pub(crate) as_of: DateTime<Utc>,
    /// Start of the reporting period (a day, a week); ends at `as_of`.
    pub(crate) from: DateTime<Utc>,
    /// Tickets that existed at the cut-off.
    pub(crate) entries: Vec<Entry>,
    /// Every ticket as stored now (for what arrived after the cut-off).
    pub(crate) full: &'a [(DocId, Ticket)],
}

impl<'a> View<'a> {
    /// Cuts every ticket back to `as_of`; a ticket whose creation was not yet
    /// accepted by then is left out.
    pub(crate) fn new(
        full: &'a [(DocId, Ticket)],
        as_of: DateTime<Utc>,
        from: DateTime<Utc>,
        policy: &'a Policy,
    ) -> Self {
        let entries = full
            .iter()
            .map(|(id, t)| {
                let ticket = self::as_of(t, as_of);
                let p = Projection::official(&ticket, policy);
                Entry { id: *id, ticket, p }
            })
            .filter(|e| e.p.status != Status::New)
            .collect();
        Self {
            as_of,
            from,
            entries,
            full,
        }
    }

    fn in_period(&self, t: DateTime<Utc>) -> bool {
        t >= self.from && t <= self.as_of
    }

    /// Events made by the cut-off (device time) whose verdict came after it.
    fn late_table(&self) -> Table {
        let mut t = Table::new(
            "Recorded before the cut-off, arrived after",
            &[
                ("ticket", "Ticket"),
                ("action", "Action"),
                ("by", "By"),
                ("device", "Device"),
                ("at", "Device time"),
                ("judged_at", "Relay time"),
                ("outcome", "Verdict"),
            ],
        );
        for (id, ticket) in self.full {
            for e in &ticket.events {
                let Some(v) = ticket.server.verdicts.get(&e.id) else {
                    continue;
                };
                if e.at <= self.as_of && v.at > self.as_of {
                    let label = ticket
                        .server
                        .serial
                        .map_or_else(|| short_id(*id), |s| s.to_string());
                    t.rows.push(vec![
                        json!(label),
                        json!(e.action),
                        json!(e.by),
                        json!(e.device),
                        json!(rfc3339(e.at)),
                        json!(rfc3339(v.at)),
                        json!(v.outcome.as_str()),
                    ]);
                }
            }
        }
        t
    }
}

fn days(d: Duration) -> f64 {
    round1(d.num_minutes() as f64 / 1440.0)
}

fn hours(d: Duration) -> f64 {
    round1(d.num_minutes() as f64 / 60.0)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn opt_time(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| json!(rfc3339(t)))
}

fn flags(p: &Projection, now: DateTime<Utc>) -> Value {
    json!(
        p.flags(now)
            .into_iter()
            .map(Flag::as_str)
            .collect::<Vec<_>>()
    )
}

fn fen(f: Fen) -> Value {
    json!(f.get())
}

// ------------------------------------------------------------ the reports

/// The reports this relay computes: name, title, who may read it.
pub(crate) const REPORTS: &[(&str, &str, &[Role])] = &[
    ("daily-register", "Front-desk daily register", DAILY),
    ("serial-register", "Repair-order serial register", DAILY),
    ("open-overdue", "Open and overdue", DAILY),
    ("not-returned", "Completed but not returned", DAILY),
    ("cashier-close", "Cashier daily close", CASH),
    ("sync-health", "Device sync health", SUPERVISION),
    (
        "weekly-unresolved",
        "Weekly unresolved summary",
        SUPERVISION,
    ),
    (
        "focus-complaints",
        "Complaints open 7 days or more",
        SUPERVISION,
    ),
    (
        "return-visits",
        "Return visits and satisfaction",
        SUPERVISION,
    ),
    ("engineer-performance", "Engineer performance", ENGINEERING),
];

const DAILY: &[Role] = &[
    Role::FrontDesk,
    Role::Supervisor,
    Role::Manager,
    Role::EngineeringSupervisor,
];
const CASH: &[Role] = &[Role::Cashier, Role::Supervisor, Role::Manager];
const SUPERVISION: &[Role] = &[Role::Supervisor, Role::Manager, Role::EngineeringSupervisor];
const ENGINEERING: &[Role] = &[Role::Supervisor, Role::Manager, Role::EngineeringSupervisor];

/// What a device sync-health row needs from the relay's tables.
#[derive(Clone, Debug)]
pub(crate) struct DeviceInfo {
    pub(crate) device: String,
    pub(crate) user: String,
    pub(crate) last_seen: Option<DateTime<Utc>>,
    pub(crate) revoked: bool,
}

/// Computes the report `name`; `None` when there is no such report.
pub(crate) fn compute(name: &str, v: &View<'_>, devices: &[DeviceInfo]) -> Option<Report> {
    let mut r = match name {
        "daily-register" => daily_register(v),
        "serial-register" => serial_register(v),
        "open-overdue" => open_overdue(v),
        "not-returned" => not_returned(v),
        "cashier-close" => cashier_close(v),
        "sync-health" => sync_health(v, devices),
        "weekly-unresolved" => weekly_unresolved(v),
        "focus-complaints" => focus_complaints(v),
        "return-visits" => return_visits(v),
        "engineer-performance" => engineer_performance(v),
        _ => return None,
    };
    r.tables.push(v.late_table());
    Some(r)
}

fn count_by<K: Ord>(items: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
    let mut m = BTreeMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// 1. Matters received in the period, with the supervisor's check marks.
pub(crate) fn daily_register(v: &View<'_>) -> Report {
    let mut r = Report::new("daily-register", "Front-desk daily register", v);
    let mut t = Table::new(
        "Received in the period",
        &[
            ("ticket", "Ticket"),
            ("id", "Id"),
            ("received", "Received"),
            ("kind", "Kind"),
            ("channel", "Channel"),
            ("clerk", "Clerk"),
            ("title", "Title"),
            ("location", "Location"),
            ("status", "Status"),
            ("checked", "Checked"),
            ("checker", "Checker"),
            ("remarks", "Remarks"),
        ],
    );
    let mut today: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| v.in_period(e.received()))
        .collect();
    today.sort_by_key(|e| e.received());
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
    r.stat("received", today.len());
    r.stat("checked", checked);
    r.stat("not checked", today.len() - checked);
    for (k, n) in count_by(today.iter().map(|e| e.ticket.header.kind.as_str())) {
        r.stat(format!("kind: {k}"), n);
    }
    for (k, n) in count_by(
        today
            .iter()
            .map(|e| e.ticket.header.reported.channel.as_str()),
    ) {
        r.stat(format!("channel: {k}"), n);
    }
    for (k, n) in count_by(
        today
            .iter()
            .map(|e| e.ticket.header.reported.by.to_string()),
    ) {
        r.stat(format!("clerk: {k}"), n);
    }
    r.tables.push(t);
    r
}

/// 2. Numbers issued, each with its state, and the continuity check per
///    series and year: no missing numbers, number order matching issue order.
pub(crate) fn serial_register(v: &View<'_>) -> Report {
    let mut r = Report::new("serial-register", "Repair-order serial register", v);
    let mut numbered: Vec<(&Entry, schema::Serial)> = v
        .entries
        .iter()
        .filter_map(|e| e.ticket.server.serial.map(|s| (e, s)))
        .collect();
    numbered.sort_by_key(|(_, s)| *s);
    let mut t = Table::new(
        "Numbers issued",
        &[
            ("serial", "Serial"),
            ("id", "Id"),
            ("issued", "Issued"),
            ("state", "State"),
            ("status", "Status"),
            ("title", "Title"),
            ("reason", "Void or cancel reason"),
            ("in_period", "In the period"),
        ],
    );
    let mut c = Table::new(
        "Continuity",
        &[
            ("series", "Series"),
            ("year", "Year"),
            ("issued", "Issued"),
            ("first", "First"),
            ("last", "Last"),
            ("missing", "Missing numbers"),
            ("out_of_order", "Out of issue order"),
            ("continuous", "Continuous"),
        ],
    );
    let mut groups: BTreeMap<(String, u16), Vec<(&Entry, schema::Serial)>> = BTreeMap::new();
    for &(e, s) in &numbered {
        groups
            .entry((s.series().code().to_owned(), s.year()))
            .or_default()
            .push((e, s));
    }
    let mut all_continuous = true;
    for ((series, year), rows) in &groups {
        let mut missing = Vec::new();
        let mut out_of_order = Vec::new();
        let mut expected = 1u32;
        let mut last_at: Option<DateTime<Utc>> = None;
        for (e, s) in rows {
            while expected < s.number() {
                missing.push(expected);
                expected += 1;
            }
            expected = s.number() + 1;
            if last_at.is_some_and(|t| e.received() < t) {
                out_of_order.push(s.number());
            }
            last_at = Some(e.received());
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
    for (e, s) in &numbered {
        let state = match e.p.status {
            Status::Voided => "void",
            Status::Cancelled => "cancelled",
            st if st.is_terminal() => "closed",
            _ => "open",
        };
        t.rows.push(vec![
            json!(s.to_string()),
            json!(e.id.to_string()),
            json!(rfc3339(e.received())),
            json!(state),
            json!(e.p.status.as_str()),
            json!(e.ticket.header.title),
            json!(e.p.end_reason),
            json!(v.in_period(e.received())),
        ]);
    }
    r.stat("issued", numbered.len());
    r.stat(
        "issued in the period",
        numbered
            .iter()
            .filter(|(e, _)| v.in_period(e.received()))
            .count(),
    );
    r.stat(
        "void",
        numbered
            .iter()
            .filter(|(e, _)| e.p.status == Status::Voided)
            .count(),
    );
    r.stat("continuous", all_continuous);
    r.tables.push(c);
    r.tables.push(t);
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

const OPEN_COLUMNS: &[(&str, &str)] = &[
    ("ticket", "Ticket"),
    ("id", "Id"),
    ("kind", "Kind"),
    ("department", "Department"),
    ("assignee", "Assignee"),
    ("status", "Status"),
    ("title", "Title"),
    ("age_days", "Age (days)"),
    ("due", "Due"),
    ("flags", "Flags"),
];

/// 3. Open tickets by department and engineer, with age and flags; the
///    orders completed but not returned; return visits due.
pub(crate) fn open_overdue(v: &View<'_>) -> Report {
    let mut r = Report::new("open-overdue", "Open and overdue", v);
    let mut open: Vec<&Entry> = v.entries.iter().filter(|e| e.p.status.is_open()).collect();
    open.sort_by(|a, b| {
        (a.p.department, &a.p.assignee, a.received()).cmp(&(
            b.p.department,
            &b.p.assignee,
            b.received(),
        ))
    });
    let mut t = Table::new("Open", OPEN_COLUMNS);
    t.rows = open.iter().map(|e| open_row(e, v.as_of)).collect();
    let overdue = open
        .iter()
        .filter(|e| e.p.flags(v.as_of).contains(&Flag::Overdue))
        .count();
    let mut visits = Table::new("Return visits due", OPEN_COLUMNS);
    visits.rows = open
        .iter()
        .filter(|e| e.p.flags(v.as_of).contains(&Flag::ReturnVisitDue))
        .map(|e| open_row(e, v.as_of))
        .collect();
    let unreturned = not_returned_table(v);
    r.stat("open", open.len());
    r.stat("overdue", overdue);
    r.stat("completed, not returned", unreturned.rows.len());
    r.stat("return visits due", visits.rows.len());
    for (d, n) in count_by(
        open.iter()
            .map(|e| e.p.department.map_or("none", |d| d.as_str())),
    ) {
        r.stat(format!("department: {d}"), n);
    }
    r.tables.push(t);
    r.tables.push(unreturned);
    r.tables.push(visits);
    r
}

fn not_returned_table(v: &View<'_>) -> Table {
    let mut t = Table::new(
        "Completed, not returned",
        &[
            ("ticket", "Ticket"),
            ("id", "Id"),
            ("engineer", "Engineer"),
            ("title", "Title"),
            ("completed", "Completed"),
            ("return_due", "Return due"),
            ("overdue_hours", "Hours overdue"),
        ],
    );
    let mut done: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| e.p.status == Status::Completed)
        .collect();
    done.sort_by_key(|e| e.p.completed_at);
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
    let mut r = Report::new("not-returned", "Completed but not returned", v);
    let t = not_returned_table(v);
    let overdue = t
        .column("overdue_hours")
        .into_iter()
        .filter(|h| !h.is_null())
        .count();
    r.stat("completed, not returned", t.rows.len());
    r.stat("past the return time", overdue);
    r.tables.push(t);
    r
}

/// 4. Money collected and waived in the period, materials cost of the work
///    completed in it, and the charges still outstanding. Amounts in fen.
pub(crate) fn cashier_close(v: &View<'_>) -> Report {
    let mut r = Report::new("cashier-close", "Cashier daily close", v);
    let mut coll = Table::new(
        "Collections",
        &[
            ("ticket", "Ticket"),
            ("receipt", "Receipt"),
            ("amount_fen", "Amount (fen)"),
            ("amount", "Amount"),
            ("method", "Method"),
            ("cashier", "Cashier"),
            ("at", "At"),
        ],
    );
    let mut waived = Table::new(
        "Waivers",
        &[
            ("ticket", "Ticket"),
            ("amount_fen", "Amount (fen)"),
            ("amount", "Amount"),
            ("reason", "Reason"),
            ("approver", "Approver"),
            ("at", "At"),
        ],
    );
    let mut materials = Table::new(
        "Materials cost of work completed",
        &[
            ("ticket", "Ticket"),
            ("engineer", "Engineer"),
            ("materials", "Materials"),
            ("cost_fen", "Cost (fen)"),
            ("cost", "Cost"),
        ],
    );
    let mut outstanding = Table::new(
        "Outstanding charges",
        &[
            ("ticket", "Ticket"),
            ("status", "Status"),
            ("charge_fen", "Charge (fen)"),
            ("outstanding_fen", "Outstanding (fen)"),
            ("outstanding", "Outstanding"),
        ],
    );
    let (mut total_in, mut total_waived, mut total_cost, mut total_out) =
        (Fen::ZERO, Fen::ZERO, Fen::ZERO, Fen::ZERO);
    let mut entries: Vec<&Entry> = v.entries.iter().filter(|e| e.p.kind.is_order()).collect();
    entries.sort_by_key(|e| e.ticket.server.serial);
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
    r.stat("collections", coll.rows.len());
    r.stat("collected (fen)", total_in.get());
    r.stat("collected", total_in.to_string());
    r.stat("waived (fen)", total_waived.get());
    r.stat("materials cost (fen)", total_cost.get());
    r.stat("outstanding (fen)", total_out.get());
    r.stat("orders awaiting the cashier", outstanding.rows.len());
    r.tables.extend([coll, waived, materials, outstanding]);
    r
}

/// 5. Per device: when it was last seen, the events it had made by the
///    cut-off that reached the relay only after it, and the conflicts awaiting
///    review.
pub(crate) fn sync_health(v: &View<'_>, devices: &[DeviceInfo]) -> Report {
    let mut r = Report::new("sync-health", "Device sync health", v);
    #[derive(Default)]
    struct Acc {
        unsynced: usize,
        oldest: Option<DateTime<Utc>>,
        longest: Option<Duration>,
        review: usize,
    }
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    for (_, ticket) in v.full {
        for e in &ticket.events {
            let a = acc.entry(e.device.to_string()).or_default();
            match ticket.server.verdicts.get(&e.id) {
                Some(vd) if vd.at <= v.as_of => {
                    let delay = vd.at - e.at;
                    a.longest = Some(a.longest.map_or(delay, |l| l.max(delay)));
                }
                _ if e.at <= v.as_of => {
                    a.unsynced += 1;
                    a.oldest = Some(a.oldest.map_or(e.at, |o| o.min(e.at)));
                }
                _ => {}
            }
        }
    }
    for e in &v.entries {
        for item in e.p.review.iter().filter(|i| i.resolution.is_none()) {
            acc.entry(item.event.device.to_string()).or_default().review += 1;
        }
    }
    let mut t = Table::new(
        "Devices",
        &[
            ("device", "Device"),
            ("user", "User"),
            ("last_seen", "Last seen"),
            ("revoked", "Revoked"),
            ("unsynced", "Unsynced at the cut-off"),
            ("oldest_unsynced", "Oldest unsynced (device time)"),
            ("longest_delay_hours", "Longest delay (hours)"),
            ("open_review", "Awaiting review"),
        ],
    );
    let empty = Acc::default();
    for d in devices {
        let a = acc.get(&d.device).unwrap_or(&empty);
        t.rows.push(vec![
            json!(d.device),
            json!(d.user),
            opt_time(d.last_seen.filter(|s| *s <= v.as_of)),
            json!(d.revoked),
            json!(a.unsynced),
            opt_time(a.oldest),
            json!(a.longest.map(hours)),
            json!(a.review),
        ]);
    }
    r.stat(
        "devices with unsynced events",
        acc.values().filter(|a| a.unsynced > 0).count(),
    );
    r.stat(
        "oldest unsynced event",
        opt_time(acc.values().filter_map(|a| a.oldest).min()),
    );
    r.stat(
        "conflicts awaiting review",
        acc.values().map(|a| a.review).sum::<usize>(),
    );
    r.tables.push(t);
    r
}

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

/// 6. Every open ticket, grouped by kind and department, in aging buckets.
pub(crate) fn weekly_unresolved(v: &View<'_>) -> Report {
    let mut r = Report::new("weekly-unresolved", "Weekly unresolved summary", v);
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
        "By kind and department",
        &[
            ("kind", "Kind"),
            ("department", "Department"),
            ("lt_1d", "<1d"),
            ("d1_3", "1–3d"),
            ("d3_7", "3–7d"),
            ("d7_14", "7–14d"),
            ("d14_30", "14–30d"),
            ("gt_30d", ">30d"),
            ("total", "Total"),
        ],
    );
    for ((kind, dept), counts) in &groups {
        let mut row = vec![json!(kind.as_str()), json!(dept)];
        row.extend(counts.iter().map(|n| json!(n)));
        row.push(json!(counts.iter().sum::<usize>()));
        g.rows.push(row);
    }
    let mut items = Table::new(
        "Open items",
        &[
            ("ticket", "Ticket"),
            ("id", "Id"),
            ("kind", "Kind"),
            ("department", "Department"),
            ("assignee", "Assignee"),
            ("status", "Status"),
            ("title", "Title"),
            ("age_days", "Age (days)"),
            ("bucket", "Bucket"),
            ("flags", "Flags"),
            ("follow_up", "Follow-up owner"),
        ],
    );
    let mut sorted = open.clone();
    sorted.sort_by_key(|e| e.received());
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
    r.stat("open", open.len());
    for (name, n) in BUCKETS.iter().zip(totals) {
        r.stat(*name, n);
    }
    r.stat(
        "FOCUS",
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
    let mut r = Report::new("focus-complaints", "Complaints open 7 days or more", v);
    let mut t = Table::new(
        "FOCUS complaints",
        &[
            ("ticket", "Ticket"),
            ("id", "Id"),
            ("title", "Title"),
            ("location", "Location"),
            ("received", "Received"),
            ("days_open", "Days open"),
            ("status", "Status"),
            ("department", "Department"),
            ("owner", "Owner"),
            ("actions", "Actions taken"),
            ("next_step", "Next step"),
            ("due", "Due"),
        ],
    );
    let mut focus: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| e.p.kind == Kind::Complaint && e.p.flags(v.as_of).contains(&Flag::Focus))
        .collect();
    focus.sort_by_key(|e| e.received());
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
    r.stat("FOCUS complaints", focus.len());
    r.stat(
        "without a named follow-up owner",
        focus.iter().filter(|e| e.p.follow_up.is_none()).count(),
    );
    r.tables.push(t);
    r
}

/// 8. Return visits: coverage, reached rate, satisfaction, dissatisfied
///    items and their rework.
pub(crate) fn return_visits(v: &View<'_>) -> Report {
    let mut r = Report::new("return-visits", "Return visits and satisfaction", v);
    let due: Vec<&Entry> = v
        .entries
        .iter()
        .filter(|e| e.p.visit_due.is_some_and(|d| d <= v.as_of))
        .collect();
    let visited = due.iter().filter(|e| e.p.visit_attempts > 0).count();
    let reached = due.iter().filter(|e| e.p.satisfaction.is_some()).count();
    let not_reached = due.iter().filter(|e| e.p.not_reached).count();
    let sats = count_by(due.iter().filter_map(|e| e.p.satisfaction));
    let pct = |a: usize, b: usize| {
        if b == 0 {
            Value::Null
        } else {
            json!(round1(100.0 * a as f64 / b as f64))
        }
    };
    r.stat("due", due.len());
    r.stat("visited", visited);
    r.stat("coverage %", pct(visited, due.len()));
    r.stat("reached", reached);
    r.stat("not reached", not_reached);
    r.stat("reached %", pct(reached, visited));
    for s in Satisfaction::ALL {
        r.stat(s.as_str(), sats.get(s).copied().unwrap_or(0));
    }
    let mut t = Table::new(
        "Dissatisfied",
        &[
            ("ticket", "Ticket"),
            ("id", "Id"),
            ("kind", "Kind"),
            ("title", "Title"),
            ("status", "Status"),
            ("engineer", "Engineer"),
            ("rework", "Rework order"),
            ("reopened", "Reopened"),
        ],
    );
    for e in due
        .iter()
        .filter(|e| e.p.satisfaction == Some(Satisfaction::Dissatisfied) || e.p.reopen_count > 0)
    {
        let reworked = e.accepted().any(|a| a == Action::Rework);
        t.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.kind.as_str()),
            json!(e.ticket.header.title),
            json!(e.p.status.as_str()),
            json!(e.p.completed_by),
            json!(
                reworked
                    .then(|| e.p.linked.map(|l| l.to_string()))
                    .flatten()
            ),
            json!(e.p.reopen_count),
        ]);
    }
    let mut visits = Table::new(
        "Visits due",
        &[
            ("ticket", "Ticket"),
            ("id", "Id"),
            ("kind", "Kind"),
            ("visit_due", "Visit due"),
            ("attempts", "Attempts"),
            ("satisfaction", "Satisfaction"),
            ("status", "Status"),
        ],
    );
    for e in &due {
        visits.rows.push(vec![
            json!(e.label()),
            json!(e.id.to_string()),
            json!(e.p.kind.as_str()),
            opt_time(e.p.visit_due),
            json!(e.p.visit_attempts),
            json!(e.p.satisfaction.map(Satisfaction::as_str)),
            json!(e.p.status.as_str()),
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
    r.tables.push(t);
    r.tables.push(visits);
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

/// 9. Per engineer: orders completed (in the period), response and
///    completion times (median, 90th percentile), first-time fix and rework
///    rates, hand-backs and transfers, average appraisal (3 satisfied, 2
///    basically satisfied, 1 dissatisfied).
pub(crate) fn engineer_performance(v: &View<'_>) -> Report {
    let mut r = Report::new("engineer-performance", "Engineer performance", v);
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
        "Engineers",
        &[
            ("engineer", "Engineer"),
            ("completed", "Completed"),
            ("response_median_h", "Response median (h)"),
            ("response_p90_h", "Response p90 (h)"),
            ("completion_median_h", "Completion median (h)"),
            ("completion_p90_h", "Completion p90 (h)"),
            ("first_time_fix_pct", "First-time fix %"),
            ("rework_pct", "Rework %"),
            ("hand_backs", "Hand-backs"),
            ("transfers", "Transfers"),
            ("appraisal", "Average appraisal"),
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
    r.stat("engineers", acc.len());
    r.stat(
        "orders completed",
        acc.values().map(|a| a.completed).sum::<usize>(),
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

// ------------------------------------------------------------ HTTP

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/reports", get(list))
        .route("/api/v1/reports/{name}", get(report))
}

async fn list(Authed(p): Authed) -> Json<Value> {
    Json(json!({
        "reports": REPORTS.iter().map(|(name, title, roles)| json!({
            "name": name, "title": title, "allowed": roles.contains(&p.role),
        })).collect::<Vec<_>>()
    }))
}

#[derive(Deserialize, Default)]
struct ReportQuery {
    as_of: Option<String>,
    from: Option<String>,
    format: Option<String>,
}

async fn report(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(name): Path<String>,
    crate::api::Params(q): crate::api::Params<ReportQuery>,
) -> AppResult<Response> {
    let Some((name, _, roles)) = REPORTS.iter().find(|(n, _, _)| *n == name) else {
        return Err(AppError::NotFound(format!("no report {name:?}")));
    };
    if !roles.contains(&p.role) {
        return Err(AppError::Forbidden(format!(
            "a {} may not read the {name} report",
            p.role
        )));
    }
    let now = relay.hub.now();
    let as_of = crate::api::parse_time(q.as_of.as_deref(), "as_of")?.unwrap_or(now);
    let weekly = matches!(*name, "weekly-unresolved" | "engineer-performance");
    let default_from = if weekly {
        as_of - Duration::days(7)
    } else {
        as_of
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .unwrap_or_default()
            .and_utc()
    };
    let from = crate::api::parse_time(q.from.as_deref(), "from")?.unwrap_or(default_from);
    if from > as_of {
        return Err(AppError::BadRequest("from must not be after as_of".into()));
    }
    let tickets = load_all_tickets(&relay).await?;
    let devices = relay
        .db
        .read(move |c| {
            Ok(records::devices(c)?
                .into_iter()
                .map(|d| DeviceInfo {
                    device: d.device_id.to_string(),
                    user: d.username.to_string(),
                    last_seen: d.last_seen_at,
                    revoked: d.revoked_at.is_some_and(|r| r <= as_of),
                })
                .collect::<Vec<_>>())
        })
        .await?;
    let policy = relay.hub.policy.clone();
    let name = (*name).to_owned();
    let report = tokio::task::spawn_blocking(move || {
        let view = View::new(&tickets, as_of, from, &policy);
        compute(&name, &view, &devices)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .ok_or_else(|| AppError::Internal("report vanished".into()))?;
    if q.format.as_deref() == Some("csv") {
        let file = format!("{}-{}.csv", report.name, as_of.format("%Y%m%dT%H%M%SZ"));
        return Ok((
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{file}\""),
                ),
            ],
            format!("\u{feff}{}", report.to_csv()),
        )
            .into_response());
    }
    Ok(Json(report).into_response())
}

/// Every stored ticket document, read in full (the register rows name them).
///
/// # Errors
/// Storage errors; a document that does not read as a ticket is skipped and
/// logged, so one damaged document cannot hide every report.
pub(crate) async fn load_all_tickets(relay: &Relay) -> AppResult<Vec<(DocId, Ticket)>> {
    let filter = records::TicketFilter {
        limit: 1_000_000,
        ..records::TicketFilter::default()
    };
    let ids: Vec<DocId> = relay
        .db
        .read(move |c| {
            Ok(records::tickets(c, &filter)?
                .into_iter()
                .map(|r| r.doc_id)
                .collect())
        })
        .await?;
    let db = relay.db.clone();
    tokio::task::spawn_blocking(move || -> AppResult<Vec<(DocId, Ticket)>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(stored) = db.read_blocking(move |c| records::load_document(c, id))? else {
                continue;
            };
            match read_stored(&stored) {
                Ok(t) => out.push((id, t)),
                Err(e) => tracing::warn!(%id, error = %e, "a ticket left out of the reports"),
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
}

/// Reads a stored document (snapshot plus chunks) as a ticket.
pub(crate) fn read_stored(stored: &records::StoredDoc) -> Result<Ticket, String> {
    let doc = crate::dashboard::load(stored)?;
    schema::doc::read_ticket(&doc, None).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
