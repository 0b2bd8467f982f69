//! The web dashboard (DESIGN.md §8): the pages, the live feed, the printable
//! repair order and the OpenAPI document.
//!
//! The pages are plain HTML, JavaScript modules and CSS from `server/assets/`,
//! compiled into the binary (no build step, no runtime paths); the page
//! script talks to the JSON API with the HttpOnly session cookie `POST
//! /api/v1/login` sets (and the session's CSRF token on state-changing
//! requests, [`crate::session`]): no token is ever in the page's script or
//! in a URL. What the JSON API lacked for the pages lives here:
//!
//! - `GET /api/v1/live`: server-sent events, one per ticket change, from the
//!   hub's live broadcast (the cookie authenticates it; the session is
//!   checked again every [`RECHECK`], so a logout, a revoked device or a
//!   disabled user ends the stream);
//! - `GET /api/v1/lifecycle`: the transition table and the value lists, so the
//!   pages offer only the actions the signed-in role may take;
//! - `GET /api/v1/households/{id}`: a household file, its private part for the
//!   roles that may see it, and its tickets;
//! - `GET /orders/{id}/print`: the repair order's three copies on one A4 page;
//! - `GET /api/v1/openapi.json`: the document describing every `/api/v1` route
//!   ([`openapi`](mod@openapi)).

mod openapi;
pub(crate) mod print;

pub(crate) use print::qr_svg;

use std::convert::Infallible;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::Stream;
use schema::lifecycle::{TABLE, To};
use schema::ticket::{Channel, ContactResult, Satisfaction, Urgency};
use schema::{Department, DocId, Flag, Kind, Role, Status};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::error::{AppError, AppResult};
use crate::extract::Authed;
use crate::session::SessionAuthn;
use crate::state::Relay;
use crate::store::records;

/// The files of the pages: name, MIME type, bytes.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "util.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/util.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/pages.js"),
    ),
    (
        "reports.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/reports.js"),
    ),
    (
        "property.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/property.js"),
    ),
    (
        "fees.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/fees.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
    (
        "print.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/print.css"),
    ),
];

const INDEX: &str = include_str!("../assets/index.html");

/// The page script may load only from this relay.
const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'";

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/live", get(live))
        .route("/api/v1/lifecycle", get(lifecycle))
        .route("/api/v1/households/{id}", get(household))
        .route("/orders/{id}/print", get(print::order))
        .merge(crate::reports::router())
}

fn with_csp(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    r.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn index() -> Response {
    with_csp(
        (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            INDEX,
        )
            .into_response(),
    )
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, mime, bytes)) => with_csp(
            (
                [
                    (header::CONTENT_TYPE, *mime),
                    (header::CACHE_CONTROL, "no-cache"),
                ],
                *bytes,
            )
                .into_response(),
        ),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

async fn openapi_json() -> Json<Value> {
    Json(openapi::document())
}

pub(crate) fn parse_id(s: &str) -> AppResult<DocId> {
    s.strip_prefix("automerge:")
        .unwrap_or(s)
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{s:?} is not a document id")))
}

/// How often a live stream checks its session again.
pub(crate) const RECHECK: std::time::Duration = std::time::Duration::from_millis(500);

