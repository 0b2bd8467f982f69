//! The inbox mirror (what each inbox document lists) and the inbox outbox
//! (tickets whose inboxes are still to be brought up to date).

use rusqlite::{Connection, Transaction, params};
use schema::{DocId, UserId};

use super::{StoreResult, parse};

/// Sets what `user`'s inbox lists for each document: `true` listed, `false` not.
pub(crate) fn set_entries(
    tx: &Transaction<'_>,
    user: &UserId,
    entries: &[(DocId, bool)],
) -> StoreResult<()> {
    for (doc, listed) in entries {
        if *listed {
            tx.execute(
                "INSERT OR IGNORE INTO inbox_entries(username, doc_id) VALUES (?1, ?2)",
                params![user.as_str(), doc.to_string()],
            )?;
        } else {
            tx.execute(
                "DELETE FROM inbox_entries WHERE username = ?1 AND doc_id = ?2",
                params![user.as_str(), doc.to_string()],
            )?;
        }
    }
    Ok(())
}

/// Whose inboxes list `doc`.
pub(crate) fn listed_by(conn: &Connection, doc: DocId) -> StoreResult<Vec<UserId>> {
    let mut st = conn.prepare_cached("SELECT username FROM inbox_entries WHERE doc_id = ?1")?;
    let names: Vec<String> = st
        .query_map([doc.to_string()], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    names.iter().map(|n| parse(n, "user")).collect()
}

/// Every (user, document) pair the inboxes list.
pub(crate) fn all_entries(conn: &Connection) -> StoreResult<Vec<(UserId, DocId)>> {
    let mut st = conn.prepare("SELECT username, doc_id FROM inbox_entries")?;
    let rows: Vec<(String, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.iter()
        .map(|(u, d)| Ok((parse(u, "user")?, parse(d, "document id")?)))
        .collect()
}

/// Queues `doc`'s inboxes to be brought up to date.
pub(crate) fn queue(tx: &Transaction<'_>, doc: DocId) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO inbox_outbox(doc_id) VALUES (?1)",
        [doc.to_string()],
    )?;
    Ok(())
}

/// Every queued document, with the newest queue entry's id.
pub(crate) fn queued(conn: &Connection) -> StoreResult<Vec<(DocId, i64)>> {
    let mut st =
        conn.prepare("SELECT doc_id, MAX(id) FROM inbox_outbox GROUP BY doc_id ORDER BY MIN(id)")?;
    let rows: Vec<(String, i64)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    rows.iter()
        .map(|(d, id)| Ok((parse(d, "document id")?, *id)))
        .collect()
}

/// The newest queue entry's id for `doc`, if it is queued.
pub(crate) fn queued_upto(conn: &Connection, doc: DocId) -> StoreResult<Option<i64>> {
    Ok(conn.query_row(
        "SELECT MAX(id) FROM inbox_outbox WHERE doc_id = ?1",
        [doc.to_string()],
        |r| r.get(0),
    )?)
}

/// Removes `doc`'s queue entries up to `upto` (later ones were queued by a
/// newer commit and still count).
pub(crate) fn done(tx: &Transaction<'_>, doc: DocId, upto: i64) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM inbox_outbox WHERE doc_id = ?1 AND id <= ?2",
        params![doc.to_string(), upto],
    )?;
    Ok(())
}
