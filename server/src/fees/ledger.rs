// Long file: every statement of the fee ledger, bills to reminders, beside each other.
//! The fee ledger's SQL. Writes take a `&Transaction` and run on the store's
//! one writer, so two cashiers paying the same household are serialised: the
//! second sees the first one's allocations and can never allocate the same
//! fen twice. Reads take a `&Connection`.
//!
//! A bill asks for `amount − allocations − adjustments`; a household's
//! credit is `payments − allocations − refunds`. Times are RFC 3339 UTC
//! text, so "as of" a cut-off is a string comparison.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use schema::DocId;
use schema::doc::rfc3339;
use serde::{Deserialize, Serialize};

use super::{Period, allocate, area_fee, prorate};
use crate::store::{StoreError, StoreResult};

/// How a charge item is billed.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ItemKind {
    /// Fen per m² of floor area per month (物业费).
    PerArea,
    /// Fen per parking space per month.
    PerSpace,
    /// Pass-through utilities, posted one by one.
    Metered,
    /// One-off charges, posted one by one.
    OneOff,
}

impl ItemKind {
    fn as_str(self) -> &'static str {
        match self {
            ItemKind::PerArea => "per_area",
            ItemKind::PerSpace => "per_space",
            ItemKind::Metered => "metered",
            ItemKind::OneOff => "one_off",
        }
    }
}

/// A charge item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Item {
    pub(crate) code: String,
    pub(crate) name_zh: String,
    pub(crate) name_en: String,
    pub(crate) kind: ItemKind,
    /// Fen per m² per month, per space per month; 0 for posted items.
    pub(crate) rate_fen: i64,
}

/// How a payment was made (no payment gateway: the cashier records it).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Method {
    Cash,
    Wechat,
    Alipay,
    BankTransfer,
    Card,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Cash => "cash",
            Method::Wechat => "wechat",
            Method::Alipay => "alipay",
            Method::BankTransfer => "bank_transfer",
            Method::Card => "card",
        }
    }
}

fn conflict(m: impl Into<String>) -> StoreError {
    StoreError::Conflict(m.into())
}

/// The next number of `series` (`BL`, `RC`, `AD`) in `year`: gap-free,
/// taken in the transaction that uses it, so a rolled-back transaction
/// gives its number back.
pub(crate) fn next_number(tx: &Transaction<'_>, series: &str, year: i32) -> StoreResult<String> {
    tx.execute(
        "INSERT INTO number_series(series, year, last) VALUES (?1, ?2, 0) ON CONFLICT DO NOTHING",
        params![series, year],
    )?;
    let n: i64 = tx.query_row(
        "UPDATE number_series SET last = last + 1 WHERE series = ?1 AND year = ?2 RETURNING last",
        params![series, year],
        |r| r.get(0),
    )?;
    Ok(format!("{series}-{year}-{n:06}"))
}

/// Adds or replaces a charge item (its rate applies to bills not yet made).
pub(crate) fn put_item(tx: &Transaction<'_>, item: &Item) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO charge_items(code, name_zh, name_en, kind, rate_fen) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(code) DO UPDATE SET name_zh = excluded.name_zh, name_en = excluded.name_en,
         kind = excluded.kind, rate_fen = excluded.rate_fen",
        params![item.code, item.name_zh, item.name_en, item.kind.as_str(), item.rate_fen],
    )?;
    Ok(())
}

/// Every charge item.
pub(crate) fn items(conn: &Connection) -> StoreResult<Vec<Item>> {
    let mut st = conn
        .prepare("SELECT code, name_zh, name_en, kind, rate_fen FROM charge_items ORDER BY code")?;
    let rows = st
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(code, name_zh, name_en, kind, rate_fen)| {
            let kind = serde_json::from_value(serde_json::Value::String(kind))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Item {
                code,
                name_zh,
                name_en,
                kind,
                rate_fen,
            })
        })
        .collect()
}

/// What a bill run did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub(crate) struct RunResult {
    pub(crate) period: String,
    /// Bills made by this run.
    pub(crate) billed: usize,
    /// Bills that already existed (an earlier run of the same period).
    pub(crate) already: usize,
    /// The first and last bill number this run took.
    pub(crate) numbers: Option<(String, String)>,
    /// Fen of earlier credit applied to the new bills.
    pub(crate) credit_applied: i64,
}

