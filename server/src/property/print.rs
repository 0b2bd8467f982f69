//! Report 17 printed: the household file extract (一户一档) as one A4 HTML
//! page, like the repair order's print page. Chinese first, English beside.
//! The same people as the JSON extract may print it (front desk,
//! supervisors, managers, cashiers), and they see the same things: the
//! front desk sees whether the household is in arrears, the others its
//! fee statement.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use super::http::{ExtractQuery, READERS, extract_of, parse_id, require};
use crate::dashboard::print::esc;
use crate::error::AppResult;
use crate::extract::{Authed, Params};
use crate::fees::show_fen;
use crate::state::Relay;

/// The page's stylesheet (A4, printable), served at `/households/print.css`.
const CSS: &str = include_str!("household_print.css");

/// `GET /households/print.css`.
pub(super) async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CSS,
    )
        .into_response()
}

/// `GET /households/{id}/print` (`?as_of=` prints the file as recorded by
/// that cut-off).
pub(super) async fn household(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
    Params(q): Params<ExtractQuery>,
) -> AppResult<Response> {
    require(&p, READERS, "print household files")?;
    let id = parse_id(&id)?;
    let tz = crate::settings::time_zone(&relay).await?;
    let as_of = crate::settings::parse_time(q.as_of.as_deref(), "as_of", tz)?;
    let extract = extract_of(&relay, &p, id, as_of).await?;
    let cut = as_of.unwrap_or_else(|| relay.hub.now());
    let html = render(&extract, &id.to_string(), cut, tz);
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    Ok(r)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An RFC 3339 time as the property's wall time; a date stays as it is.
fn when(v: &Value, tz: Tz) -> String {
    let s = text(v);
    s.parse::<DateTime<Utc>>()
        .map_or(s, |t| crate::settings::wall_time(t, tz))
}

fn fen(v: &Value) -> String {
    v.as_i64().map(show_fen).unwrap_or_default()
}

fn field(zh_en: &str, value: &str) -> String {
    format!(
        "<div class=\"f\"><span class=\"k\">{}</span><span class=\"v\">{}</span></div>",
        esc(zh_en),
        esc(value)
    )
}

/// A table: a caption, (Chinese, English) headers, rows of cells (already
/// text), and what to say when there are none.
fn table(
    caption: (&str, &str),
    head: &[(&str, &str)],
    rows: &[Vec<String>],
    empty: &str,
) -> String {
    let head: String = head
        .iter()
        .map(|(zh, en)| format!("<th>{} <small>{}</small></th>", esc(zh), esc(en)))
        .collect();
    let body: String = if rows.is_empty() {
        format!(
            "<tr><td class=\"none\" colspan=\"99\">{}</td></tr>",
            esc(empty)
        )
    } else {
        rows.iter()
            .map(|r| {
                let cells: String = r.iter().map(|c| format!("<td>{}</td>", esc(c))).collect();
                format!("<tr>{cells}</tr>")
            })
            .collect()
    };
    format!(
        "<section><h2>{} <small>{}</small></h2><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>",
        esc(caption.0),
        esc(caption.1)
    )
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn occupancy(v: &Value) -> String {
    match v.as_str() {
        Some("owner") => "业主 owner".into(),
        Some("tenant") => "租户 tenant".into(),
        _ => text(v),
    }
}

fn kind(v: &Value) -> String {
    let zh = match v.as_str().unwrap_or_default() {
        "repair" => "维修",
        "complaint" => "投诉",
        "praise" => "表扬",
        "suggestion" => "建议",
        "need" => "需求",
        "paid_service" => "有偿服务",
        _ => "",
    };
    format!("{zh} {}", text(v)).trim().to_owned()
}

fn satisfaction(v: &Value) -> String {
    match v.as_str() {
        Some("satisfied") => "满意 satisfied".into(),
        Some("basically_satisfied") => "基本满意 basically satisfied".into(),
        Some("dissatisfied") => "不满意 dissatisfied".into(),
        _ => "—".into(),
    }
}

/// The page, from the extract's JSON; times in the property's zone `tz`.
pub(crate) fn render(x: &Value, id: &str, now: DateTime<Utc>, tz: Tz) -> String {
    let f = &x["household"];
    let unit = text(&f["unit"]);
    let area = f["area_centi_m2"]
        .as_i64()
        .map(show_fen)
        .unwrap_or_default();
    let file = [
        field("单元 Unit", &unit),
        field("楼栋 Building", &text(&f["building"])),
        field("面积 Floor area", &format!("{area} m²")),
        field("类型 Occupancy", &occupancy(&f["occupancy"])),
        field("入住 Moved in", &text(&f["move_in"])),
        field(
            "迁出 Moved out",
            &f["move_out"].as_str().map_or("—".into(), str::to_owned),
        ),
        field(
            "档案版本 Version",
            &format!(
                "{} · {} · {}",
                text(&f["version"]),
                text(&f["updated_by"]),
                when(&f["updated_at"], tz)
            ),
        ),
        field("备注 Notes", &text(&f["notes"])),
    ]
    .concat();
    let residents: Vec<Vec<String>> = list(&f["residents"])
        .iter()
        .map(|r| vec![text(&r["name"]), text(&r["relation"]), text(&r["phone"])])
        .collect();
    let vehicles = [
        field("车牌 Number plates", &join(&f["vehicles"])),
        field("车位 Parking spaces", &join(&f["parking"])),
    ]
    .concat();
    let history: Vec<Vec<String>> = list(&x["history"])
        .iter()
        .map(|h| {
            vec![
                text(&h["version"]),
                when(&h["at"], tz),
                text(&h["by"]),
                text(&h["what"]),
            ]
        })
        .collect();
    let tickets: Vec<Vec<String>> = list(&x["tickets"])
        .iter()
        .map(|t| {
            vec![
                text(&t["serial"]),
                kind(&t["kind"]),
                text(&t["status"]),
                text(&t["title"]),
                when(&t["received_at"], tz),
                satisfaction(&t["satisfaction"]),
            ]
        })
        .collect();
    let fees = fee_section(&x["ledger"], tz);
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{unit} · 一户一档 Household file extract</title>\
         <link rel=\"stylesheet\" href=\"/households/print.css\"></head>\
         <body><nav class=\"noprint\"><a href=\"/#/household/{id}\">← 返回住户档案 Back to the household</a> \
         <span>用浏览器打印（Ctrl+P），A4 · Print with your browser (Ctrl+P), A4</span></nav>\
         <main class=\"extract\"><h1>一户一档 <small>Household file extract</small> <span>{unit}</span></h1>\
         <p class=\"asof\">截至 As of {asof} ({zone})</p>\
         <section><h2>住户档案 <small>The file</small></h2><div class=\"fields\">{file}</div></section>\
         {residents}\
         <section><h2>车辆和车位 <small>Vehicles and parking</small></h2><div class=\"fields\">{vehicles}</div></section>\
         {history}{tickets}{fees}</main></body></html>",
        unit = esc(&unit),
        id = esc(id),
        asof = esc(&crate::settings::wall_time(now, tz)),
        zone = esc(tz.name()),
        residents = table(
            ("住户成员", "Residents"),
            &[("姓名", "Name"), ("关系", "Relation"), ("电话", "Phone")],
            &residents,
            "无 None",
        ),
        history = table(
            ("修改记录", "History of edits"),
            &[
                ("版本", "Version"),
                ("时间", "At"),
                ("修改人", "By"),
                ("内容", "What")
            ],
            &history,
            "无 None",
        ),
        tickets = table(
            ("工单和事项", "Tickets"),
            &[
                ("单号", "Serial"),
                ("类型", "Kind"),
                ("状态", "Status"),
                ("摘要", "Title"),
                ("受理", "Received"),
                ("回访满意度", "Satisfaction"),
            ],
            &tickets,
            "无 None",
        ),
    )
}

fn join(v: &Value) -> String {
    let items: Vec<String> = list(v).iter().map(text).collect();
    if items.is_empty() {
        "—".into()
    } else {
        items.join("、")
    }
}

/// The fee part: the whole statement, or (front desk) only whether the
/// household is in arrears.
fn fee_section(l: &Value, tz: Tz) -> String {
    let arrears = if l["in_arrears"].as_bool() == Some(true) {
        "欠费 in arrears"
    } else {
        "无欠费 not in arrears"
    };
    if l.get("bills").is_none() {
        return format!(
            "<section><h2>物业费 <small>Fees</small></h2><div class=\"fields\">{}</div></section>",
            field("缴费状态 Status", arrears)
        );
    }
    let summary = [
        field("缴费状态 Status", arrears),
        field("欠费（元）Arrears (yuan)", &fen(&l["arrears_fen"])),
        field("预存（元）Credit (yuan)", &fen(&l["credit_fen"])),
    ]
    .concat();
    let bills: Vec<Vec<String>> = list(&l["bills"])
        .iter()
        .map(|b| {
            vec![
                text(&b["number"]),
                text(&b["item"]),
                text(&b["period"]),
                fen(&b["amount_fen"]),
                fen(&b["outstanding_fen"]),
                text(&b["note"]),
            ]
        })
        .collect();
    let payments: Vec<Vec<String>> = list(&l["payments"])
        .iter()
        .map(|p| {
            vec![
                text(&p["receipt"]),
                fen(&p["amount_fen"]),
                text(&p["method"]),
                text(&p["cashier"]),
                when(&p["at"], tz),
            ]
        })
        .collect();
    let adjustments: Vec<Vec<String>> = list(&l["adjustments"])
        .iter()
        .map(|a| {
            vec![
                text(&a["number"]),
                text(&a["kind"]),
                text(&a["bill"]),
                fen(&a["amount_fen"]),
                text(&a["reason"]),
                text(&a["approved_by"]),
                when(&a["at"], tz),
            ]
        })
        .collect();
    let reminders: Vec<Vec<String>> = list(&l["reminders"])
        .iter()
        .map(|r| {
            vec![
                when(&r["at"], tz),
                text(&r["channel"]),
                text(&r["result"]),
                text(&r["by"]),
            ]
        })
        .collect();
    [
        format!(
            "<section><h2>物业费 <small>Fee statement</small></h2><div class=\"fields\">{summary}</div></section>"
        ),
        table(
            ("账单", "Bills"),
            &[
                ("账单号", "Bill"),
                ("收费项目", "Item"),
                ("期间", "Period"),
                ("金额（元）", "Amount"),
                ("未缴（元）", "Outstanding"),
                ("备注", "Note"),
            ],
            &bills,
            "无 None",
        ),
        table(
            ("收款", "Payments"),
            &[
                ("收据号", "Receipt"),
                ("金额（元）", "Amount"),
                ("方式", "Method"),
                ("收银员", "Cashier"),
                ("时间", "At"),
            ],
            &payments,
            "无 None",
        ),
        table(
            ("退款和调整", "Refunds and adjustments"),
            &[
                ("编号", "Number"),
                ("类型", "Kind"),
                ("账单", "Bill"),
                ("金额（元）", "Amount"),
                ("原因", "Reason"),
                ("批准人", "Approver"),
                ("时间", "At"),
            ],
            &adjustments,
            "无 None",
        ),
        table(
            ("催缴记录", "Arrears reminders"),
            &[
                ("时间", "At"),
                ("方式", "Channel"),
                ("结果", "Result"),
                ("经办人", "By"),
            ],
            &reminders,
            "无 None",
        ),
    ]
    .concat()
}
