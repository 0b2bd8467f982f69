//! `/api/v1/fees/…`: charge items, the bill run, posted charges, payments,
//! refunds and adjustments, reminders and a household's statement.
//!
//! Who may do what: the manager sets items, runs bills and approves every
//! reversing entry; the cashier runs bills, posts charges and records
//! payments; supervisors read statements; the front desk sees only whether
//! a household is in arrears; engineers and department staff see nothing.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use schema::{DocId, Principal, Role};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Period;
use super::ledger::{self, AdjustmentKind, Item, ItemKind, Method};
use crate::error::{AppError, AppResult};
use crate::extract::{Authed, Body};
use crate::settings;
use crate::state::Relay;

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/fees/items", get(list_items).post(put_item))
        .route("/api/v1/fees/bill-runs", post(bill_run))
        .route("/api/v1/fees/charges", post(post_charge))
        .route("/api/v1/fees/payments", post(pay))
        .route("/api/v1/fees/adjustments", post(adjust))
        .route("/api/v1/fees/reminders", post(remind))
        .route("/api/v1/fees/households/{id}", get(statement))
}

const LEDGER_READERS: &[Role] = &[Role::Cashier, Role::Supervisor, Role::Manager];
const BILLERS: &[Role] = &[Role::Cashier, Role::Manager];
const REMINDERS: &[Role] = &[
    Role::Cashier,
    Role::FrontDesk,
    Role::Supervisor,
    Role::Manager,
];

fn require(p: &Principal, roles: &[Role], what: &str) -> AppResult<()> {
    if roles.contains(&p.role) {
        Ok(())
    } else {
        Err(AppError::Forbidden(format!("a {} may not {what}", p.role)))
    }
}

fn household_id(s: &str) -> AppResult<DocId> {
    s.strip_prefix("automerge:")
        .unwrap_or(s)
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{s:?} is not a household id")))
}

fn period(s: &str) -> AppResult<Period> {
    s.parse().map_err(AppError::BadRequest)
}

async fn list_items(State(relay): State<Relay>, Authed(p): Authed) -> AppResult<Json<Value>> {
    require(&p, LEDGER_READERS, "read the charge items")?;
    let items = relay.db.read(ledger::items).await?;
    Ok(Json(json!({ "items": items })))
}

async fn put_item(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(item): Body<Item>,
) -> AppResult<Json<Value>> {
    require(&p, &[Role::Manager], "set charge items")?;
    check_item(&item)?;
    let stored = item.clone();
    relay
        .db
        .write(move |tx| ledger::put_item(tx, &stored))
        .await?;
    Ok(Json(json!({ "item": item })))
}

fn check_item(item: &Item) -> AppResult<()> {
    let code_ok = !item.code.is_empty()
        && item.code.len() <= 40
        && item
            .code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !code_ok || item.name_zh.trim().is_empty() {
        return Err(AppError::BadRequest(
            "an item needs a code (letters, digits, _) and a Chinese name".into(),
        ));
    }
    if item.rate_fen < 0
        || (matches!(item.kind, ItemKind::PerArea | ItemKind::PerSpace) && item.rate_fen == 0)
    {
        return Err(AppError::BadRequest(
            "a monthly item needs a positive rate in fen".into(),
        ));
    }
    Ok(())
}

/// Adds or changes a charge item (the admin command).
///
/// # Errors
/// [`AppError::BadRequest`] for a bad kind, code or rate; storage errors.
pub(crate) async fn set_item(
    relay: &Relay,
    code: String,
    name_zh: String,
    name_en: String,
    kind: &str,
    rate_fen: i64,
) -> AppResult<()> {
    let kind: ItemKind = serde_json::from_value(Value::String(kind.to_owned())).map_err(|_| {
        AppError::BadRequest(format!(
            "{kind:?} is not per_area, per_space, metered or one_off"
        ))
    })?;
    let item = Item {
        code,
        name_zh,
        name_en,
        kind,
        rate_fen,
    };
    check_item(&item)?;
    relay
        .db
        .write(move |tx| ledger::put_item(tx, &item))
        .await?;
    Ok(())
}

#[derive(Deserialize)]
struct RunBody {
    period: String,
}

async fn bill_run(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(b): Body<RunBody>,
) -> AppResult<Json<Value>> {
    require(&p, BILLERS, "run bills")?;
    let r = run_bills(&relay, &b.period, p.user.as_str()).await?;
    Ok(Json(json!({ "run": r })))
}

/// Bills a period (the API and the admin command share it); the private
/// files' arrears summaries follow in the background.
///
/// # Errors
/// [`AppError::BadRequest`] for a bad period; storage errors.
pub(crate) async fn run_bills(relay: &Relay, period: &str, by: &str) -> AppResult<RunSummary> {
    let period = self::period(period)?;
    let tz = settings::time_zone(relay).await?;
    let (by, now) = (by.to_owned(), relay.hub.now());
    let r = relay
        .db
        .write(move |tx| ledger::bill_run(tx, period, &by, now, tz))
        .await?;
    let r2 = relay.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::property::refresh_arrears(&r2, None).await {
            tracing::warn!(error = %e, "arrears summaries not rewritten");
        }
    });
    Ok(RunSummary(r))
}

