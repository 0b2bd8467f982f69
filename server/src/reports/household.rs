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

    let mut t = Table::new(
        ("住户", "Residents"),
        &[
            ("name", "姓名", "name"),
            ("relation", "关系", "relation"),
            ("phone", "电话", "phone"),
        ],
    );
    for p in list(&h["residents"]) {
        t.rows.push(vec![
            text(&p["name"]),
            text(&p["relation"]),
            text(&p["phone"]),
        ]);
    }
    r.tables.push(t);

    let mut t = Table::new(
        ("工单", "Tickets"),
        &[
            ("serial", "编号", "serial"),
            ("kind", "类别", "kind"),
            ("title", "事项", "title"),
            ("status", "状态", "status"),
            ("received", "受理时间", "received"),
            ("satisfaction", "满意度", "satisfaction"),
        ],
    );
    for k in list(&x["tickets"]) {
        t.rows.push(vec![
            text(&k["serial"]),
            text(&k["kind"]),
            text(&k["title"]),
            text(&k["status"]),
            wall(&k["received_at"], tz),
            text(&k["satisfaction"]),
        ]);
    }
    r.tables.push(t);

    if l.get("bills").is_some() {
        ledger_tables(&mut r, l, tz);
    }

    let mut t = Table::new(
        ("档案变更", "Changes to the file"),
        &[
            ("version", "版本", "version"),
            ("at", "时间", "at"),
            ("by", "经办人", "by"),
            ("what", "变更", "what"),
        ],
    );
    for e in list(&x["history"]) {
        t.rows.push(vec![
            text(&e["version"]),
            wall(&e["at"], tz),
            text(&e["by"]),
            text(&e["what"]),
        ]);
    }
    r.tables.push(t);
    r
}

/// The fee statement's tables (for those who may read the ledger).
fn ledger_tables(r: &mut Report, l: &Value, tz: Tz) {
    let mut t = Table::new(
        ("账单", "Bills"),
        &[
            ("number", "账单号", "number"),
            ("item", "收费项目", "item"),
            ("period", "月份", "period"),
            ("amount", "金额（元）", "amount (yuan)"),
            ("outstanding", "未缴（元）", "outstanding (yuan)"),
        ],
    );
    for b in list(&l["bills"]) {
        t.rows.push(vec![
            text(&b["number"]),
            text(&b["item"]),
            text(&b["period"]),
            yuan(&b["amount_fen"]),
            yuan(&b["outstanding_fen"]),
        ]);
    }
    r.tables.push(t);
    let mut t = Table::new(
        ("收款", "Payments"),
        &[
            ("receipt", "收据号", "receipt"),
            ("amount", "金额（元）", "amount (yuan)"),
            ("method", "方式", "method"),
            ("cashier", "收款人", "cashier"),
            ("at", "时间", "at"),
        ],
    );
    for p in list(&l["payments"]) {
        t.rows.push(vec![
            text(&p["receipt"]),
            yuan(&p["amount_fen"]),
            text(&p["method"]),
            text(&p["cashier"]),
            wall(&p["at"], tz),
        ]);
    }
    r.tables.push(t);
    let mut t = Table::new(
        ("退款与调整", "Refunds and adjustments"),
        &[
            ("number", "单号", "number"),
            ("kind", "类型", "kind"),
            ("bill", "账单号", "bill"),
            ("amount", "金额（元）", "amount (yuan)"),
            ("reason", "原因", "reason"),
            ("approved_by", "批准人", "approved by"),
            ("at", "时间", "at"),
        ],
    );
    for a in list(&l["adjustments"]) {
        t.rows.push(vec![
            text(&a["number"]),
            text(&a["kind"]),
            text(&a["bill"]),
            yuan(&a["amount_fen"]),
            text(&a["reason"]),
            text(&a["approved_by"]),
            wall(&a["at"], tz),
        ]);
    }
    r.tables.push(t);
    let mut t = Table::new(
        ("催缴", "Arrears reminders"),
        &[
            ("channel", "方式", "channel"),
            ("result", "结果", "result"),
            ("by", "经办人", "by"),
            ("at", "时间", "at"),
        ],
    );
    for m in list(&l["reminders"]) {
        t.rows.push(vec![
            text(&m["channel"]),
            text(&m["result"]),
            text(&m["by"]),
            wall(&m["at"], tz),
        ]);
    }
    r.tables.push(t);
}
