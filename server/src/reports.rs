//! The supervisor's and manager's reports (DOMAIN.md, "Reports a supervisor or
//! manager expects"), computed "as of" a cut-off.
//!
//! Every report is a pure function over ticket documents: each ticket is cut
//! back to the verdicts the relay had written by the cut-off ([`as_of`]) and
//! folded with [`Projection::official`], so a weekly summary printed on Monday
//! 09:00 can be reproduced exactly later, whatever arrived since. What was
//! recorded before the cut-off but reached the relay after it is listed in the
//! report's "changes since the cut-off" section, never in its figures.
//!
//! Each report states what its period means ([`Period`], also in
//! `docs/reports.md`): counted when made in the period, when received in it,
//! when due or made in it, or open at the cut-off. Periods are the property's
//! local days and weeks (`crate::settings`).
//!
//! A [`Report`] is a few summary figures, tables (columns and rows) and charts;
//! the dashboard draws it and [`Report::to_csv`] exports it. The daily reports
//! are in `daily.rs`, the weekly ones in `weekly.rs`, the HTTP side
//! (`/api/v1/reports/{name}`) in `http.rs`.

mod daily;
pub(crate) mod fee_collection;
pub(crate) mod household;
mod http;

pub(crate) use http::respond;
mod weekly;
pub(crate) mod xlsx;

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use schema::doc::rfc3339;
use schema::lifecycle::Action;
use schema::{DocId, Fen, Flag, Outcome, Policy, Projection, Role, Status, Ticket};
use serde::Serialize;
use serde_json::{Value, json};

use crate::csvout::CsvOut;
pub(crate) use crate::store::Numbered;

pub(crate) use http::{read_stored, router};

/// One report's figures.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) title_zh: &'static str,
    /// What the period means for this report.
    pub(crate) period: Period,
    /// The property's time zone: the days and weeks the period is made of.
    pub(crate) time_zone: &'static str,
    pub(crate) as_of: String,
    pub(crate) from: String,
    pub(crate) summary: Vec<Stat>,
    pub(crate) tables: Vec<Table>,
    pub(crate) charts: Vec<Chart>,
    /// Recorded by the cut-off but received after it: listed, never counted.
    pub(crate) changes_since: Vec<Table>,
}

/// How long a report's default period is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Span {
    /// The cut-off's local day, from local midnight.
    Day,
    /// The cut-off's local week, from Monday 00:00.
    Week,
    /// The cut-off's local month, from its first day 00:00.
    Month,
}

/// What a report's period means, stated on the report and in its CSV.
#[derive(Clone, Copy, Debug, Serialize)]
pub(crate) struct Period {
    /// A stable name: `received_in_period`, `made_in_period`,
    /// `due_or_made_in_period`, `issued_in_period`, `open_at_cut_off`, …
    pub(crate) basis: &'static str,
    /// The default period when no `from` is given.
    pub(crate) span: Span,
    /// For people, in Chinese.
    pub(crate) zh: &'static str,
    /// For people, in English.
    pub(crate) en: &'static str,
}

/// A report this relay computes.
#[derive(Debug)]
pub(crate) struct Def {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) title_zh: &'static str,
    pub(crate) roles: &'static [Role],
    pub(crate) period: Period,
}

/// A labelled figure; `label` is the stable English key.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Stat {
    pub(crate) label: String,
    pub(crate) zh: String,
    pub(crate) value: Value,
}

/// A table: column keys and labels, then rows in column order.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Table {
    pub(crate) title: String,
    pub(crate) title_zh: String,
    pub(crate) columns: Vec<Column>,
    pub(crate) rows: Vec<Vec<Value>>,
}

/// A table column.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Column {
    pub(crate) key: &'static str,
    pub(crate) label: &'static str,
    pub(crate) zh: &'static str,
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

