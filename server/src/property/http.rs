//! `/api/v1/property` and `/api/v1/household-files/…`: setting the property
//! up, the household register (create, read, edit with history, find by
//! phone, unit, name or plate) and imports (preview, then commit; at once,
//! or as a job a page follows with a progress bar).
//!
//! The manager sets the property up; the front desk, supervisors and the
//! manager keep the household files; cashiers read them. Phone numbers are
//! private: engineers and department staff never get a household file here
//! (they sync the public document of the households of their tickets).

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use schema::access::{self, DocClass};
use schema::doc::rfc3339;
use schema::{DocId, Principal, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use super::import::{self, Format, Progress, Stage};
use super::{HouseholdInput, PropertySpec};
use crate::error::{AppError, AppResult};
use crate::extract::{Authed, Body, Params};
use crate::state::Relay;
use crate::store::StoreError;

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/property", get(get_property).post(setup))
        .route("/api/v1/household-files", get(list_files).post(create_file))
        .route("/api/v1/household-files/{id}", get(get_file).put(edit_file))
        .route("/api/v1/household-files/import", post(import_files))
        .route("/api/v1/household-files/imports", post(start_import))
        .route("/api/v1/household-files/imports/{id}", get(import_job))
        .route("/api/v1/household-files/{id}/extract", get(extract))
        .route("/households/{id}/print", get(super::print::household))
        .route("/households/print.css", get(super::print::stylesheet))
}

const KEEPERS: &[Role] = &[Role::FrontDesk, Role::Supervisor, Role::Manager];
pub(super) const READERS: &[Role] = &[
    Role::FrontDesk,
    Role::Supervisor,
    Role::Manager,
    Role::Cashier,
];

pub(super) fn require(p: &Principal, roles: &[Role], what: &str) -> AppResult<()> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("a {} may not {what}", p.role)))
    }
}

pub(super) fn parse_id(s: &str) -> AppResult<DocId> {
    s.strip_prefix("automerge:")
        .unwrap_or(s)
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{s:?} is not a household id")))
}

async fn get_property(State(relay): State<Relay>, Authed(_): Authed) -> AppResult<Json<Value>> {
    let p = relay.db.read(super::property).await?;
    Ok(Json(json!({ "property": p })))
}

async fn setup(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(spec): Body<PropertySpec>,
) -> AppResult<Json<Value>> {
    require(&p, &[Role::Manager], "set up the property")?;
    super::setup_property(&relay, spec, &p.user).await?;
    let p = relay.db.read(super::property).await?;
    Ok(Json(json!({ "property": p })))
}

#[derive(Deserialize, Default)]
struct FindQuery {
    q: Option<String>,
}

async fn list_files(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<FindQuery>,
) -> AppResult<Json<Value>> {
    require(&p, READERS, "read household files")?;
    let q = q.q.filter(|s| !s.trim().is_empty() && s.len() < 100);
    let by_phone = access::may_sync(&p, &DocClass::HouseholdPrivate, false);
    let files = relay
        .db
        .read(move |c| match q {
            Some(q) => super::find(c, &q, by_phone),
            None => super::household_files(c),
        })
        .await?;
    Ok(Json(json!({ "households": files })))
}

async fn create_file(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(h): Body<HouseholdInput>,
) -> AppResult<Json<Value>> {
    require(&p, KEEPERS, "create household files")?;
    let ids = super::create_households(&relay, vec![h], &p.user).await?;
    let id = ids
        .first()
        .copied()
        .ok_or_else(|| AppError::Internal("no household made".into()))?;
    let file = relay.db.read(move |c| super::household_file(c, id)).await?;
    Ok(Json(json!({ "household": file })))
}

async fn get_file(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    require(&p, READERS, "read household files")?;
    let id = parse_id(&id)?;
    let (file, history) = relay
        .db
        .read(move |c| Ok((super::household_file(c, id)?, super::history(c, id)?)))
        .await?;
    let file = file.ok_or_else(|| AppError::NotFound(format!("no household {id}")))?;
    Ok(Json(json!({ "household": file, "history": history })))
}