/// Bills `period` for every household living there during it, for every
/// monthly item (per area, per parking space), prorated to the days present.
/// Idempotent: a household, item and period is billed once whatever how
/// often the run is repeated. Credit the household holds pays the new
/// bills at once.
pub(crate) fn bill_run(
    tx: &Transaction<'_>,
    period: Period,
    by: &str,
    now: DateTime<Utc>,
    tz: Tz,
) -> StoreResult<RunResult> {
    let year = crate::settings::year_of(now, tz);
    let monthly: Vec<Item> = items(tx)?
        .into_iter()
        .filter(|i| matches!(i.kind, ItemKind::PerArea | ItemKind::PerSpace))
        .collect();
    let mut st = tx.prepare(
        "SELECT f.doc_id, f.move_in, f.move_out, f.data, u.area_centi_m2 FROM household_files f
         JOIN units u ON u.code = f.unit
         WHERE f.move_in <= ?1 AND (f.move_out IS NULL OR f.move_out >= ?2) ORDER BY f.unit, f.move_in",
    )?;
    let households = st
        .query_map(
            params![
                period.last_day().to_string(),
                period.first_day().to_string()
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let date = |s: &str| {
        s.parse::<NaiveDate>()
            .map_err(|_| StoreError::Corrupt(format!("{s} is not a date")))
    };
    let mut out = RunResult {
        period: period.to_string(),
        ..RunResult::default()
    };
    let at = rfc3339(now);
    let mut touched = Vec::new();
    for (household, move_in, move_out, data, area) in households {
        let (move_in, move_out) = (date(&move_in)?, move_out.as_deref().map(date).transpose()?);
        let spaces = serde_json::from_str::<crate::property::HouseholdInput>(&data)
            .map(|h| h.parking.len())
            .unwrap_or(0);
        for item in &monthly {
            let full = match item.kind {
                ItemKind::PerArea => area_fee(area, item.rate_fen),
                _ => item
                    .rate_fen
                    .saturating_mul(i64::try_from(spaces).unwrap_or(0)),
            };
            let Some(amount) = prorate(full, period, move_in, move_out) else {
                continue;
            };
            let source = format!("run:{period}:{household}:{}", item.code);
            let exists: bool = tx.query_row(
                "SELECT count(*) > 0 FROM bills WHERE source = ?1",
                [&source],
                |r| r.get(0),
            )?;
            if exists {
                out.already += 1;
                continue;
            }
            let number = next_number(tx, "BL", year)?;
            tx.execute(
                "INSERT INTO bills(number, household, item, period, amount_fen, source, note, created_by, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '', ?7, ?8)",
                params![number, household, item.code, period.to_string(), amount, source, by, at],
            )?;
            out.billed += 1;
            out.numbers = Some(match out.numbers.take() {
                None => (number.clone(), number),
                Some((first, _)) => (first, number),
            });
            touched.push(household.clone());
        }
    }
    touched.dedup();
    for h in touched {
        out.credit_applied += apply_credit(tx, &h, &at)?;
    }
    Ok(out)
}

/// Posts a one-off or metered charge (or a paid repair's charge) to a
/// household's ledger. `source` makes it idempotent: posting the same source
/// twice returns the first bill.
#[allow(clippy::too_many_arguments, reason = "one ledger entry's fields")]
pub(crate) fn post_charge(
    tx: &Transaction<'_>,
    household: DocId,
    item: &str,
    period: Period,
    amount: i64,
    note: &str,
    source: &str,
    by: &str,
    now: DateTime<Utc>,
    tz: Tz,
) -> StoreResult<String> {
    if amount <= 0 {
        return Err(conflict("a charge must be a positive amount of fen"));
    }
    if let Some(number) = tx
        .query_row(
            "SELECT number FROM bills WHERE source = ?1",
            [source],
            |r| r.get::<_, String>(0),
        )
        .optional()?
    {
        return Ok(number);
    }
    let kind: Option<String> = tx
        .query_row(
            "SELECT kind FROM charge_items WHERE code = ?1",
            [item],
            |r| r.get(0),
        )
        .optional()?;
    match kind.as_deref() {
        Some("metered" | "one_off") => {}
        Some(_) => {
            return Err(conflict(format!(
                "{item} is billed by the monthly run, not posted"
            )));
        }
        None => return Err(conflict(format!("no charge item {item:?}"))),
    }
    require_household(tx, household)?;
    let number = next_number(tx, "BL", crate::settings::year_of(now, tz))?;
    let at = rfc3339(now);
    tx.execute(
        "INSERT INTO bills(number, household, item, period, amount_fen, source, note, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![number, household.to_string(), item, period.to_string(), amount, source, note, by, at],
    )?;
    apply_credit(tx, &household.to_string(), &at)?;
    Ok(number)
}

/// The charge items paid orders post under, created on first use
/// (`one_off`: posted one by one, never by the monthly run).
const ORDER_ITEMS: &[(schema::Kind, &str, &str, &str)] = &[
    (
        schema::Kind::Repair,
        "paid_repair",
        "有偿维修",
        "paid repair",
    ),
    (
        schema::Kind::PaidService,
        "paid_service",
        "有偿服务",
        "paid service",
    ),
];

/// What a paid order's collection posted: the bill and the receipt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Posted {
    pub(crate) bill: String,
    pub(crate) receipt: String,
}

/// The `source` (bill) and `request_id` (payment) of a ticket's collection.
pub(crate) fn collection_source(ticket: DocId, event: &schema::EventId) -> String {
    format!("ticket:{ticket}:{event}")
}

/// Posts a paid order's collection (an accepted `collect`) to the
/// household's ledger: a bill under `paid_repair` or `paid_service` for the
/// local month of `now`, and the payment as the next `RC-` receipt,
/// allocated to that bill alone (the resident paid for this order; their
/// credit and other bills are left as they were). Keyed by the event: a
/// second call posts nothing. Posts nothing (`None`) for a household not in
/// the register or a method the ledger does not know, so the ticket's own
/// commit never fails on it.
pub(crate) fn post_collection(
    tx: &Transaction<'_>,
    ticket: DocId,
    c: &relay_core::Collection,
    now: DateTime<Utc>,
    tz: Tz,
) -> StoreResult<Option<Posted>> {
    let source = collection_source(ticket, &c.event);
    let already: bool = tx.query_row(
        "SELECT count(*) > 0 FROM bills WHERE source = ?1",
        [&source],
        |r| r.get(0),
    )?;
    let Ok(method) = serde_json::from_value::<Method>(serde_json::Value::String(c.method.clone()))
    else {
        tracing::warn!(%ticket, method = %c.method, "collection not posted: unknown method");
        return Ok(None);
    };
    let Some(&(_, code, zh, en)) = ORDER_ITEMS.iter().find(|(k, ..)| *k == c.kind) else {
        return Ok(None);
    };
    let in_register: bool = tx.query_row(
        "SELECT count(*) > 0 FROM household_files WHERE doc_id = ?1",
        [c.household.to_string()],
        |r| r.get(0),
    )?;
    if already || !in_register {
        return Ok(None);
    }
    tx.execute(
        "INSERT INTO charge_items(code, name_zh, name_en, kind, rate_fen) VALUES (?1, ?2, ?3, 'one_off', 0)
         ON CONFLICT(code) DO NOTHING",
        params![code, zh, en],
    )?;
    let year = crate::settings::year_of(now, tz);
    let period = Period::of(crate::settings::local_date(now, tz));
    let amount = c.amount.get();
    let note = c
        .serial
        .map_or_else(|| format!("ticket {ticket}"), |s| s.to_string());
    let at = rfc3339(now);
    let h = c.household.to_string();
    let bill = next_number(tx, "BL", year)?;
    tx.execute(
        "INSERT INTO bills(number, household, item, period, amount_fen, source, note, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![bill, h, code, period.to_string(), amount, source, note, c.by.as_str(), at],
    )?;
    let receipt = next_number(tx, "RC", year)?;
    tx.execute(
        "INSERT INTO payments(receipt, household, amount_fen, method, request_id, cashier, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![receipt, h, amount, method.as_str(), source, c.by.as_str(), at],
    )?;
    tx.execute(
        "INSERT INTO allocations(receipt, bill, amount_fen, at) VALUES (?1, ?2, ?3, ?4)",
        params![receipt, bill, amount, at],
    )?;
    Ok(Some(Posted { bill, receipt }))
}

fn require_household(conn: &Connection, household: DocId) -> StoreResult<()> {
    let ok: bool = conn.query_row(
        "SELECT count(*) > 0 FROM household_files WHERE doc_id = ?1",
        [household.to_string()],
        |r| r.get(0),
    )?;
    if ok {
        Ok(())
    } else {
        Err(conflict(format!("no household {household}")))
    }
}

/// A household's open bills, oldest period first, with what each still asks.
pub(crate) fn open_bills(conn: &Connection, household: &str) -> StoreResult<Vec<(String, i64)>> {
    let mut st = conn.prepare(
        "SELECT b.number, b.amount_fen
           - coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.bill = b.number), 0)
           - coalesce((SELECT sum(amount_fen) FROM adjustments d WHERE d.bill = b.number), 0)
         FROM bills b WHERE b.household = ?1 ORDER BY b.period, b.number",
    )?;
    let rows = st
        .query_map([household], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|(_, due)| *due > 0).collect())
}

