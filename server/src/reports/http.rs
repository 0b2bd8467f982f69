//! `/api/v1/reports` and `/api/v1/reports/{name}`: who may read which report,
//! the default period (the cut-off's local day or week in the property's
//! time zone), and the inputs the pure report functions need, read from
//! storage: every ticket, and the devices as they were at the cut-off.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use schema::Ticket;
use schema::doc::rfc3339;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{DeviceInfo, REPORTS, Span, View, compute};
use crate::error::{AppError, AppResult};
use crate::extract::Authed;
use crate::settings;
use crate::state::Relay;
use crate::store::{ReportStore, StoreResult, records};

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/reports", get(list))
        .route("/api/v1/reports/{name}", get(report))
}

async fn list(State(relay): State<Relay>, Authed(p): Authed) -> AppResult<Json<Value>> {
    let tz = settings::time_zone(&relay).await?;
    Ok(Json(json!({
        "time_zone": tz.name(),
        "reports": REPORTS.iter().map(|d| json!({
            "name": d.name, "title": d.title, "title_zh": d.title_zh,
            "period": d.period, "allowed": d.roles.contains(&p.role),
        })).collect::<Vec<_>>()
    })))
}

#[derive(Deserialize, Default)]
struct ReportQuery {
    as_of: Option<String>,
    from: Option<String>,
    format: Option<String>,
}

/// Every device that existed at the cut-off, with its last sync session
/// started at or before it (times are fixed-width RFC 3339 text, so they
/// compare as strings).
fn devices_at(c: &Connection, as_of: DateTime<Utc>) -> StoreResult<Vec<DeviceInfo>> {
    let cutoff = rfc3339(as_of);
    let mut last = c.prepare(
        "SELECT MAX(started_at) FROM sync_sessions WHERE device_id = ?1 AND started_at <= ?2",
    )?;
    let mut out = Vec::new();
    for d in records::devices(c)?
        .into_iter()
        .filter(|d| d.created_at <= as_of)
    {
        let seen: Option<String> =
            last.query_row([d.device_id.as_str(), cutoff.as_str()], |r| r.get(0))?;
        out.push(DeviceInfo {
            device: d.device_id.to_string(),
            user: d.username.to_string(),
            last_seen: seen
                .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
                .map(|t| t.to_utc()),
            revoked: d.revoked_at.is_some_and(|r| r <= as_of),
        });
    }
    Ok(out)
}

async fn report(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(name): Path<String>,
    crate::extract::Params(q): crate::extract::Params<ReportQuery>,
) -> AppResult<Response> {
    let Some(def) = REPORTS.iter().find(|d| d.name == name) else {
        return Err(AppError::NotFound(format!("no report {name:?}")));
    };
    if !def.roles.contains(&p.role) {
        return Err(AppError::Forbidden(format!(
            "a {} may not read the {name} report",
            p.role
        )));
    }
    let tz = settings::time_zone(&relay).await?;
    let now = relay.hub.now();
    let as_of = settings::parse_time(q.as_of.as_deref(), "as_of", tz)?.unwrap_or(now);
    let default_from = match def.period.span {
        Span::Day => settings::day_start(as_of, tz),
        Span::Week => settings::week_start(as_of, tz),
        Span::Month => {
            let first = crate::fees::Period::of(settings::local_date(as_of, tz)).first_day();
            settings::local_to_utc(first.and_time(chrono::NaiveTime::MIN), tz)
        }
    };
    let from = settings::parse_time(q.from.as_deref(), "from", tz)?.unwrap_or(default_from);
    if from > as_of {
        return Err(AppError::BadRequest("from must not be after as_of".into()));
    }
    if def.name == "fee-collection" {
        let report = relay
            .db
            .read(move |c| super::fee_collection::compute(c, as_of, from, tz))
            .await?;
        return Ok(respond(&report, as_of, q.format.as_deref()));
    }
    let tickets = relay.db.tickets_for_period(from).await?;
    let numbered = if def.name == "serial-register" {
        Some(relay.db.numbered(as_of).await?)
    } else {
        None
    };
    let devices = relay.db.read(move |c| devices_at(c, as_of)).await?;
    let policy = relay.hub.policy.clone();
    let name = def.name;
    let report = tokio::task::spawn_blocking(move || {
        let mut view = View::new(&tickets, as_of, from, tz, &policy);
        if let Some(numbered) = numbered {
            view.numbered = numbered;
        }
        compute(name, &view, &devices)
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .ok_or_else(|| AppError::Internal("report vanished".into()))?;
    let report = if name == "cashier-close" {
        relay
            .db
            .read(move |c| {
                let mut report = report;
                super::fee_collection::add_fee_receipts(c, &mut report, from, as_of)?;
                Ok(report)
            })
            .await?
    } else {
        report
    };
    Ok(respond(&report, as_of, q.format.as_deref()))
}

/// The report as JSON, or as a CSV or XLSX download.
pub(crate) fn respond(
    report: &super::Report,
    as_of: DateTime<Utc>,
    format: Option<&str>,
) -> Response {
    if format == Some("xlsx") {
        let file = format!("{}-{}.xlsx", report.name, as_of.format("%Y%m%dT%H%M%SZ"));
        return match super::xlsx::to_xlsx(report) {
            Ok(bytes) => (
                [
                    (
                        header::CONTENT_TYPE,
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
                            .to_owned(),
                    ),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{file}\""),
                    ),
                ],
                bytes,
            )
                .into_response(),
            Err(e) => AppError::Internal(format!("xlsx: {e}")).into_response(),
        };
    }
    if format == Some("csv") {
        let file = format!("{}-{}.csv", report.name, as_of.format("%Y%m%dT%H%M%SZ"));
        return (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{file}\""),
                ),
            ],
            format!("\u{feff}{}", report.to_csv()),
        )
            .into_response();
    }
    Json(report).into_response()
}

/// Reads a stored document (snapshot plus chunks) as a ticket.
pub(crate) fn read_stored(stored: &records::StoredDoc) -> Result<Ticket, String> {
    let doc = crate::dashboard::load(stored)?;
    schema::doc::read_ticket(&doc, None).map_err(|e| e.to_string())
}