/// `?as_of=` (a wall time in the property's zone, or RFC 3339) and, for the
/// JSON endpoint, `?format=csv|xlsx`.
#[derive(Deserialize, Default)]
pub(super) struct ExtractQuery {
    pub(super) as_of: Option<String>,
    format: Option<String>,
}

/// Report 17, the household file extract (一户一档): the file and its
/// history, every ticket of the household, and its fee ledger (for the front
/// desk only whether it is in arrears), ready to print; "as of" a cut-off
/// like every report, as JSON, CSV or XLSX.
async fn extract(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
    Params(q): Params<ExtractQuery>,
) -> AppResult<Response> {
    require(&p, READERS, "read household files")?;
    let id = parse_id(&id)?;
    let tz = crate::settings::time_zone(&relay).await?;
    let as_of = crate::settings::parse_time(q.as_of.as_deref(), "as_of", tz)?;
    let x = extract_of(&relay, &p, id, as_of).await?;
    match q.format.as_deref() {
        None | Some("json") => Ok(Json(x).into_response()),
        Some(f @ ("csv" | "xlsx")) => {
            let cut = as_of.unwrap_or_else(|| relay.hub.now());
            let report = crate::reports::household::extract_report(&x, cut, tz);
            Ok(crate::reports::respond(&report, cut, Some(f)))
        }
        Some(other) => Err(AppError::BadRequest(format!(
            "format {other:?}: json, csv or xlsx"
        ))),
    }
}

/// Report 17's content for `p` (who must be one of `READERS`): the front
/// desk sees whether the household is in arrears, the others its statement.
/// With `as_of`, as recorded by then: the file as its last version by the
/// cut-off had it, the tickets received by then with their state then, the
/// ledger's entries made by then (a household not yet on file is not found).
pub(super) async fn extract_of(
    relay: &Relay,
    p: &Principal,
    id: DocId,
    as_of: Option<DateTime<Utc>>,
) -> AppResult<Value> {
    let full_ledger = p.role != Role::FrontDesk;
    let policy = relay.hub.policy.clone();
    let out = relay
        .db
        .read(move |c| {
            let Some(mut file) = super::household_file(c, id)? else {
                return Ok(None);
            };
            let mut history = super::history(c, id)?;
            let cut = as_of.map(rfc3339);
            if let Some(cut) = &cut {
                history.retain(|e| e["at"].as_str().is_some_and(|a| a <= cut.as_str()));
                let Some(last) = history.last() else {
                    return Ok(None);
                };
                file.data = serde_json::from_value(last["after"].clone()).map_err(|e| {
                    StoreError::Corrupt(format!("household {id}, version {}: {e}", last["version"]))
                })?;
                file.version = last["version"].as_i64().unwrap_or(file.version);
                file.updated_by = last["by"].as_str().unwrap_or_default().to_owned();
                file.updated_at = last["at"].as_str().unwrap_or_default().to_owned();
            }
            let tickets = match as_of {
                None => super::tickets_now(c, id)?,
                Some(cut) => super::tickets_at(c, id, cut, &policy)?,
            };
            let ledger = match (&cut, full_ledger) {
                (None, true) => crate::fees::ledger::statement(c, id)?,
                (Some(cut), true) => crate::fees::ledger::statement_at(c, id, cut)?,
                (None, false) => json!({ "in_arrears": crate::fees::ledger::in_arrears(c, id)? }),
                (Some(cut), false) => {
                    json!({ "in_arrears": crate::fees::ledger::in_arrears_at(c, id, cut)? })
                }
            };
            Ok(Some(json!({
                "title": "一户一档 Household file extract",
                "as_of": cut,
                "household": file,
                "history": history,
                "tickets": tickets,
                "ledger": ledger,
            })))
        })
        .await?;
    out.ok_or_else(|| match as_of {
        Some(t) => AppError::NotFound(format!("household {id} was not on file at {}", rfc3339(t))),
        None => AppError::NotFound(format!("no household {id}")),
    })
}

