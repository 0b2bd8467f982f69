//! The printable repair order: one A4 page with its three labelled copies
//! (住户联 resident, 工程联 engineering, 客服联 customer service), each with
//! the serial and a QR code of the ticket's dashboard address. A voided order
//! prints VOID and its reason on every copy.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use schema::{Projection, Status, Ticket};

use crate::error::{AppError, AppResult};
use crate::extract::Authed;
use crate::state::Relay;
use crate::store::records;

/// The three copies: Chinese label, English label, what the copy is for.
const COPIES: [(&str, &str, &str); 3] = [
    ("住户联", "Resident copy", "Kept by the resident."),
    (
        "工程联",
        "Engineering copy",
        "Goes with the engineer; returned to the front desk when the work is done (回单).",
    ),
    ("客服联", "Customer service copy", "Kept at the front desk."),
];

/// Escapes text for HTML.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An SVG QR code of `text`.
///
/// # Errors
/// When `text` is too long for a QR code.
pub(crate) fn qr_svg(text: &str) -> Result<String, String> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(112, 112)
        .quiet_zone(true)
        .build();
    // Inline in HTML: without the XML declaration.
    Ok(match svg.find("<svg") {
        Some(i) => svg[i..].to_owned(),
        None => svg,
    })
}

fn origin(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | ':' | '-' | '[' | ']'))
        })
        .unwrap_or("localhost");
    let scheme = headers
        .get("x-forwarded-proto")
        .and_then(|h| h.to_str().ok())
        .filter(|s| *s == "https")
        .unwrap_or("http");
    format!("{scheme}://{host}")
}

pub(super) async fn order(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let id = super::parse_id(&id)?;
    if !relay.hub.may_sync(&p, id).await? {
        return Err(AppError::NotFound(format!("no ticket {id}")));
    }
    let stored = relay
        .db
        .read(move |c| records::load_document(c, id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
    let ticket = tokio::task::spawn_blocking(move || crate::reports::read_stored(&stored))
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(AppError::Internal)?;
    if !ticket.header.kind.is_order() {
        return Err(AppError::BadRequest(
            "only repair and paid-service orders have a printed form".into(),
        ));
    }
    let household = match ticket.header.household.map(|u| u.id()) {
        Some(h) => relay
            .db
            .read(move |c| records::load_document(c, h))
            .await?
            .and_then(|s| super::load(&s).ok())
            .and_then(|d| schema::doc::read_household(&d).ok())
            .map(|h| h.unit),
        None => None,
    };
    let url = format!("{}/#/ticket/{id}", origin(&headers));
    let qr = qr_svg(&url).map_err(AppError::Internal)?;
    let projection = Projection::official(&ticket, &relay.hub.policy);
    let tz = crate::settings::time_zone(&relay).await?;
    let html = render(&ticket, &projection, household.as_deref(), &url, &qr, tz);
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    Ok(r)
}

fn field(label: &str, value: &str) -> String {
    format!(
        "<div class=\"f\"><span class=\"k\">{}</span><span class=\"v\">{}</span></div>",
        esc(label),
        esc(value)
    )
}

/// The page; times are the property's wall time in `tz`.
pub(crate) fn render(
    t: &Ticket,
    p: &Projection,
    unit: Option<&str>,
    url: &str,
    qr: &str,
    tz: chrono_tz::Tz,
) -> String {
    let serial = t
        .server
        .serial
        .map_or_else(|| "(not yet numbered)".to_owned(), |s| s.to_string());
    let time = |d: Option<chrono::DateTime<chrono::Utc>>| {
        d.map(|d| crate::settings::wall_time(d, tz))
            .unwrap_or_default()
    };
    let voided = p.status == Status::Voided;
    let materials: Vec<String> = p
        .materials
        .iter()
        .map(|m| format!("{} × {} @ {}", m.name, m.qty, m.unit_fen))
        .collect();
    let appointment = t
        .events
        .iter()
        .rev()
        .find_map(|e| e.data.appointment.clone())
        .unwrap_or_default();
    let mut fields = vec![
        field(
            "Kind 类型",
            if t.header.kind == schema::Kind::PaidService {
                "Paid service 有偿服务"
            } else {
                "Repair 维修"
            },
        ),
        field(
            "Received 受理",
            &time(p.received_at.or(Some(t.header.reported.at))),
        ),
        field(
            "Household / location 住户/位置",
            &[unit.unwrap_or_default(), t.header.location.as_str()]
                .iter()
                .filter(|s| !s.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join(" · "),
        ),
        field("Fault 故障", &t.header.title),
        field("Category 类别", p.category.as_deref().unwrap_or_default()),
        field(
            "Urgency 紧急程度",
            p.urgency.map(|u| u.as_str()).unwrap_or_default(),
        ),
        field(
            "Free / paid 收费",
            if p.paid { "paid 有偿" } else { "free 无偿" },
        ),
        field("Clerk 受理人", t.header.reported.by.as_str()),
        field(
            "Engineer 维修人员",
            &p.assignee
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
        ),
        field("Appointment 预约", &appointment),
        field("Status 状态", p.status.as_str()),
    ];
    if !t.header.description.is_empty() {
        fields.push(field("Description 描述", &t.header.description));
    }
    if let Some(r) = &p.result {
        fields.push(field("Result 结果", r));
    }
    if p.labour_min > 0 {
        fields.push(field("Labour 工时", &format!("{} min", p.labour_min)));
    }
    if !materials.is_empty() {
        fields.push(field("Materials 材料", &materials.join("; ")));
    }
    if let Some(q) = p.quote {
        fields.push(field("Charge 收费金额", &q.to_string()));
    }
    let void = if voided {
        format!(
            "<div class=\"void\" role=\"status\"><strong>VOID 作废</strong><span>{}</span></div>",
            esc(p.end_reason.as_deref().unwrap_or("no reason recorded"))
        )
    } else {
        String::new()
    };
    let copies: String = COPIES
        .iter()
        .enumerate()
        .map(|(i, (zh, en, note))| {
            format!(
                "<section class=\"copy{void_class}\" aria-label=\"{en}\">\
                 <header><div><h2>{zh} <small>{en}</small></h2><p class=\"serial\">{serial}</p>\
                 <p class=\"note\">Copy {n} of 3 · {note}</p></div><div class=\"qr\">{qr}</div></header>\
                 {void}<div class=\"fields\">{fields}</div>\
                 <footer><span>Resident signature 住户签字 ____________</span>\
                 <span>Engineer 维修人员 ____________</span><span>Date 日期 ________</span></footer>\
                 </section>",
                void_class = if voided { " voided" } else { "" },
                zh = esc(zh),
                en = esc(en),
                serial = esc(&serial),
                n = i + 1,
                note = esc(note),
                qr = qr,
                void = void,
                fields = fields.concat(),
            )
        })
        .collect();
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{serial} · repair order 维修单</title><link rel=\"stylesheet\" href=\"/assets/print.css\"></head>\
         <body><nav class=\"noprint\"><a href=\"{url}\">← Back to the ticket</a> \
         <span>Print with your browser (Ctrl+P): one A4 page, three copies.</span></nav>\
         <main class=\"order\"><h1>维修单 Repair order <span>{serial}</span></h1>{copies}</main></body></html>",
        serial = esc(&serial),
        url = esc(url),
        copies = copies,
    )
}
