//! Report 17, the household file extract (一户一档), as a report: the same
//! extract the JSON endpoint and the printed page show, "as of" a cut-off,
//! laid out as figures and tables for its CSV and XLSX export.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use schema::doc::rfc3339;
use serde_json::Value;

use super::{Period, Report, Span, Table};
use crate::fees::show_fen;

/// What the extract's cut-off means.
const RECORDED_BY_CUT_OFF: Period = Period {
    basis: "recorded_by_cut_off",
    span: Span::Month,
    zh: "截止时已记录的档案、工单和账目",
    en: "the file, the tickets and the ledger as recorded by the cut-off",
};

fn text(v: &Value) -> Value {
    match v {
        Value::Null => Value::String(String::new()),
        Value::Array(a) => Value::String(
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        other => other.clone(),
    }
}

fn yuan(v: &Value) -> Value {
    Value::String(v.as_i64().map(show_fen).unwrap_or_default())
}

/// An RFC 3339 time as the property's wall time; anything else as it is.
fn wall(v: &Value, tz: Tz) -> Value {
    match v.as_str().and_then(|s| s.parse::<DateTime<Utc>>().ok()) {
        Some(t) => Value::String(crate::settings::wall_time(t, tz)),
        None => text(v),
    }
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

/// The extract `x` (as [`crate::property`] builds it) as a report.
pub(crate) fn extract_report(x: &Value, as_of: DateTime<Utc>, tz: Tz) -> Report {
    let mut r = Report {
        name: "household-file",
        title: "Household file extract",
        title_zh: "一户一档",
        period: RECORDED_BY_CUT_OFF,
        time_zone: tz.name(),
        as_of: rfc3339(as_of),
        from: rfc3339(as_of),
        summary: Vec::new(),
        tables: Vec::new(),
        charts: Vec::new(),
        changes_since: Vec::new(),
    };
    let h = &x["household"];
    r.stat("unit", "单元", text(&h["unit"]));
    r.stat("building", "楼栋", text(&h["building"]));
    let area = h["area_centi_m2"].as_i64().unwrap_or(0);
    r.stat(
        "floor area, m²",
        "面积（m²）",
        format!("{}.{:02}", area / 100, area % 100),
    );
    r.stat("occupancy", "类型", text(&h["occupancy"]));
    r.stat("moved in", "入住日期", text(&h["move_in"]));
    r.stat("moved out", "迁出日期", text(&h["move_out"]));
    r.stat("vehicles", "车牌", text(&h["vehicles"]));
    r.stat("parking", "车位", text(&h["parking"]));
    r.stat("notes", "备注", text(&h["notes"]));
    r.stat("file version", "档案版本", text(&h["version"]));
    let l = &x["ledger"];
    if l.get("arrears_fen").is_some() {
        r.stat("arrears (yuan)", "欠费（元）", yuan(&l["arrears_fen"]));
        r.stat("credit (yuan)", "预存（元）", yuan(&l["credit_fen"]));
    } else {
        r.stat("in arrears", "是否欠费", l["in_arrears"].clone());
    }

    let tables = [
        (("住户", "Residents"), RESIDENTS, &h["residents"]),
        (("工单", "Tickets"), TICKETS, &x["tickets"]),
        (("账单", "Bills"), BILLS, &l["bills"]),
        (("收款", "Payments"), PAYMENTS, &l["payments"]),
        (
            ("退款与调整", "Refunds and adjustments"),
            ADJUSTMENTS,
            &l["adjustments"],
        ),
        (("催缴", "Arrears reminders"), REMINDERS, &l["reminders"]),
        (("档案变更", "Changes to the file"), HISTORY, &x["history"]),
    ];
    for (title, columns, rows) in tables {
        // The front desk's extract has no statement: no ledger tables.
        if rows.is_array() {
            r.tables.push(rows_table(title, columns, list(rows), tz));
        }
    }
    r
}

/// How a cell shows its field.
#[derive(Clone, Copy)]
enum Shown {
    Text,
    Yuan,
    Wall,
}

/// A column: key, Chinese label, English label, the extract's field, how it
/// is shown.
type Field = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Shown,
);

const RESIDENTS: &[Field] = &[
    ("name", "姓名", "name", "name", Shown::Text),
    ("relation", "关系", "relation", "relation", Shown::Text),
    ("phone", "电话", "phone", "phone", Shown::Text),
];
const TICKETS: &[Field] = &[
    ("serial", "编号", "serial", "serial", Shown::Text),
    ("kind", "类别", "kind", "kind", Shown::Text),
    ("title", "事项", "title", "title", Shown::Text),
    ("status", "状态", "status", "status", Shown::Text),
    (
        "received",
        "受理时间",
        "received",
        "received_at",
        Shown::Wall,
    ),
    (
        "satisfaction",
        "满意度",
        "satisfaction",
        "satisfaction",
        Shown::Text,
    ),
];
const BILLS: &[Field] = &[
    ("number", "账单号", "number", "number", Shown::Text),
    ("item", "收费项目", "item", "item", Shown::Text),
    ("period", "月份", "period", "period", Shown::Text),
    (
        "amount",
        "金额（元）",
        "amount (yuan)",
        "amount_fen",
        Shown::Yuan,
    ),
    (
        "outstanding",
        "未缴（元）",
        "outstanding (yuan)",
        "outstanding_fen",
        Shown::Yuan,
    ),
];
const PAYMENTS: &[Field] = &[
    ("receipt", "收据号", "receipt", "receipt", Shown::Text),
    (
        "amount",
        "金额（元）",
        "amount (yuan)",
        "amount_fen",
        Shown::Yuan,
    ),
    ("method", "方式", "method", "method", Shown::Text),
    ("cashier", "收款人", "cashier", "cashier", Shown::Text),
    ("at", "时间", "at", "at", Shown::Wall),
];
const ADJUSTMENTS: &[Field] = &[
    ("number", "单号", "number", "number", Shown::Text),
    ("kind", "类型", "kind", "kind", Shown::Text),
    ("bill", "账单号", "bill", "bill", Shown::Text),
    (
        "amount",
        "金额（元）",
        "amount (yuan)",
        "amount_fen",
        Shown::Yuan,
    ),
    ("reason", "原因", "reason", "reason", Shown::Text),
    (
        "approved_by",
        "批准人",
        "approved by",
        "approved_by",
        Shown::Text,
    ),
    ("at", "时间", "at", "at", Shown::Wall),
];
const REMINDERS: &[Field] = &[
    ("channel", "方式", "channel", "channel", Shown::Text),
    ("result", "结果", "result", "result", Shown::Text),
    ("by", "经办人", "by", "by", Shown::Text),
    ("at", "时间", "at", "at", Shown::Wall),
];
const HISTORY: &[Field] = &[
    ("version", "版本", "version", "version", Shown::Text),
    ("at", "时间", "at", "at", Shown::Wall),
    ("by", "经办人", "by", "by", Shown::Text),
    ("what", "变更", "what", "what", Shown::Text),
];

/// One section of the extract as a table, a row per entry.
fn rows_table(title: (&str, &str), columns: &[Field], rows: &[Value], tz: Tz) -> Table {
    let spec: Vec<super::Col> = columns
        .iter()
        .map(|&(key, zh, en, _, _)| (key, zh, en))
        .collect();
    let mut t = Table::new(title, &spec);
    for row in rows {
        t.rows.push(
            columns
                .iter()
                .map(|&(_, _, _, field, shown)| match shown {
                    Shown::Text => text(&row[field]),
                    Shown::Yuan => yuan(&row[field]),
                    Shown::Wall => wall(&row[field], tz),
                })
                .collect(),
        );
    }
    t
}