#[derive(Deserialize)]
struct EditBody {
    /// The version the edit was made on (optimistic: a stale edit is refused).
    version: i64,
    household: HouseholdInput,
}

async fn edit_file(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
    Body(b): Body<EditBody>,
) -> AppResult<Json<Value>> {
    require(&p, KEEPERS, "edit household files")?;
    let id = parse_id(&id)?;
    let version = super::edit_household(&relay, id, b.household, b.version, &p.user).await?;
    Ok(Json(json!({ "id": id.to_string(), "version": version })))
}

#[derive(Deserialize, Default)]
struct ImportQuery {
    /// `true` writes; otherwise the import is only previewed.
    commit: Option<bool>,
    /// `csv` or `xlsx`; otherwise from the content type.
    format: Option<String>,
}

async fn import_files(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Json<Value>> {
    require(&p, KEEPERS, "import household files")?;
    let format = import_format(&q, &headers)?;
    let outcome = import_bytes(
        &relay,
        &body,
        format,
        q.commit.unwrap_or(false),
        &p,
        &|_, _, _| {},
    )
    .await?;
    Ok(Json(outcome))
}

fn import_format(q: &ImportQuery, headers: &HeaderMap) -> AppResult<Format> {
    Ok(match q.format.as_deref() {
        Some("xlsx") => Format::Xlsx,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "{other:?} is not csv or xlsx"
            )));
        }
        None => Format::guess(
            headers
                .get(axum::http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
    })
}

/// Starts an import as a job the page follows (`GET …/imports/{id}`):
/// 202 with the job's first state. The same checks and the same
/// all-or-nothing commit as `POST /api/v1/household-files/import`.
async fn start_import(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Params(q): Params<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<(StatusCode, Json<Value>)> {
    require(&p, KEEPERS, "import household files")?;
    let format = import_format(&q, &headers)?;
    let status = super::jobs::start(&relay, body, format, q.commit.unwrap_or(false), p)?;
    Ok((StatusCode::ACCEPTED, Json(json!(status))))
}

/// An import job's state: stage, rows or households done of how many, the
/// bad rows when refused, the outcome when done. Only its starter sees it.
async fn import_job(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    require(&p, KEEPERS, "import household files")?;
    let status = relay
        .imports
        .status(&id, &p.user)
        .ok_or_else(|| AppError::NotFound(format!("no import job {id:?} of yours")))?;
    Ok(Json(json!(status)))
}

/// Previews or commits an import; the admin command and the API share it.
///
/// # Errors
/// [`AppError::BadRequest`] with every bad row when any row is bad (nothing
/// is written); storage errors.
pub(crate) async fn import_bytes(
    relay: &Relay,
    bytes: &[u8],
    format: Format,
    commit: bool,
    by: &Principal,
    progress: Progress<'_>,
) -> AppResult<Value> {
    let units: BTreeSet<String> = relay
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT code FROM units")?;
            Ok(st
                .query_map([], |r| r.get(0))?
                .collect::<Result<BTreeSet<String>, _>>()?)
        })
        .await?;
    if units.is_empty() {
        return Err(AppError::Conflict(
            "the property has no units yet: set it up first".into(),
        ));
    }
    let preview = import::preview_with(bytes, format, &units, progress)?;
    if !preview.errors.is_empty() {
        return Err(AppError::Invalid {
            message: format!(
                "{} of {} rows are wrong; nothing was imported",
                preview
                    .errors
                    .iter()
                    .map(|e| e.row)
                    .collect::<BTreeSet<_>>()
                    .len(),
                preview.rows
            ),
            details: json!({ "errors": preview.errors }),
        });
    }
    if !commit {
        return Ok(json!({
            "committed": false, "rows": preview.rows, "households": preview.households,
        }));
    }
    let n = preview.households.len();
    progress(Stage::Writing, 0, n);
    let ids = super::create_households_with(relay, preview.households, &by.user, &|done, of| {
        progress(Stage::Writing, done, of);
    })
    .await?;
    Ok(json!({
        "committed": true, "rows": n,
        "households": ids.iter().map(ToString::to_string).collect::<Vec<_>>(),
    }))
}