/// What each of a household's payments has not yet been allocated, oldest
/// first (the household's credit, receipt by receipt).
fn unallocated(conn: &Connection, household: &str) -> StoreResult<Vec<(String, i64)>> {
    let mut st = conn.prepare(
        "SELECT p.receipt, p.amount_fen
           - coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.receipt = p.receipt), 0)
         FROM payments p WHERE p.household = ?1 ORDER BY p.at, p.receipt",
    )?;
    let rows = st
        .query_map([household], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows.into_iter().filter(|(_, left)| *left > 0).collect())
}

/// A household's credit: payments not allocated, less refunds paid out.
pub(crate) fn credit(conn: &Connection, household: &str) -> StoreResult<i64> {
    let unalloc: i64 = unallocated(conn, household)?.iter().map(|(_, a)| a).sum();
    let refunds: i64 = conn.query_row(
        "SELECT coalesce(sum(amount_fen), 0) FROM adjustments WHERE household = ?1 AND kind = 'refund'",
        [household],
        |r| r.get(0),
    )?;
    Ok(unalloc - refunds)
}

/// Applies a household's credit to its open bills, oldest first; returns the
/// fen applied.
fn apply_credit(tx: &Transaction<'_>, household: &str, at: &str) -> StoreResult<i64> {
    let mut available = credit(tx, household)?;
    if available <= 0 {
        return Ok(0);
    }
    let mut applied = 0;
    // Refunds came out of the newest money: spend the oldest receipts first,
    // never more than the credit left after refunds.
    for (receipt, left) in unallocated(tx, household)? {
        let take = left.min(available);
        if take <= 0 {
            break;
        }
        let still_open: Vec<(String, i64)> = open_bills(tx, household)?;
        let (parts, rest) = allocate(&still_open, take);
        for (bill, amount) in &parts {
            tx.execute(
                "INSERT INTO allocations(receipt, bill, amount_fen, at) VALUES (?1, ?2, ?3, ?4)",
                params![receipt, bill, amount, at],
            )?;
        }
        applied += take - rest;
        available -= take - rest;
        if rest > 0 {
            break;
        }
    }
    Ok(applied)
}

