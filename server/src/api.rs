// Long file: every JSON handler of the ticket API with its request checks.
//! The JSON API under `/api/v1` (DESIGN.md §8). Every handler returns
//! [`AppResult`]; errors are `{"error": {"code", "message"}}`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use schema::doc::{self, read_ticket};
use schema::ticket::{Caller, Channel, Reported, TicketHeader, Urgency, mask_phone};
use schema::{
    Action, DocId, DocUrl, Event, EventData, EventId, Flag, Kind, Principal, Projection, Role,
    Rule, Series,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{AppError, AppResult};
use crate::extract::{Authed, Body, Params};
use crate::settings::parse_time;
use crate::state::Relay;
use crate::store::records::{self, ReviewFilter, TicketFilter};
use schema::access::{self, DocClass};

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/me", get(me))
        .route("/api/v1/tickets", get(list_tickets).post(create_ticket))
        .route("/api/v1/tickets/{id}", get(get_ticket))
        .route("/api/v1/tickets/{id}/events", post(post_event))
        .route("/api/v1/review-queue", get(review_queue))
        .route("/api/v1/sync-log", get(sync_log))
        .route("/api/v1/security-log", get(security_log))
        .route("/api/v1/reports/serial-continuity", get(serial_continuity))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/devices/{id}/revoke", post(revoke_device))
        .route("/api/v1/households", get(households))
        .fallback(not_found)
}

async fn not_found() -> AppError {
    AppError::NotFound("no such route".into())
}

fn require(p: &Principal, roles: &[Role], what: &str) -> AppResult<()> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("a {} may not {what}", p.role)))
    }
}

const SUPERVISORS: &[Role] = &[Role::Supervisor, Role::Manager];
const REVIEWERS: &[Role] = &[Role::Supervisor, Role::EngineeringSupervisor, Role::Manager];

fn parse_id(s: &str) -> AppResult<DocId> {
    s.strip_prefix("automerge:")
        .unwrap_or(s)
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{s:?} is not a document id")))
}

fn parse_opt<T: std::str::FromStr>(v: Option<&str>, what: &str) -> AppResult<Option<T>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<T>()
                .map_err(|_| AppError::BadRequest(format!("unknown {what} {s:?}")))
        })
        .transpose()
}

async fn health(State(relay): State<Relay>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "peer_id": relay.peer_id(),
        "connections": relay.hub.connection_count(),
        "documents_loaded": relay.hub.loaded_count(),
    }))
}

async fn me(
    State(relay): State<Relay>,
    crate::session::Caller(p): crate::session::Caller,
) -> AppResult<Json<Value>> {
    let name = p.user.to_string();
    let (user, _) = relay
        .db
        .read(move |c| records::user(c, &name))
        .await?
        .ok_or_else(|| AppError::NotFound("no such user".into()))?;
    let tz = crate::settings::time_zone(&relay).await?;
    Ok(Json(json!({
        "user": p.user,
        "time_zone": tz.name(),
        "display_name": user.display_name,
        "role": p.role,
        "department": p.department,
        "device": p.device,
        "inbox": user.inbox_doc.url().to_string(),
        "relay_peer_id": relay.peer_id(),
    })))
}

#[derive(Deserialize)]
struct NewTicket {
    kind: String,
    title: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    description: String,
    household: Option<String>,
    channel: Option<String>,
    urgency: Option<String>,
    category: Option<String>,
    paid: Option<bool>,
    caller: Option<NewCaller>,
}

/// The caller as the clerk recorded them on the contact form.
#[derive(Deserialize)]
struct NewCaller {
    #[serde(default)]
    name: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    read_back: bool,
}

/// Checks a caller's name and number: at most 50 characters of name; a
/// number of 3 to 20 digits with `+`, `-`, spaces and parentheses, or
/// none; a name or a number given. (The OpenAPI `Caller` says the same.)
fn check_caller(c: NewCaller) -> AppResult<Caller> {
    if c.name.chars().count() > 50 {
        return Err(AppError::BadRequest(
            "the caller's name must be at most 50 characters".into(),
        ));
    }
    let digits = c.phone.chars().filter(char::is_ascii_digit).count();
    if !c.phone.is_empty()
        && (!(3..=20).contains(&digits)
            || !c
                .phone
                .chars()
                .all(|ch| ch.is_ascii_digit() || "+-() ".contains(ch)))
    {
        return Err(AppError::BadRequest(
            "the caller's number must be 3 to 20 digits (with + - ( ) and spaces)".into(),
        ));
    }
    let (name, phone) = (c.name.trim().to_owned(), c.phone.trim().to_owned());
    if name.is_empty() && phone.is_empty() {
        return Err(AppError::BadRequest(
            "a caller needs a name or a number".into(),
        ));
    }
    Ok(Caller {
        name,
        phone,
        read_back: c.read_back,
    })
}