/// A column: key, Chinese label, English label.
type Col = (&'static str, &'static str, &'static str);

impl Table {
    fn new(title: (&str, &str), columns: &[Col]) -> Self {
        Self {
            title_zh: title.0.into(),
            title: title.1.into(),
            columns: columns
                .iter()
                .map(|&(key, zh, label)| Column { key, label, zh })
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
    fn new(name: &'static str, v: &View<'_>) -> Self {
        let def = def(name);
        Self {
            name,
            title: def.map_or(name, |d| d.title),
            title_zh: def.map_or(name, |d| d.title_zh),
            period: def.map_or(OPEN_AT_CUT_OFF, |d| d.period),
            time_zone: v.tz.name(),
            as_of: rfc3339(v.as_of),
            from: rfc3339(v.from),
            summary: Vec::new(),
            tables: Vec::new(),
            charts: Vec::new(),
            changes_since: Vec::new(),
        }
    }

    fn stat(&mut self, label: impl Into<String>, zh: impl Into<String>, value: impl Into<Value>) {
        self.summary.push(Stat {
            label: label.into(),
            zh: zh.into(),
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

    /// A table by title, the "changes since" section included (for tests).
    #[cfg(test)]
    pub(crate) fn table(&self, title: &str) -> Option<&Table> {
        self.tables
            .iter()
            .chain(&self.changes_since)
            .find(|t| t.title == title)
    }

    /// The report as CSV: a header block (report, what its period means, time
    /// zone, cut-off, period start, summary), then each table under its
    /// title, then the "changes since the cut-off" tables, separated by blank
    /// lines.
    pub(crate) fn to_csv(&self) -> String {
        let mut out = CsvOut::default();
        let both = |zh: &str, en: &str| {
            if zh.is_empty() {
                en.to_owned()
            } else {
                format!("{zh} / {en}")
            }
        };
        out.row(["report".into(), both(self.title_zh, self.title)]);
        out.row(["period".into(), both(self.period.zh, self.period.en)]);
        out.row(["time_zone", self.time_zone]);
        out.row(["as_of", self.as_of.as_str()]);
        out.row(["from", self.from.as_str()]);
        for s in &self.summary {
            out.row([both(&s.zh, &s.label), plain(&s.value)]);
        }
        let table = |out: &mut CsvOut, t: &Table| {
            out.blank();
            out.row([both(&t.title_zh, &t.title)]);
            out.row(t.columns.iter().map(|c| c.key));
            for r in &t.rows {
                out.row(r.iter().map(plain));
            }
        };
        for t in &self.tables {
            table(&mut out, t);
        }
        if !self.changes_since.is_empty() {
            out.blank();
            out.row([both(
                "截止后到达（不计入以上数字）",
                "Changes since the cut-off (not in the figures above)",
            )]);
        }
        for t in &self.changes_since {
            table(&mut out, t);
        }
        out.finish()
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

    /// When the relay received the ticket (its creation verdict).
    fn received(&self) -> DateTime<Utc> {
        self.p.received_at.unwrap_or(self.ticket.header.reported.at)
    }
}

fn short_id(id: DocId) -> String {
    id.to_string().chars().take(8).collect()
}

/// The tickets as of a cut-off, and the period a report covers.
#[derive(Debug)]
pub(crate) struct View<'a> {
    pub(crate) as_of: DateTime<Utc>,
    /// Start of the reporting period (a day, a week); ends at `as_of`.
    pub(crate) from: DateTime<Utc>,
    /// The property's time zone (local days for "due today").
    pub(crate) tz: Tz,
    pub(crate) policy: &'a Policy,
    /// Tickets that existed at the cut-off.
    pub(crate) entries: Vec<Entry>,
    /// Every ticket as stored now (for what arrived after the cut-off).
    pub(crate) full: &'a [(DocId, Ticket)],
    /// Every numbered ticket received by the cut-off, in any period (the
    /// serial register's continuity spans whole years). Taken from `full`;
    /// the relay replaces it with the register's list, since `full` holds
    /// only the tickets the period needs.
    pub(crate) numbered: Vec<Numbered>,
}

impl<'a> View<'a> {
    /// Cuts every ticket back to `as_of`; a ticket whose creation was not yet
    /// accepted by then is left out.
    pub(crate) fn new(
        full: &'a [(DocId, Ticket)],
        as_of: DateTime<Utc>,
        from: DateTime<Utc>,
        tz: Tz,
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
            .collect::<Vec<_>>();
        let numbered = entries
            .iter()
            .filter_map(|e| {
                e.ticket.server.serial.map(|serial| Numbered {
                    serial,
                    doc: e.id,
                    received: e.received(),
                })
            })
            .collect();
        Self {
            as_of,
            from,
            tz,
            policy,
            entries,
            full,
            numbered,
        }
    }

    /// Whether `t` falls in the period (both ends included).
    fn in_period(&self, t: DateTime<Utc>) -> bool {
        t >= self.from && t <= self.as_of
    }

    /// The label of a ticket named by a document URL, as of the cut-off.
    fn label_of(&self, id: DocId) -> String {
        self.entries
            .iter()
            .find(|e| e.id == id)
            .map_or_else(|| short_id(id), Entry::label)
    }

    /// Events made by the cut-off (device time) whose verdict came after it.
    fn late_table(&self) -> Table {
        let mut t = Table::new(
            (
                "截止前记录、截止后到达",
                "Recorded before the cut-off, arrived after",
            ),
            &[
                ("ticket", "单号", "Ticket"),
                ("action", "操作", "Action"),
                ("by", "操作人", "By"),
                ("device", "设备", "Device"),
                ("at", "设备时间", "Device time"),
                ("judged_at", "到达时间", "Relay time"),
                ("outcome", "裁决", "Verdict"),
            ],
        );
        let mut rows = Vec::new();
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
                    rows.push((
                        (e.at, v.seq, label.clone()),
                        vec![
                            json!(label),
                            json!(e.action),
                            json!(e.by),
                            json!(e.device),
                            json!(rfc3339(e.at)),
                            json!(rfc3339(v.at)),
                            json!(v.outcome.as_str()),
                        ],
                    ));
                }
            }
        }
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        t.rows = rows.into_iter().map(|(_, r)| r).collect();
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

/// `a` of `b` as a percentage with one decimal; null when `b` is 0.
fn pct(a: usize, b: usize) -> Value {
    if b == 0 {
        Value::Null
    } else {
        json!(round1(100.0 * a as f64 / b as f64))
    }
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

const DAILY: &[Role] = &[
    Role::FrontDesk,
    Role::Supervisor,
    Role::Manager,
    Role::EngineeringSupervisor,
];
const CASH: &[Role] = &[Role::Cashier, Role::Supervisor, Role::Manager];
const SUPERVISION: &[Role] = &[Role::Supervisor, Role::Manager, Role::EngineeringSupervisor];
const ENGINEERING: &[Role] = &[Role::Supervisor, Role::Manager, Role::EngineeringSupervisor];

const OPEN_AT_CUT_OFF: Period = Period {
    basis: "open_at_cut_off",
    span: Span::Day,
    zh: "截止时仍未结的事项；账龄自受理起算",
    en: "open at the cut-off; age counted from receipt",
};

/// Report 16's period: a month of the fee ledger.
const FEE_PERIOD: Period = Period {
    basis: "billed_for_month",
    span: Span::Month,
    zh: "所选月份的账单（本期）及此前月份的账单（往期），收款和调整以截止时为准；户收费率、收费率、清缴率的公式印在报表上",
    en: "bills for the month (current period) and earlier months (arrears), payments and adjustments as at the cut-off; each rate's formula is printed on the report",
};

/// The reports this relay computes, who may read each, and what its period
/// means (docs/reports.md says the same at more length).
pub(crate) const REPORTS: &[Def] = &[
    Def {
        name: "daily-register",
        title: "Front-desk daily register",
        title_zh: "前台来电登记日报",
        roles: DAILY,
        period: Period {
            basis: "received_in_period",
            span: Span::Day,
            zh: "期间内受理（中继收到登记）的事项；检查标记以截止时为准",
            en: "matters received in the period (the relay's receipt); check marks as at the cut-off",
        },
    },
    Def {
        name: "serial-register",
        title: "Repair-order serial register",
        title_zh: "维修单号登记表",
        roles: DAILY,
        period: Period {
            basis: "issued_in_period",
            span: Span::Day,
            zh: "期间内发出的单号及其截止时状态；连续性按截止时每个系列和年份全部单号检查",
            en: "numbers issued in the period, each in its state at the cut-off; continuity over every number of each series and year at the cut-off",
        },
    },
    Def {
        name: "open-overdue",
        title: "Open and overdue",
        title_zh: "未结及超时清单",
        roles: DAILY,
        period: Period {
            basis: "open_at_cut_off",
            span: Span::Day,
            zh: "截止时仍未结的事项；回访为截止当天结束前到期的",
            en: "open at the cut-off; return visits falling due by the end of the cut-off's day",
        },
    },
    Def {
        name: "not-returned",
        title: "Completed but not returned",
        title_zh: "完工未回单",
        roles: DAILY,
        period: Period {
            basis: "open_at_cut_off",
            span: Span::Day,
            zh: "截止时已完工、工程联尚未交回的维修单",
            en: "orders completed whose engineering copy is not back at the cut-off",
        },
    },
    Def {
        name: "cashier-close",
        title: "Cashier daily close",
        title_zh: "收银日结",
        roles: CASH,
        period: Period {
            basis: "made_in_period",
            span: Span::Day,
            zh: "期间内收款和减免；期间内完工的材料成本；截止时待收款",
            en: "collections and waivers made in the period; materials of work completed in it; charges outstanding at the cut-off",
        },
    },
    Def {
        name: "sync-health",
        title: "Device sync health",
        title_zh: "设备同步状况",
        roles: SUPERVISION,
        period: Period {
            basis: "received_in_period",
            span: Span::Day,
            zh: "截止时的设备与待复核冲突；延迟按期间内中继收到的事件计；截止后才到达的事件只列在“截止后到达”",
            en: "devices and conflicts awaiting review at the cut-off; delays of the events the relay received in the period; events that arrived after the cut-off only under changes since",
        },
    },
    Def {
        name: "weekly-unresolved",
        title: "Weekly unresolved summary",
        title_zh: "每周未结事项汇总",
        roles: SUPERVISION,
        period: Period {
            basis: "open_at_cut_off",
            span: Span::Week,
            zh: "截止时仍未结的全部事项和维修单，按受理起算的账龄分段",
            en: "every matter and order open at the cut-off, in aging buckets counted from receipt",
        },
    },
    Def {
        name: "focus-complaints",
        title: "Complaints open 7 days or more",
        title_zh: "投诉一周未解决重点跟进表",
        roles: SUPERVISION,
        period: Period {
            basis: "open_at_cut_off",
            span: Span::Week,
            zh: "截止时受理已满七天仍未结的投诉（重点跟进）",
            en: "complaints open at the cut-off seven days or more after receipt (FOCUS)",
        },
    },
    Def {
        name: "return-visits",
        title: "Return visits and satisfaction",
        title_zh: "回访及满意度",
        roles: SUPERVISION,
        period: Period {
            basis: "due_or_made_in_period",
            span: Span::Week,
            zh: "回访计入其完成的期间；覆盖率 = 期间内完成的回访 ÷ 期间内到期或完成的回访；提前、按时、逾期、未联系上分列",
            en: "a visit counts in the period it was made; coverage = visits made in the period over visits due or made in it; early, on time, late and not reached told apart",
        },
    },
    Def {
        name: "engineer-performance",
        title: "Engineer performance",
        title_zh: "工程人员绩效",
        roles: ENGINEERING,
        period: Period {
            basis: "made_in_period",
            span: Span::Week,
            zh: "期间内完工的维修单（按完工人计）；期间内的退单和转单；满意度以截止时的回访为准",
            en: "orders completed in the period, by who completed them; hand-backs and transfers made in the period; appraisal from visits made by the cut-off",
        },
    },
    Def {
        name: "fee-collection",
        title: "Property-fee collection",
        title_zh: "物业费收缴",
        roles: &[Role::Cashier, Role::Supervisor, Role::Manager],
        period: FEE_PERIOD,
    },
];

/// A report's definition by name.
pub(crate) fn def(name: &str) -> Option<&'static Def> {
    REPORTS.iter().find(|d| d.name == name)
}

/// What a device sync-health row needs from the relay's tables.
#[derive(Clone, Debug)]
pub(crate) struct DeviceInfo {
    pub(crate) device: String,
    pub(crate) user: String,
    /// The last sync session started at or before the cut-off.
    pub(crate) last_seen: Option<DateTime<Utc>>,
    /// Revoked at or before the cut-off.
    pub(crate) revoked: bool,
}

/// Computes the report `name`; `None` when there is no such report.
pub(crate) fn compute(name: &str, v: &View<'_>, devices: &[DeviceInfo]) -> Option<Report> {
    let mut r = match name {
        "daily-register" => daily::daily_register(v),
        "serial-register" => daily::serial_register(v),
        "open-overdue" => daily::open_overdue(v),
        "not-returned" => daily::not_returned(v),
        "cashier-close" => daily::cashier_close(v),
        "sync-health" => daily::sync_health(v, devices),
        "weekly-unresolved" => weekly::weekly_unresolved(v),
        "focus-complaints" => weekly::focus_complaints(v),
        "return-visits" => weekly::return_visits(v),
        "engineer-performance" => weekly::engineer_performance(v),
        _ => return None,
    };
    r.changes_since.insert(0, v.late_table());
    Some(r)
}

fn count_by<K: Ord>(items: impl Iterator<Item = K>) -> std::collections::BTreeMap<K, usize> {
    let mut m = std::collections::BTreeMap::new();
    for k in items {
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

#[cfg(test)]
mod tests;
