//! The device's own sync log (`sql/0002_sync_log.sql`).

use rusqlite::{Connection, Transaction, params};

use super::StoreError;

/// One sync, as the device's own log shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct SyncLogRow {
    /// Row id.
    pub id: i64,
    /// When it started (device time, RFC 3339).
    pub started: String,
    /// When it ended.
    pub ended: String,
    /// Whether it finished.
    pub ok: bool,
    /// What it did (a `SyncSummary` as JSON).
    pub summary: serde_json::Value,
    /// Why it failed.
    pub error: Option<String>,
}

/// Records one sync; keeps the newest 500.
pub(crate) fn sync_log_add(
    tx: &Transaction<'_>,
    started: &str,
    ended: &str,
    ok: bool,
    summary: &str,
    error: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sync_log (started, ended, ok, summary, error) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![started, ended, i64::from(ok), summary, error],
    )?;
    tx.execute(
        "DELETE FROM sync_log WHERE id <= (SELECT MAX(id) FROM sync_log) - 500",
        [],
    )?;
    Ok(())
}

/// The newest `limit` syncs, newest first.
pub(crate) fn sync_log(conn: &Connection, limit: u32) -> Result<Vec<SyncLogRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, started, ended, ok, summary, error FROM sync_log ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        let summary: String = r.get(4)?;
        Ok(SyncLogRow {
            id: r.get(0)?,
            started: r.get(1)?,
            ended: r.get(2)?,
            ok: r.get::<_, i64>(3)? != 0,
            summary: serde_json::from_str(&summary).unwrap_or(serde_json::Value::Null),
            error: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