/// One event per ticket change the caller may see: `event: ticket`, data
/// `{doc_id, status, serial}`. A reader that falls behind gets `event:
/// resync` and reloads what it shows. The stream ends when the session does.
async fn live(
    State(relay): State<Relay>,
    SessionAuthn(a): SessionAuthn,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let rx = relay.hub.live.subscribe();
    let stop = relay.hub.stopping.subscribe();
    let (p, token) = (a.principal, a.token);
    let mut recheck = tokio::time::interval(RECHECK);
    recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stream = futures_util::stream::unfold(
        (rx, stop, relay, p, token, recheck),
        |(mut rx, mut stop, relay, p, token, mut recheck)| async move {
            loop {
                if *stop.borrow() {
                    return None;
                }
                let next = tokio::select! {
                    r = rx.recv() => r,
                    _ = stop.changed() => return None,
                    _ = recheck.tick() => {
                        // Logged out, device revoked, user disabled, token expired.
                        if relay.authenticate(&token).await.is_err() {
                            return None;
                        }
                        continue;
                    }
                };
                let item = match next {
                    Ok(change) => {
                        let visible = match change.doc_id.parse::<DocId>() {
                            Ok(id) => relay.hub.may_sync(&p, id).await.unwrap_or(false),
                            Err(_) => false,
                        };
                        if !visible {
                            continue;
                        }
                        SseEvent::default()
                            .event("ticket")
                            .json_data(&change)
                            .unwrap_or_else(|_| SseEvent::default().event("resync").data("encode"))
                    }
                    Err(RecvError::Lagged(_)) => SseEvent::default().event("resync").data("lagged"),
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(item), (rx, stop, relay, p, token, recheck)));
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::default())
}

fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Value {
    json!(all.iter().map(|x| f(*x)).collect::<Vec<_>>())
}

/// The transition table (without the automatic SYS rows) and value lists.
async fn lifecycle(Authed(p): Authed) -> Json<Value> {
    let rows: Vec<Value> = TABLE
        .iter()
        .filter(|t| !t.automatic)
        .map(|t| {
            json!({
                "action": t.action.as_str(),
                "kinds": names(t.kinds, Kind::as_str),
                "from": names(t.from, Status::as_str),
                "to": match t.to {
                    To::State(s) | To::AfterVisit(s) => Some(s.as_str()),
                    To::Stay => None,
                },
                "roles": names(t.roles, Role::as_str),
                "requires": t.requires.iter().map(|f| f.key()).collect::<Vec<_>>(),
                "guards": t.guards.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>(),
                "authority": t.authority,
            })
        })
        .collect();
    Json(json!({
        "role": p.role,
        "rows": rows,
        "kinds": names(Kind::ALL, Kind::as_str),
        "statuses": names(Status::ALL, Status::as_str),
        "channels": names(Channel::ALL, Channel::as_str),
        "urgencies": names(Urgency::ALL, Urgency::as_str),
        "satisfactions": names(Satisfaction::ALL, Satisfaction::as_str),
        "contact_results": names(ContactResult::ALL, ContactResult::as_str),
        "payment_methods": schema::ticket::PAYMENT_METHODS,
        "departments": names(&Department::ALL, Department::as_str),
        "roles": names(&Role::ALL, Role::as_str),
        "flags": names(&Flag::ALL, Flag::as_str),
    }))
}

async fn household(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let id = parse_id(&id)?;
    let index = relay.db.read(move |c| records::household(c, id)).await?;
    let public = if relay.hub.may_sync(&p, id).await? {
        let stored = relay
            .db
            .read(move |c| records::load_document(c, id))
            .await?
            .ok_or_else(|| AppError::NotFound(format!("no household {id}")))?;
        let public = tokio::task::spawn_blocking(move || {
            load(&stored).and_then(|d| schema::doc::read_household(&d).map_err(|e| e.to_string()))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?
        .map_err(|_| AppError::NotFound(format!("{id} is not a household file")))?;
        Some(public)
    } else {
        None
    };
    // Without the public file (a cashier), the household index names the unit.
    let private_id = match (&public, &index) {
        (Some(h), _) => h.private.map(|u| u.id()),
        (None, Some(row)) => row.private_doc,
        (None, None) => None,
    };
    let may_private = match private_id {
        Some(pid) => relay.hub.may_sync(&p, pid).await?,
        None => false,
    };
    if public.is_none() && !may_private {
        return Err(AppError::NotFound(format!("no household {id}")));
    }
    let mut private = Value::Null;
    if let Some(pid) = private_id.filter(|_| may_private)
        && let Some(stored) = relay
            .db
            .read(move |c| records::load_document(c, pid))
            .await?
    {
        let read = tokio::task::spawn_blocking(move || {
            load(&stored)
                .and_then(|d| schema::doc::read_household_private(&d).map_err(|e| e.to_string()))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))?;
        if let Ok(h) = read {
            private = serde_json::to_value(h).unwrap_or(Value::Null);
        }
    }
    let url = id.url().to_string();
    let filter = records::TicketFilter {
        limit: 1_000_000,
        ..records::TicketFilter::default()
    };
    let rows = relay
        .db
        .read(move |c| {
            Ok(records::tickets(c, &filter)?
                .into_iter()
                .filter(|r| r.household.as_deref() == Some(url.as_str()))
                .collect::<Vec<_>>())
        })
        .await?;
    let mut tickets = Vec::new();
    for r in rows {
        if relay.hub.may_sync(&p, r.doc_id).await? {
            tickets.push(json!({
                "id": r.doc_id.to_string(), "kind": r.kind, "status": r.status, "serial": r.serial,
                "title": r.title, "assignee": r.assignee, "received_at": schema::doc::rfc3339(r.received_at),
            }));
        }
    }
    Ok(Json(json!({
        "id": id.to_string(),
        "url": id.url().to_string(),
        "public": match (&public, &index) {
            (Some(h), _) => serde_json::to_value(h).unwrap_or(Value::Null),
            (None, Some(row)) => json!({"building": row.building, "unit": row.unit}),
            (None, None) => Value::Null,
        },
        "public_visible": public.is_some(),
        "private": private,
        "private_visible": !private.is_null(),
        "tickets": tickets,
    })))
}

/// Loads a stored document.
pub(crate) fn load(stored: &records::StoredDoc) -> Result<automerge::Automerge, String> {
    stored.assemble().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests;