async fn create_ticket(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(body): Body<NewTicket>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let kind: Kind = body
        .kind
        .parse()
        .map_err(|_| AppError::BadRequest(format!("unknown kind {:?}", body.kind)))?;
    let urgency: Urgency =
        parse_opt(body.urgency.as_deref(), "urgency")?.unwrap_or(Urgency::Normal);
    let now = relay.hub.now();
    let event = Event {
        id: EventId::random(),
        action: schema::lifecycle::creation_action(kind).as_str().into(),
        by: p.user.clone(),
        device: p.device.clone(),
        at: now,
        data: EventData {
            category: body.category.clone(),
            urgency: Some(urgency),
            paid: body.paid,
            ..EventData::default()
        },
    };
    // The creation event is judged by the same rules as on the relay and the
    // phones, before anything is written: a role the lifecycle does not let
    // issue or record this kind gets a 403 naming the rule, not a stored
    // ticket stuck in NEW with a rejected verdict.
    let judged = relay
        .hub
        .policy
        .check(&p, &Projection::new(kind), &event)
        .map(|_| ())
        .map_err(|f| (f.rule, format!("{}: {}", f.rule.name(), f.reason)));
    if let Err((Rule::RoleNotAllowed, why)) = &judged {
        return Err(AppError::Forbidden(why.clone()));
    }
    // Characters, not bytes: a Chinese title of 200 characters is 600 bytes.
    let chars = |s: &str| s.chars().count();
    if body.title.trim().is_empty() || chars(&body.title) > 200 {
        return Err(AppError::BadRequest(
            "title must be 1 to 200 characters".into(),
        ));
    }
    if chars(&body.description) > 10_000 || chars(&body.location) > 200 {
        return Err(AppError::BadRequest(
            "description or location is too long".into(),
        ));
    }
    let household: Option<DocUrl> = match body.household.as_deref().filter(|h| !h.is_empty()) {
        Some(h) => Some(parse_id(h)?.url()),
        None => None,
    };
    if household.is_none() && body.location.trim().is_empty() {
        return Err(AppError::BadRequest(
            "a ticket needs a household or a location".into(),
        ));
    }
    let channel: Channel = parse_opt(body.channel.as_deref(), "channel")?.unwrap_or(Channel::Phone);
    if kind.is_order() && body.category.as_deref().is_none_or(|c| c.trim().is_empty()) {
        return Err(AppError::BadRequest(
            "repair and paid-service orders need a category".into(),
        ));
    }
    let caller = body.caller.map(check_caller).transpose()?;
    // Any other rule (data out of range) refuses it here, still unwritten.
    judged.map_err(|(_, why)| AppError::Refused(why))?;
    let header = TicketHeader {
        kind,
        household,
        location: body.location,
        title: body.title,
        description: body.description,
        reported: Reported {
            by: p.user.clone(),
            channel,
            at: now,
        },
        // The document gets the number masked; the full one is kept apart.
        caller: caller.as_ref().map(|c| Caller {
            phone: mask_phone(&c.phone),
            ..c.clone()
        }),
    };
    let id = DocId::random();
    let ev = event.clone();
    let rejection = relay
        .hub
        .author(&p, id, true, None, move |t| {
            doc::create_ticket(t, &header)?;
            doc::append_event(t, &ev)
        })
        .await?;
    if let Some(r) = rejection {
        return Err(AppError::Refused(format!(
            "{}: {}",
            r.rule.name(),
            r.reason
        )));
    }
    if let Some(c) = caller {
        relay.db.put_caller(id, c, p.user.clone(), now).await?;
    }
    let detail = ticket_detail(&relay, &p, id).await?;
    Ok((StatusCode::CREATED, Json(detail)))
}