/// A recorded payment: its receipt and where the money went.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Receipt {
    pub(crate) receipt: String,
    pub(crate) household: String,
    pub(crate) amount_fen: i64,
    pub(crate) method: Method,
    pub(crate) allocations: Vec<(String, i64)>,
    /// What the household holds as credit after this payment.
    pub(crate) credit_fen: i64,
    /// The payment had been recorded already (same request id).
    pub(crate) repeated: bool,
}

/// Records a payment with the next receipt number and allocates it to the
/// bills chosen (in that order), or to the oldest open bills; what is left
/// is credit. A repeated `request_id` returns the first payment unchanged.
#[allow(clippy::too_many_arguments, reason = "one ledger entry's fields")]
pub(crate) fn record_payment(
    tx: &Transaction<'_>,
    household: DocId,
    amount: i64,
    method: Method,
    chosen: Option<&[String]>,
    request_id: Option<&str>,
    cashier: &str,
    now: DateTime<Utc>,
    tz: Tz,
) -> StoreResult<Receipt> {
    let h = household.to_string();
    if let Some(rid) = request_id {
        let prior: Option<String> = tx
            .query_row(
                "SELECT receipt FROM payments WHERE request_id = ?1",
                [rid],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(receipt) = prior {
            let (amount_fen, ph): (i64, String) = tx.query_row(
                "SELECT amount_fen, household FROM payments WHERE receipt = ?1",
                [&receipt],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let mut st = tx.prepare(
                "SELECT bill, amount_fen FROM allocations WHERE receipt = ?1 ORDER BY rowid",
            )?;
            let allocations = st
                .query_map([&receipt], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(Receipt {
                receipt,
                credit_fen: credit(tx, &ph)?,
                household: ph,
                amount_fen,
                method,
                allocations,
                repeated: true,
            });
        }
    }
    if amount <= 0 {
        return Err(conflict("a payment must be a positive amount of fen"));
    }
    require_household(tx, household)?;
    let open = open_bills(tx, &h)?;
    let targets: Vec<(String, i64)> = match chosen {
        None => open,
        Some(numbers) => {
            let mut t = Vec::new();
            for n in numbers {
                match open.iter().find(|(b, _)| b == n) {
                    Some(b) => t.push(b.clone()),
                    None => {
                        return Err(conflict(format!(
                            "bill {n} is not an open bill of this household"
                        )));
                    }
                }
            }
            t
        }
    };
    let receipt = next_number(tx, "RC", crate::settings::year_of(now, tz))?;
    let at = rfc3339(now);
    tx.execute(
        "INSERT INTO payments(receipt, household, amount_fen, method, request_id, cashier, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![receipt, h, amount, method.as_str(), request_id, cashier, at],
    )?;
    // Earlier credit first (it is older money), then this payment.
    apply_credit_to(tx, &h, &targets, &at)?;
    let (parts, _) = allocate(&open_left(tx, &targets)?, amount);
    for (bill, a) in &parts {
        tx.execute(
            "INSERT INTO allocations(receipt, bill, amount_fen, at) VALUES (?1, ?2, ?3, ?4)",
            params![receipt, bill, a, at],
        )?;
    }
    Ok(Receipt {
        receipt,
        credit_fen: credit(tx, &h)?,
        household: h,
        amount_fen: amount,
        method,
        allocations: parts,
        repeated: false,
    })
}

/// What the given bills still ask for now.
fn open_left(conn: &Connection, targets: &[(String, i64)]) -> StoreResult<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for (bill, _) in targets {
        let due: i64 = conn.query_row(
            "SELECT b.amount_fen
               - coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.bill = b.number), 0)
               - coalesce((SELECT sum(amount_fen) FROM adjustments d WHERE d.bill = b.number), 0)
             FROM bills b WHERE b.number = ?1",
            [bill],
            |r| r.get(0),
        )?;
        out.push((bill.clone(), due));
    }
    Ok(out)
}