/// A bill run's result, as JSON and for people.
#[derive(serde::Serialize)]
#[serde(transparent)]
pub(crate) struct RunSummary(ledger::RunResult);

impl std::fmt::Display for RunSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.0;
        write!(
            f,
            "{}: {} bills made, {} already billed",
            r.period, r.billed, r.already
        )?;
        if let Some((first, last)) = &r.numbers {
            write!(f, " (numbers {first} to {last})")?;
        }
        if r.credit_applied > 0 {
            write!(
                f,
                "; {} of credit applied",
                super::show_fen(r.credit_applied)
            )?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
struct ChargeBody {
    household: String,
    item: String,
    period: String,
    amount_fen: i64,
    #[serde(default)]
    note: String,
    /// Makes the post idempotent (a retried request bills once).
    request_id: String,
}

async fn post_charge(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(b): Body<ChargeBody>,
) -> AppResult<Json<Value>> {
    require(&p, BILLERS, "post charges")?;
    let h = household_id(&b.household)?;
    let period = period(&b.period)?;
    if b.request_id.trim().is_empty() || b.request_id.len() > 100 {
        return Err(AppError::BadRequest("request_id is required".into()));
    }
    let tz = settings::time_zone(&relay).await?;
    let (by, now) = (p.user.to_string(), relay.hub.now());
    let source = format!("charge:{}", b.request_id.trim());
    let number = relay
        .db
        .write(move |tx| {
            ledger::post_charge(
                tx,
                h,
                &b.item,
                period,
                b.amount_fen,
                b.note.trim(),
                &source,
                &by,
                now,
                tz,
            )
        })
        .await?;
    crate::property::refresh_arrears(&relay, Some(h)).await?;
    Ok(Json(json!({ "bill": number })))
}

#[derive(Deserialize)]
struct PayBody {
    household: String,
    amount_fen: i64,
    method: Method,
    /// Bills to pay, in order; the oldest open bills when absent.
    #[serde(default)]
    bills: Option<Vec<String>>,
    /// Makes the payment idempotent (a retried request records once).
    #[serde(default)]
    request_id: Option<String>,
}

async fn pay(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(b): Body<PayBody>,
) -> AppResult<Json<Value>> {
    require(&p, &[Role::Cashier], "record payments")?;
    let h = household_id(&b.household)?;
    if b.amount_fen <= 0 {
        return Err(AppError::BadRequest(
            "amount_fen must be a positive number of fen".into(),
        ));
    }
    let tz = settings::time_zone(&relay).await?;
    let (by, now) = (p.user.to_string(), relay.hub.now());
    let receipt = relay
        .db
        .write(move |tx| {
            ledger::record_payment(
                tx,
                h,
                b.amount_fen,
                b.method,
                b.bills.as_deref(),
                b.request_id.as_deref(),
                &by,
                now,
                tz,
            )
        })
        .await?;
    crate::property::refresh_arrears(&relay, Some(h)).await?;
    Ok(Json(json!({ "receipt": receipt })))
}

#[derive(Deserialize)]
struct AdjustBody {
    household: String,
    kind: AdjustmentKind,
    #[serde(default)]
    bill: Option<String>,
    amount_fen: i64,
    reason: String,
}

async fn adjust(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(b): Body<AdjustBody>,
) -> AppResult<Json<Value>> {
    require(
        &p,
        &[Role::Manager],
        "approve refunds or adjustments (a manager approves every reversing entry)",
    )?;
    let h = household_id(&b.household)?;
    let tz = settings::time_zone(&relay).await?;
    let (by, now) = (p.user.to_string(), relay.hub.now());
    let number = relay
        .db
        .write(move |tx| {
            ledger::adjust(
                tx,
                h,
                b.kind,
                b.bill.as_deref(),
                b.amount_fen,
                &b.reason,
                &by,
                now,
                tz,
            )
        })
        .await?;
    crate::property::refresh_arrears(&relay, Some(h)).await?;
    Ok(Json(json!({ "number": number })))
}

#[derive(Deserialize)]
struct RemindBody {
    household: String,
    channel: String,
    result: String,
}

async fn remind(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(b): Body<RemindBody>,
) -> AppResult<Json<Value>> {
    require(&p, REMINDERS, "record arrears reminders")?;
    let h = household_id(&b.household)?;
    let (by, now) = (p.user.to_string(), relay.hub.now());
    let id = relay
        .db
        .write(move |tx| ledger::remind(tx, h, &b.channel, &b.result, &by, now))
        .await?;
    Ok(Json(json!({ "reminder": id })))
}

async fn statement(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> AppResult<Json<Value>> {
    let h = household_id(&id)?;
    if p.role == Role::FrontDesk {
        let owes = relay.db.read(move |c| ledger::in_arrears(c, h)).await?;
        return Ok(Json(
            json!({ "household": h.to_string(), "in_arrears": owes }),
        ));
    }
    require(&p, LEDGER_READERS, "read the fee ledger")?;
    let exists = relay
        .db
        .read(move |c| crate::property::household_file(c, h))
        .await?
        .is_some();
    if !exists {
        return Err(AppError::NotFound(format!("no household {h}")));
    }
    Ok(Json(relay.db.read(move |c| ledger::statement(c, h)).await?))
}