#[derive(Deserialize, Default)]
struct TicketQuery {
    kind: Option<String>,
    status: Option<String>,
    assignee: Option<String>,
    department: Option<String>,
    flag: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<u32>,
}

fn row_json(row: &records::TicketRow, now: DateTime<Utc>) -> Value {
    let flags: Vec<&str> = serde_json::from_value::<Projection>(row.projection.clone())
        .map(|p| p.flags(now).into_iter().map(Flag::as_str).collect())
        .unwrap_or_default();
    json!({
        "id": row.doc_id.to_string(),
        "url": row.doc_id.url().to_string(),
        "kind": row.kind,
        "status": row.status,
        "serial": row.serial,
        "title": row.title,
        "location": row.location,
        "household": row.household,
        "assignee": row.assignee,
        "department": row.department,
        "created_by": row.created_by,
        "channel": row.channel,
        "reported_at": doc::rfc3339(row.reported_at),
        "received_at": doc::rfc3339(row.received_at),
        "updated_at": doc::rfc3339(row.updated_at),
        "paid": row.paid,
        "flags": flags,
    })
}

async fn list_tickets(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<TicketQuery>,
) -> AppResult<Json<Value>> {
    let flag: Option<Flag> = match q.flag.as_deref().filter(|f| !f.is_empty()) {
        Some(f) => Some(
            Flag::ALL
                .into_iter()
                .find(|x| x.as_str().eq_ignore_ascii_case(f))
                .ok_or_else(|| AppError::BadRequest(format!("unknown flag {f:?}")))?,
        ),
        None => None,
    };
    let kind: Option<Kind> = parse_opt(q.kind.as_deref(), "kind")?;
    let status: Option<schema::Status> = parse_opt(q.status.as_deref(), "status")?;
    let department: Option<schema::Department> = parse_opt(q.department.as_deref(), "department")?;
    let tz = crate::settings::time_zone(&relay).await?;
    let filter = TicketFilter {
        kind: kind.map(|k| k.as_str().to_owned()),
        status: status.map(|s| s.as_str().to_owned()),
        assignee: q.assignee.filter(|a| !a.is_empty()),
        department: department.map(|d| d.as_str().to_owned()),
        from: parse_time(q.from.as_deref(), "from", tz)?,
        to: parse_time(q.to.as_deref(), "to", tz)?,
        limit: q.limit.unwrap_or(1000).min(5000),
    };
    let rows = relay.db.read(move |c| records::tickets(c, &filter)).await?;
    let now = relay.hub.now();
    let tickets: Vec<Value> = rows
        .iter()
        .filter(|r| access::may_sync(&p, &DocClass::Ticket(r.meta()), false))
        .map(|r| row_json(r, now))
        .filter(|v| {
            flag.is_none_or(|f| {
                v["flags"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == f.as_str()))
            })
        })
        .collect();
    Ok(Json(
        json!({ "tickets": tickets, "as_of": doc::rfc3339(now) }),
    ))
}

/// Whether `p` reads a ticket's caller with the full number: the roles
/// entitled to private household files (DESIGN.md §3), and the assignee,
/// who may need to call; everyone else reads it masked.
fn sees_caller_phone(p: &Principal, assignee: Option<&schema::UserId>) -> bool {
    matches!(
        p.role,
        Role::FrontDesk | Role::Supervisor | Role::Manager | Role::Cashier
    ) || assignee == Some(&p.user)
}