/// Earlier credit (receipts before the newest one) applied to `targets`.
fn apply_credit_to(
    tx: &Transaction<'_>,
    household: &str,
    targets: &[(String, i64)],
    at: &str,
) -> StoreResult<()> {
    let mut available = credit(tx, household)?;
    // The newest receipt is the payment being recorded: not earlier credit.
    let mut receipts = unallocated(tx, household)?;
    if let Some((_, newest)) = receipts.pop() {
        available -= newest;
    }
    for (receipt, left) in receipts {
        let take = left.min(available);
        if take <= 0 {
            break;
        }
        let (parts, rest) = allocate(&open_left(tx, targets)?, take);
        for (bill, a) in &parts {
            tx.execute(
                "INSERT INTO allocations(receipt, bill, amount_fen, at) VALUES (?1, ?2, ?3, ?4)",
                params![receipt, bill, a, at],
            )?;
        }
        available -= take - rest;
        if rest > 0 {
            break;
        }
    }
    Ok(())
}

/// A reversing entry.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AdjustmentKind {
    /// Pays credit back out to the household.
    Refund,
    /// Reduces what a bill asks for (a waiver, a billing error).
    Adjustment,
}

/// Records a refund (out of the household's credit) or an adjustment (of
/// one open bill), approved by `manager`; numbered in series `AD`.
#[allow(clippy::too_many_arguments, reason = "one ledger entry's fields")]
pub(crate) fn adjust(
    tx: &Transaction<'_>,
    household: DocId,
    kind: AdjustmentKind,
    bill: Option<&str>,
    amount: i64,
    reason: &str,
    manager: &str,
    now: DateTime<Utc>,
    tz: Tz,
) -> StoreResult<String> {
    let h = household.to_string();
    if amount <= 0 {
        return Err(conflict("the amount must be a positive amount of fen"));
    }
    if reason.trim().is_empty() {
        return Err(conflict("a reversing entry needs a reason"));
    }
    require_household(tx, household)?;
    match kind {
        AdjustmentKind::Refund => {
            let c = credit(tx, &h)?;
            if amount > c {
                return Err(conflict(format!(
                    "the household holds {} fen of credit; a refund cannot exceed it",
                    c
                )));
            }
        }
        AdjustmentKind::Adjustment => {
            let Some(b) = bill else {
                return Err(conflict("an adjustment names the bill it reduces"));
            };
            let due = open_bills(tx, &h)?
                .into_iter()
                .find(|(n, _)| n == b)
                .map_or(0, |(_, d)| d);
            if amount > due {
                return Err(conflict(format!(
                    "bill {b} asks for {due} fen; an adjustment cannot exceed it"
                )));
            }
        }
    }
    let number = next_number(tx, "AD", crate::settings::year_of(now, tz))?;
    let kind_s = match kind {
        AdjustmentKind::Refund => "refund",
        AdjustmentKind::Adjustment => "adjustment",
    };
    tx.execute(
        "INSERT INTO adjustments(number, household, kind, bill, amount_fen, reason, approved_by, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![number, h, kind_s, bill, amount, reason.trim(), manager, rfc3339(now)],
    )?;
    Ok(number)
}

