//! The rows of the relay's edges (`migrations/002_edges.sql`): coalesced
//! security-log rows, dashboard sessions, which tickets reference which blob,
//! who uploaded a blob, and each device's upload volume per day. Writes take
//! `&Transaction`, reads take `&Connection`.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use schema::DocId;
use schema::doc::rfc3339;

use super::StoreResult;

// ------------------------------------------------------------ security log

/// Like refusals coalesced into one security-log row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Coalesced {
    pub(crate) at: DateTime<Utc>,
    pub(crate) last_at: DateTime<Utc>,
    pub(crate) count: u64,
    pub(crate) user: Option<String>,
    pub(crate) device: Option<String>,
    pub(crate) peer: Option<String>,
    pub(crate) kind: String,
    pub(crate) detail: String,
}

/// Writes coalesced security-log rows (one transaction for a whole batch).
pub(crate) fn log_coalesced(tx: &Transaction<'_>, rows: &[Coalesced]) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(
        "INSERT INTO security_log(at, last_at, count, username, device_id, peer, kind, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for r in rows {
        stmt.execute(params![
            rfc3339(r.at),
            (r.count > 1).then(|| rfc3339(r.last_at)),
            i64::try_from(r.count).unwrap_or(i64::MAX),
            r.user,
            r.device,
            r.peer,
            r.kind,
            r.detail
        ])?;
    }
    Ok(())
}

// ------------------------------------------------------------ web sessions

/// A dashboard session's row.
#[derive(Clone, Debug)]
pub(crate) struct WebSession {
    pub(crate) username: String,
    pub(crate) csrf: String,
    pub(crate) revoked: bool,
}

/// Opens a dashboard session.
pub(crate) fn insert_web_session(
    tx: &Transaction<'_>,
    id: &str,
    username: &str,
    csrf: &str,
    at: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO web_sessions(id, username, csrf, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, username, csrf, rfc3339(at), rfc3339(expires)],
    )?;
    Ok(())
}

/// A dashboard session by its id.
pub(crate) fn web_session(conn: &Connection, id: &str) -> StoreResult<Option<WebSession>> {
    Ok(conn
        .query_row(
            "SELECT username, csrf, revoked_at IS NOT NULL FROM web_sessions WHERE id = ?1",
            [id],
            |r| {
                Ok(WebSession {
                    username: r.get(0)?,
                    csrf: r.get(1)?,
                    revoked: r.get(2)?,
                })
            },
        )
        .optional()?)
}

/// Ends a dashboard session (logout); true if it was open.
pub(crate) fn revoke_web_session(
    tx: &Transaction<'_>,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(tx.execute(
        "UPDATE web_sessions SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
        params![id, rfc3339(at)],
    )? > 0)
}

/// Forgets sessions that expired before `before` (they can no longer be used).
pub(crate) fn drop_expired_sessions(
    tx: &Transaction<'_>,
    before: DateTime<Utc>,
) -> StoreResult<usize> {
    Ok(tx.execute(
        "DELETE FROM web_sessions WHERE expires_at < ?1",
        [rfc3339(before)],
    )?)
}

// ------------------------------------------------------------ blob references

/// Records that `doc` references each of `blobs` (references are never removed:
/// the lists they come from are append-only).
pub(crate) fn add_blob_refs(tx: &Transaction<'_>, doc: DocId, blobs: &[String]) -> StoreResult<()> {
    if blobs.is_empty() {
        return Ok(());
    }
    let mut stmt =
        tx.prepare_cached("INSERT OR IGNORE INTO blob_refs(sha256, doc_id) VALUES (?1, ?2)")?;
    let id = doc.to_string();
    for b in blobs {
        stmt.execute(params![b, id])?;
    }
    Ok(())
}

/// The documents that reference a blob.
pub(crate) fn blob_refs(conn: &Connection, sha: &str) -> StoreResult<Vec<DocId>> {
    let mut stmt = conn.prepare_cached("SELECT doc_id FROM blob_refs WHERE sha256 = ?1")?;
    let rows = stmt.query_map([sha], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for id in rows {
        if let Ok(id) = id?.parse() {
            out.push(id);
        }
    }
    Ok(out)
}

/// Whether `user` sent a blob's whole bytes.
pub(crate) fn is_uploader(conn: &Connection, sha: &str, user: &str) -> StoreResult<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM blob_uploaders WHERE sha256 = ?1 AND username = ?2",
            [sha, user],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Records that `user` sent a blob's whole bytes.
pub(crate) fn add_uploader(tx: &Transaction<'_>, sha: &str, user: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO blob_uploaders(sha256, username) VALUES (?1, ?2)",
        [sha, user],
    )?;
    Ok(())
}

/// Bytes `device` sent to the blob store on `day` (`YYYY-MM-DD`, UTC).
pub(crate) fn blob_usage(conn: &Connection, device: &str, day: &str) -> StoreResult<u64> {
    let n: Option<i64> = conn
        .query_row(
            "SELECT bytes FROM blob_usage WHERE device_id = ?1 AND day = ?2",
            [device, day],
            |r| r.get(0),
        )
        .optional()?;
    Ok(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0))
}

/// Adds `bytes` to `device`'s volume on `day`.
pub(crate) fn add_blob_usage(
    tx: &Transaction<'_>,
    device: &str,
    day: &str,
    bytes: u64,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO blob_usage(device_id, day, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT(device_id, day) DO UPDATE SET bytes = bytes + excluded.bytes",
        params![device, day, i64::try_from(bytes).unwrap_or(i64::MAX)],
    )?;
    Ok(())
}