async fn ticket_detail(relay: &Relay, p: &Principal, id: DocId) -> AppResult<Value> {
    let row = relay
        .db
        .read(move |c| records::ticket(c, id))
        .await?
        .ok_or_else(|| AppError::NotFound(format!("no ticket {id}")))?;
    let bytes = relay
        .db
        .read(move |c| records::load_document(c, id))
        .await?;
    let Some(stored) = bytes else {
        return Err(AppError::NotFound(format!("no ticket {id}")));
    };
    let (ticket, heads) =
        tokio::task::spawn_blocking(move || -> Result<(schema::Ticket, Vec<String>), AppError> {
            let doc = stored.assemble()?;
            let heads = doc.get_heads().iter().map(ToString::to_string).collect();
            Ok((
                read_ticket(&doc, None).map_err(|e| AppError::Internal(e.to_string()))?,
                heads,
            ))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
    let now = relay.hub.now();
    let projection = Projection::official(&ticket, &relay.hub.policy);
    let events: Vec<Value> = ticket
        .events
        .iter()
        .map(|e| {
            let v = ticket.server.verdicts.get(&e.id);
            json!({
                "id": e.id, "action": e.action, "by": e.by, "device": e.device,
                "at": doc::rfc3339(e.at), "data": e.data,
                "verdict": v.map(|v| json!({
                    "seq": v.seq, "outcome": v.outcome, "rule": v.rule, "reason": v.reason, "at": doc::rfc3339(v.at)
                })),
            })
        })
        .collect();
    let mut out = row_json(&row, now);
    out["serial"] = json!(ticket.server.serial.map(|s| s.to_string()));
    out["description"] = json!(ticket.header.description);
    out["projection"] = serde_json::to_value(&projection).unwrap_or(Value::Null);
    out["flags"] = json!(
        projection
            .flags(now)
            .into_iter()
            .map(Flag::as_str)
            .collect::<Vec<_>>()
    );
    out["events"] = json!(events);
    out["heads"] = json!(heads);
    out["notes"] = serde_json::to_value(&ticket.notes).unwrap_or(Value::Null);
    out["attachments"] = serde_json::to_value(&ticket.attachments).unwrap_or(Value::Null);
    out["caller"] = match &ticket.header.caller {
        None => Value::Null,
        Some(c) => {
            let full = if sees_caller_phone(p, projection.assignee.as_ref()) {
                relay.db.caller(id).await?
            } else {
                None
            };
            let phone = full.map_or_else(|| c.phone.clone(), |f| f.phone);
            json!({
                "name": c.name, "masked": phone.contains('*'), "phone": phone,
                "read_back": c.read_back,
            })
        }
    };
    Ok(out)
}

async fn get_ticket(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let id = parse_id(&id)?;
    if !relay.hub.may_sync(&p, id).await? {
        return Err(AppError::NotFound(format!("no ticket {id}")));
    }
    Ok(Json(ticket_detail(&relay, &p, id).await?))
}

#[derive(Deserialize)]
struct NewEvent {
    action: String,
    #[serde(default, deserialize_with = "event_data")]
    data: EventData,
    note: Option<String>,
    /// The ticket version (`heads` of `GET /tickets/{id}`) the person acted on.
    heads: Option<Vec<String>>,
}

/// `data` must be a JSON object: serde alone would also read a positional
/// array into the struct. A whole number written with a fraction (`2.0`) is
/// the integer: JSON has one number type.
fn event_data<'de, D: serde::Deserializer<'de>>(d: D) -> Result<EventData, D::Error> {
    let mut map = serde_json::Map::<String, Value>::deserialize(d)?;
    map.values_mut().for_each(whole_numbers_as_integers);
    serde_json::from_value(Value::Object(map)).map_err(serde::de::Error::custom)
}

fn whole_numbers_as_integers(v: &mut Value) {
    /// Every integer up to 2^53 is exact as an f64.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match v {
        Value::Number(n) => {
            if let Some(f) = n
                .as_f64()
                .filter(|f| n.is_f64() && f.fract() == 0.0 && f.abs() <= EXACT)
            {
                #[allow(clippy::cast_possible_truncation, reason = "whole and within ±2^53")]
                let i = f as i64;
                *v = Value::from(i);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(whole_numbers_as_integers),
        Value::Object(m) => m.values_mut().for_each(whole_numbers_as_integers),
        _ => {}
    }
}

async fn post_event(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
    Body(body): Body<NewEvent>,
) -> AppResult<Json<Value>> {
    let id = parse_id(&id)?;
    // Only a ticket takes events: any other document is no ticket (404),
    // not a change the judge refuses.
    if relay
        .db
        .read(move |c| records::ticket(c, id))
        .await?
        .is_none()
    {
        return Err(AppError::NotFound(format!("no ticket {id}")));
    }
    let action: Action = body
        .action
        .parse()
        .map_err(|_| AppError::BadRequest(format!("unknown action {:?}", body.action)))?;
    let now = relay.hub.now();
    let event = Event {
        id: EventId::random(),
        action: action.as_str().into(),
        by: p.user.clone(),
        device: p.device.clone(),
        at: now,
        data: body.data,
    };
    let note = body
        .note
        .filter(|n| !n.trim().is_empty())
        .map(|text| schema::ticket::Note {
            id: EventId::random(),
            by: p.user.clone(),
            device: p.device.clone(),
            at: now,
            text,
        });
    let seen = body
        .heads
        .map(|hs| {
            hs.iter()
                .map(|h| h.parse::<automerge::ChangeHash>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| AppError::BadRequest("heads must be hex change hashes".into()))
        })
        .transpose()?;
    let ev = event.clone();
    let rejection = relay
        .hub
        .author(&p, id, false, seen, move |t| {
            doc::append_event(t, &ev)?;
            if let Some(n) = &note {
                doc::append_note(t, n)?;
            }
            Ok(())
        })
        .await?;
    if let Some(r) = rejection {
        return Err(AppError::Refused(format!(
            "{}: {}",
            r.rule.name(),
            r.reason
        )));
    }
    let detail = ticket_detail(&relay, &p, id).await?;
    let verdict = detail["events"]
        .as_array()
        .and_then(|es| es.iter().find(|e| e["id"] == event.id.as_str()))
        .map(|e| e["verdict"].clone())
        .unwrap_or(Value::Null);
    Ok(Json(
        json!({ "event_id": event.id, "verdict": verdict, "ticket": detail }),
    ))
}

#[derive(Deserialize, Default)]
struct ReviewQuery {
    open: Option<bool>,
    kind: Option<String>,
    document: Option<String>,
}

async fn review_queue(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<ReviewQuery>,
) -> AppResult<Json<Value>> {
    require(&p, REVIEWERS, "see the review queue")?;
    let doc_id = q.document.as_deref().map(parse_id).transpose()?;
    let f = ReviewFilter {
        open_only: q.open.unwrap_or(false),
        doc_id,
        kind: q.kind.filter(|k| !k.is_empty()),
    };
    let rows = relay.db.read(move |c| records::review_queue(c, &f)).await?;
    Ok(Json(json!({ "items": rows })))
}

#[derive(Deserialize, Default)]
struct SyncLogQuery {
    user: Option<String>,
    device: Option<String>,
    document: Option<String>,
    verdict: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// How many sessions and ledger rows (newest first) one sync-log answer
/// holds; `propsync-server admin export-sync-log` writes all of them.
const SYNC_LOG_SESSIONS: u32 = 1000;
const SYNC_LOG_CHANGES: u32 = 5000;

async fn sync_log(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<SyncLogQuery>,
) -> AppResult<Json<Value>> {
    require(&p, SUPERVISORS, "read the sync log")?;
    let tz = crate::settings::time_zone(&relay).await?;
    let f = records::SyncLogFilter {
        user: q.user.filter(|s| !s.is_empty()),
        device: q.device.filter(|s| !s.is_empty()),
        document: q
            .document
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(parse_id)
            .transpose()?,
        verdict: q.verdict.filter(|s| !s.is_empty()),
        from: parse_time(q.from.as_deref(), "from", tz)?,
        to: parse_time(q.to.as_deref(), "to", tz)?,
    };
    let (sessions, changes) = relay
        .db
        .read(move |c| {
            Ok((
                records::sync_sessions(c, &f, Some(SYNC_LOG_SESSIONS))?,
                records::change_ledger(c, &f, Some(SYNC_LOG_CHANGES))?,
            ))
        })
        .await?;
    Ok(Json(json!({ "sessions": sessions, "changes": changes })))
}

async fn security_log(State(relay): State<Relay>, Authed(p): Authed) -> AppResult<Json<Value>> {
    require(&p, SUPERVISORS, "read the security log")?;
    // Refusals are written in batches; what is waiting is written first.
    relay.flush_security_log().await;
    let rows = relay.db.read(|c| records::security_log(c, 1000)).await?;
    Ok(Json(json!({ "items": rows })))
}

#[derive(Deserialize)]
struct ContinuityQuery {
    series: String,
    year: u16,
}

async fn serial_continuity(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<ContinuityQuery>,
) -> AppResult<Json<Value>> {
    require(
        &p,
        &[
            Role::Supervisor,
            Role::Manager,
            Role::FrontDesk,
            Role::EngineeringSupervisor,
        ],
        "read the serial register",
    )?;
    let series: Series = q
        .series
        .parse()
        .map_err(|_| AppError::BadRequest(format!("unknown series {:?}", q.series)))?;
    let year = q.year;
    let (ledger, tickets) = relay
        .db
        .read(move |c| {
            let ledger = records::number_ledger(c, series, year)?;
            let mut tickets = BTreeMap::new();
            for row in &ledger {
                if let Some(t) = records::ticket(c, row.doc_id)? {
                    tickets.insert(row.number, t);
                }
            }
            Ok((ledger, tickets))
        })
        .await?;
    let mut missing = Vec::new();
    let mut out_of_order = Vec::new();
    let mut expected = 1u32;
    let mut last_at: Option<DateTime<Utc>> = None;
    let mut entries = Vec::new();
    for row in &ledger {
        while expected < row.number {
            missing.push(expected);
            expected += 1;
        }
        expected = row.number + 1;
        if last_at.is_some_and(|t| row.assigned_at < t) {
            out_of_order.push(row.number);
        }
        last_at = Some(row.assigned_at);
        let t = tickets.get(&row.number);
        let projection: Option<Projection> =
            t.and_then(|t| serde_json::from_value(t.projection.clone()).ok());
        entries.push(json!({
            "serial": schema::Serial::new(series, year, row.number).map(|s| s.to_string()).unwrap_or_default(),
            "number": row.number,
            "ticket": row.doc_id.to_string(),
            "assigned_at": doc::rfc3339(row.assigned_at),
            "status": t.map(|t| t.status.clone()),
            "title": t.map(|t| t.title.clone()),
            "void_reason": projection.as_ref().filter(|p| p.status == schema::Status::Voided).and_then(|p| p.end_reason.clone()),
        }));
    }
    Ok(Json(json!({
        "series": series.code(),
        "year": year,
        "issued": ledger.len(),
        "first": ledger.first().map(|r| r.number),
        "last": ledger.last().map(|r| r.number),
        "missing": missing,
        "out_of_order": out_of_order,
        "continuous": missing.is_empty() && out_of_order.is_empty(),
        "entries": entries,
    })))
}

async fn devices(State(relay): State<Relay>, Authed(p): Authed) -> AppResult<Json<Value>> {
    require(&p, SUPERVISORS, "list devices")?;
    let rows = relay.db.read(records::devices).await?;
    Ok(Json(json!({ "devices": rows })))
}

async fn revoke_device(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    require(&p, &[Role::Manager], "revoke devices")?;
    let device: schema::DeviceId = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{id:?} is not a device id")))?;
    let revoked = crate::admin::revoke_device(&relay, &device).await?;
    Ok(Json(json!({ "device": device, "revoked": revoked })))
}

#[derive(Deserialize, Default)]
struct HouseholdQuery {
    q: Option<String>,
}

async fn households(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<HouseholdQuery>,
) -> AppResult<Json<Value>> {
    require(
        &p,
        &[
            Role::FrontDesk,
            Role::Supervisor,
            Role::Manager,
            Role::Cashier,
            Role::EngineeringSupervisor,
            Role::Dispatcher,
        ],
        "search households",
    )?;
    let needle = q.q.filter(|s| !s.is_empty() && s.len() < 100);
    let by_phone = access::may_sync(&p, &DocClass::HouseholdPrivate, false);
    // By unit or building, and, from the household register, by the caller's
    // phone number, a resident's name or a number plate (the contact form).
    let rows = relay
        .db
        .read(move |c| {
            let mut rows = records::households(c, needle.as_deref())?;
            if let Some(q) = needle.as_deref() {
                for f in crate::property::find(c, q, by_phone)? {
                    if !rows.iter().any(|r| r.doc_id == f.id) {
                        rows.push(records::HouseholdRow {
                            doc_id: f.id,
                            private_doc: Some(f.private),
                            building: f.building,
                            unit: f.data.unit,
                        });
                    }
                }
            }
            Ok(rows)
        })
        .await?;
    Ok(Json(json!({ "households": rows.iter().map(|h| json!({
        "id": h.doc_id.to_string(), "url": h.doc_id.url().to_string(),
        "private": h.private_doc.map(|p| p.url().to_string()), "building": h.building, "unit": h.unit,
    })).collect::<Vec<_>>() })))
}