/// Records an arrears reminder (催缴) on the household's file.
pub(crate) fn remind(
    tx: &Transaction<'_>,
    household: DocId,
    channel: &str,
    result: &str,
    by: &str,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    require_household(tx, household)?;
    if !["phone", "sms", "wechat", "notice", "visit"].contains(&channel) {
        return Err(conflict(format!(
            "{channel:?} is not a channel (phone, sms, wechat, notice, visit)"
        )));
    }
    if result.trim().is_empty() {
        return Err(conflict("a reminder records its result"));
    }
    tx.execute(
        "INSERT INTO reminders(household, channel, result, by, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            household.to_string(),
            channel,
            result.trim(),
            by,
            rfc3339(now)
        ],
    )?;
    Ok(tx.last_insert_rowid())
}

/// What a household owes, open bill by open bill: (item, period, fen).
pub(crate) fn arrears_summary(
    conn: &Connection,
    household: DocId,
) -> StoreResult<Vec<(String, String, i64)>> {
    let open = open_bills(conn, &household.to_string())?;
    let mut out = Vec::new();
    for (bill, due) in open {
        let (item, period): (String, String) = conn.query_row(
            "SELECT item, period FROM bills WHERE number = ?1",
            [&bill],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        out.push((item, period, due));
    }
    Ok(out)
}

/// A time after every stored one: a statement "as of" it is the statement now.
const END_OF_TIME: &str = "9999-12-31T23:59:59Z";

/// A household's statement now: its bills with what is still open, its
/// payments, adjustments and reminders, its arrears and credit.
pub(crate) fn statement(conn: &Connection, household: DocId) -> StoreResult<serde_json::Value> {
    statement_at(conn, household, END_OF_TIME)
}

/// A household's statement as the ledger stood at `cut` (an RFC 3339 time
/// as the ledger writes them): only what was recorded by then, each bill's
/// open amount after the allocations and adjustments made by then, the
/// credit likewise.
pub(crate) fn statement_at(
    conn: &Connection,
    household: DocId,
    cut: &str,
) -> StoreResult<serde_json::Value> {
    let h = household.to_string();
    let mut st = conn.prepare(
        "SELECT b.number, b.item, b.period, b.amount_fen, b.note, b.created_at,
           b.amount_fen
           - coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.bill = b.number AND a.at <= ?2), 0)
           - coalesce((SELECT sum(amount_fen) FROM adjustments d WHERE d.bill = b.number AND d.at <= ?2), 0)
         FROM bills b WHERE b.household = ?1 AND b.created_at <= ?2 ORDER BY b.period, b.number",
    )?;
    let bills = st
        .query_map(params![h, cut], |r| {
            let due = r.get::<_, i64>(6)?.max(0);
            Ok((
                serde_json::json!({"number": r.get::<_, String>(0)?, "item": r.get::<_, String>(1)?,
                    "period": r.get::<_, String>(2)?, "amount_fen": r.get::<_, i64>(3)?,
                    "outstanding_fen": due, "note": r.get::<_, String>(4)?,
                    "created_at": r.get::<_, String>(5)?}),
                due,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let arrears: i64 = bills.iter().map(|(_, due)| due).sum();
    let bills: Vec<serde_json::Value> = bills.into_iter().map(|(b, _)| b).collect();
    let mut st = conn.prepare(
        "SELECT receipt, amount_fen, method, cashier, at FROM payments WHERE household = ?1 AND at <= ?2 ORDER BY at, receipt",
    )?;
    let payments = st
        .query_map(params![h, cut], |r| {
            Ok(serde_json::json!({"receipt": r.get::<_, String>(0)?, "amount_fen": r.get::<_, i64>(1)?,
                "method": r.get::<_, String>(2)?, "cashier": r.get::<_, String>(3)?, "at": r.get::<_, String>(4)?}))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut st = conn.prepare(
        "SELECT number, kind, bill, amount_fen, reason, approved_by, at FROM adjustments WHERE household = ?1 AND at <= ?2 ORDER BY at, number",
    )?;
    let adjustments = st
        .query_map(params![h, cut], |r| {
            Ok(serde_json::json!({"number": r.get::<_, String>(0)?, "kind": r.get::<_, String>(1)?,
                "bill": r.get::<_, Option<String>>(2)?, "amount_fen": r.get::<_, i64>(3)?,
                "reason": r.get::<_, String>(4)?, "approved_by": r.get::<_, String>(5)?, "at": r.get::<_, String>(6)?}))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut st = conn.prepare(
        "SELECT channel, result, by, at FROM reminders WHERE household = ?1 AND at <= ?2 ORDER BY at, id",
    )?;
    let reminders = st
        .query_map(params![h, cut], |r| {
            Ok(serde_json::json!({"channel": r.get::<_, String>(0)?, "result": r.get::<_, String>(1)?,
                "by": r.get::<_, String>(2)?, "at": r.get::<_, String>(3)?}))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(serde_json::json!({
        "household": h,
        "arrears_fen": arrears,
        "in_arrears": arrears > 0,
        "credit_fen": credit_at(conn, &h, cut)?,
        "bills": bills, "payments": payments, "adjustments": adjustments, "reminders": reminders,
    }))
}

/// A household's credit at `cut`: what its payments by then had not been
/// allocated by then, less the refunds paid out by then.
fn credit_at(conn: &Connection, household: &str, cut: &str) -> StoreResult<i64> {
    Ok(conn.query_row(
        "SELECT coalesce((SELECT sum(p.amount_fen - coalesce((SELECT sum(a.amount_fen) FROM allocations a
                   WHERE a.receipt = p.receipt AND a.at <= ?2), 0))
                 FROM payments p WHERE p.household = ?1 AND p.at <= ?2), 0)
              - coalesce((SELECT sum(amount_fen) FROM adjustments
                 WHERE household = ?1 AND kind = 'refund' AND at <= ?2), 0)",
        params![household, cut],
        |r| r.get(0),
    )?)
}

/// Whether a household owed anything at `cut` (what the front desk may see).
pub(crate) fn in_arrears_at(conn: &Connection, household: DocId, cut: &str) -> StoreResult<bool> {
    let owed: i64 = conn.query_row(
        "SELECT coalesce(sum(max(0, b.amount_fen
           - coalesce((SELECT sum(amount_fen) FROM allocations a WHERE a.bill = b.number AND a.at <= ?2), 0)
           - coalesce((SELECT sum(amount_fen) FROM adjustments d WHERE d.bill = b.number AND d.at <= ?2), 0))), 0)
         FROM bills b WHERE b.household = ?1 AND b.created_at <= ?2",
        params![household.to_string(), cut],
        |r| r.get(0),
    )?;
    Ok(owed > 0)
}

/// Whether a household owes anything (what the front desk may see).
pub(crate) fn in_arrears(conn: &Connection, household: DocId) -> StoreResult<bool> {
    in_arrears_at(conn, household, END_OF_TIME)
}

#[cfg(test)]
mod tests;
