//! The reports' read model (`ticket_models`): each ticket as committed,
//! written in the commit that changes it, and the number ledger the serial
//! register's continuity check reads. Reports read these, never documents.

use std::time::Instant;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};
use schema::doc::rfc3339;
use schema::{DocId, Policy, Projection, Ticket};

use super::{StoreResult, parse, time};
use crate::store::StoreError;

/// The latest moment anything in the ticket happened: its report, its
/// receipt, an event made (device time) or judged (relay time).
///
/// A report for the period `[from, as_of]` needs a ticket only when it is
/// still open or was touched at or after `from`: a ticket that was terminal
/// and untouched before the period looks the same at every cut-off in it,
/// and every report counts it by something that happened in the period
/// or by being open (the equivalence is tested on every report in
/// `reports::tests`).
pub(crate) fn touched_at(t: &Ticket) -> DateTime<Utc> {
    let mut at = t.header.reported.at;
    at = at.max(t.server.received_at.unwrap_or(at));
    for e in &t.events {
        at = at.max(e.at);
    }
    for v in t.server.verdicts.values() {
        at = at.max(v.at);
    }
    at
}

/// Whether a report for a period starting at `from` needs the ticket
/// (`open`: not in a terminal state now); [`for_period`]'s query is this.
#[cfg(test)]
pub(crate) fn relevant(open: bool, touched: DateTime<Utc>, from: DateTime<Utc>) -> bool {
    open || touched >= from
}

/// Writes the committed ticket's read model.
pub(crate) fn upsert(tx: &Transaction<'_>, doc: DocId, t: &Ticket, open: bool) -> StoreResult<()> {
    let body = serde_json::to_string(t)
        .map_err(|e| StoreError::Corrupt(format!("a ticket's read model: {e}")))?;
    tx.execute(
        "INSERT INTO ticket_models(doc_id, open, touched_at, body) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(doc_id) DO UPDATE SET open = excluded.open, touched_at = excluded.touched_at,
            body = excluded.body",
        params![doc.to_string(), open, rfc3339(touched_at(t)), body],
    )?;
    Ok(())
}

/// The tickets a report for a period starting at `from` needs (see
/// [`relevant`]), as committed.
///
/// # Errors
/// Storage errors; a body that does not read is [`StoreError::Corrupt`].
pub(crate) fn for_period(
    conn: &Connection,
    from: DateTime<Utc>,
) -> StoreResult<Vec<(DocId, Ticket)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT doc_id, body FROM ticket_models WHERE open = 1
         UNION ALL
         SELECT doc_id, body FROM ticket_models WHERE open = 0 AND touched_at >= ?1",
    )?;
    let mut rows = stmt.query([rfc3339(from)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let body = r.get_ref(1)?.as_bytes().map_err(rusqlite::Error::from)?;
        let ticket: Ticket = serde_json::from_slice(body)
            .map_err(|e| StoreError::Corrupt(format!("the read model of {id}: {e}")))?;
        out.push((parse::<DocId>(&id, "doc id")?, ticket));
    }
    // The register's order (newest received first), whatever the query's.
    out.sort_by(|(a, x), (b, y)| {
        let received = |t: &Ticket| t.server.received_at.unwrap_or(t.header.reported.at);
        received(y)
            .cmp(&received(x))
            .then_with(|| a.to_string().cmp(&b.to_string()))
    });
    Ok(out)
}

/// One numbered ticket as the register holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Numbered {
    pub(crate) serial: schema::Serial,
    pub(crate) doc: DocId,
    /// When the relay received the ticket.
    pub(crate) received: DateTime<Utc>,
}

/// Every numbered ticket the relay had received by `as_of` (for the serial
/// register's continuity check, which spans every year, not a period).
///
/// # Errors
/// Storage errors.
pub(crate) fn numbered(conn: &Connection, as_of: DateTime<Utc>) -> StoreResult<Vec<Numbered>> {
    let mut stmt = conn.prepare_cached(
        "SELECT serial, doc_id, received_at FROM tickets
         WHERE serial IS NOT NULL AND received_at <= ?1",
    )?;
    let mut rows = stmt.query([rfc3339(as_of)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Numbered {
            serial: parse(&r.get::<_, String>(0)?, "serial")?,
            doc: parse(&r.get::<_, String>(1)?, "doc id")?,
            received: time(r.get(2)?)?,
        });
    }
    Ok(out)
}

/// Writes the read model of every ticket stored before there was one (a
/// relay upgraded from an older version), in transactions of 500, logging
/// progress every few seconds. Returns how many it wrote.
///
/// # Errors
/// Storage errors; a document that does not read as a ticket is logged and
/// left without a model (the reports leave it out, as they always did).
pub(crate) fn backfill(conn: &mut Connection) -> StoreResult<usize> {
    let missing: Vec<DocId> = {
        let mut stmt = conn.prepare(
            "SELECT t.doc_id FROM tickets t LEFT JOIN ticket_models m ON m.doc_id = t.doc_id
             WHERE m.doc_id IS NULL",
        )?;
        let ids: Vec<String> = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.iter()
            .map(|s| parse(s, "doc id"))
            .collect::<StoreResult<_>>()?
    };
    if missing.is_empty() {
        return Ok(0);
    }
    tracing::warn!(
        tickets = missing.len(),
        "writing the reports' read model of every stored ticket"
    );
    let policy = Policy::default();
    let started = Instant::now();
    let mut said = Instant::now();
    let mut written = 0;
    for chunk in missing.chunks(500) {
        let tx = conn.transaction()?;
        for &id in chunk {
            let Some(stored) = super::load_document(&tx, id)? else {
                continue;
            };
            let ticket = stored
                .assemble()
                .map_err(|e| e.to_string())
                .and_then(|doc| schema::doc::read_ticket(&doc, None).map_err(|e| e.to_string()));
            match ticket {
                Ok(t) => {
                    let open = !Projection::official(&t, &policy).status.is_terminal();
                    upsert(&tx, id, &t, open)?;
                    written += 1;
                }
                Err(e) => tracing::warn!(%id, error = %e, "a ticket left out of the reports"),
            }
        }
        tx.commit()?;
        if said.elapsed().as_secs() >= 5 {
            said = Instant::now();
            tracing::warn!(
                done = written,
                of = missing.len(),
                "writing the reports' read model"
            );
        }
    }
    tracing::warn!(
        tickets = written,
        secs = started.elapsed().as_secs_f64(),
        "the reports' read model is written"
    );
    Ok(written)
}
