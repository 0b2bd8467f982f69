// Long file: every SQL statement of the relay, until the storage interface is split by aggregate.
//! The rows of the relay's tables and the SQL that reads and writes them.
//! Writes take `&Transaction`, reads take `&Connection`.

use chrono::{DateTime, Utc};
use relay_core::ledger::{ChangeEntry, Resolution, ReviewEntry, VerdictEntry};
use relay_core::{Grant, Register};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use schema::doc::rfc3339;
use schema::{DeviceId, DocId, EventId, Role, Series, UserId};
use serde::Serialize;

use super::{StoreError, StoreResult};

pub(crate) mod inboxes;
pub(crate) mod models;

fn time(s: String) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("bad time {s:?}")))
}

fn opt_time(s: Option<String>) -> StoreResult<Option<DateTime<Utc>>> {
    s.map(time).transpose()
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> StoreResult<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what} {s:?}")))
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn ucount(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// A column parsed with `FromStr`, as a rusqlite conversion error if it does not parse.
fn col<T: std::str::FromStr>(r: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let s: String = r.get(i)?;
    s.parse().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("bad value {s:?}").into(),
        )
    })
}

/// An RFC 3339 time column.
fn col_time(r: &Row<'_>, i: usize) -> rusqlite::Result<DateTime<Utc>> {
    col::<DateTime<chrono::FixedOffset>>(r, i).map(|t| t.with_timezone(&Utc))
}

/// An optional RFC 3339 time column.
fn col_opt_time(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    match r.get::<_, Option<String>>(i)? {
        None => Ok(None),
        Some(_) => col_time(r, i).map(Some),
    }
}

// ------------------------------------------------------------ meta and keys

/// A value from the `meta` table.
pub(crate) fn meta(conn: &Connection, key: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Sets a value in the `meta` table.
pub(crate) fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

/// A JWT signing key.
#[derive(Clone)]
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pub(crate) secret: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Adds a signing key; it becomes the one that signs.
pub(crate) fn insert_key(
    tx: &Transaction<'_>,
    key: &SigningKey,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO signing_keys(kid, secret, created_at) VALUES (?1, ?2, ?3)",
        params![key.kid, key.secret, rfc3339(at)],
    )?;
    Ok(())
}

/// Retires every key but `keep`: tokens signed with them stop working.
pub(crate) fn retire_keys_except(
    tx: &Transaction<'_>,
    keep: &str,
    at: DateTime<Utc>,
) -> StoreResult<usize> {
    Ok(tx.execute(
        "UPDATE signing_keys SET retired_at = ?2 WHERE kid <> ?1 AND retired_at IS NULL",
        params![keep, rfc3339(at)],
    )?)
}

/// The unretired keys, newest first.
pub(crate) fn active_keys(conn: &Connection) -> StoreResult<Vec<SigningKey>> {
    let mut stmt = conn.prepare(
        "SELECT kid, secret FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, rowid DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(SigningKey {
            kid: r.get(0)?,
            secret: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------ users, devices, actors

/// A staff member.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct User {
    pub(crate) username: UserId,
    pub(crate) display_name: String,
    pub(crate) role: Role,
    pub(crate) department: schema::Department,
    pub(crate) inbox_doc: DocId,
    pub(crate) disabled: bool,
}

type UserRaw = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
);

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRaw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn to_user(row: UserRaw) -> StoreResult<(User, String)> {
    let (username, display_name, role, department, inbox, disabled, hash) = row;
    Ok((
        User {
            username: parse(&username, "user")?,
            display_name,
            role: parse(&role, "role")?,
            department: parse(&department, "department")?,
            inbox_doc: parse(&inbox, "inbox id")?,
            disabled: disabled.is_some(),
        },
        hash,
    ))
}

const USER_COLS: &str =
    "username, display_name, role, department, inbox_doc, disabled_at, password_hash";

/// Adds a user.
pub(crate) fn insert_user(
    tx: &Transaction<'_>,
    u: &User,
    password_hash: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO users(username, display_name, password_hash, role, department, inbox_doc, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            u.username.as_str(),
            u.display_name,
            password_hash,
            u.role.as_str(),
            u.department.as_str(),
            u.inbox_doc.to_string(),
            rfc3339(at)
        ],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "user {} already exists",
            u.username
        )));
    }
    Ok(())
}

/// A user and their password hash.
pub(crate) fn user(conn: &Connection, name: &str) -> StoreResult<Option<(User, String)>> {
    conn.query_row(
        &format!("SELECT {USER_COLS} FROM users WHERE username = ?1"),
        [name],
        user_row,
    )
    .optional()?
    .map(to_user)
    .transpose()
}

/// Every user.
pub(crate) fn users(conn: &Connection) -> StoreResult<Vec<User>> {
    let mut stmt = conn.prepare(&format!("SELECT {USER_COLS} FROM users ORDER BY username"))?;
    let rows: Vec<_> = stmt.query_map([], user_row)?.collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|r| to_user(r).map(|(u, _)| u))
        .collect()
}

/// Changes a user's role (the change takes effect on the next check).
pub(crate) fn set_role(
    tx: &Transaction<'_>,
    name: &str,
    role: Role,
    dept: schema::Department,
) -> StoreResult<bool> {
    Ok(tx.execute(
        "UPDATE users SET role = ?2, department = ?3 WHERE username = ?1",
        params![name, role.as_str(), dept.as_str()],
    )? == 1)
}

/// An enrolled device.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Device {
    pub(crate) device_id: DeviceId,
    pub(crate) username: UserId,
    pub(crate) label: String,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) revoked_at: Option<DateTime<Utc>>,
    pub(crate) last_seen_at: Option<DateTime<Utc>>,
}

type DeviceRaw = (
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn device_row(r: &Row<'_>) -> rusqlite::Result<DeviceRaw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn to_device(row: DeviceRaw) -> StoreResult<Device> {
    let (id, user, label, created, revoked, seen) = row;
    Ok(Device {
        device_id: parse(&id, "device")?,
        username: parse(&user, "user")?,
        label,
        created_at: time(created)?,
        revoked_at: opt_time(revoked)?,
        last_seen_at: opt_time(seen)?,
    })
}

const DEVICE_COLS: &str = "device_id, username, label, created_at, revoked_at, last_seen_at";

/// Enrolls a device.
pub(crate) fn insert_device(tx: &Transaction<'_>, d: &Device) -> StoreResult<()> {
    let n = tx.execute(
        "INSERT OR IGNORE INTO devices(device_id, username, label, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![d.device_id.as_str(), d.username.as_str(), d.label, rfc3339(d.created_at)],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!(
            "device {} already exists",
            d.device_id
        )));
    }
    Ok(())
}

/// One device.
pub(crate) fn device(conn: &Connection, id: &str) -> StoreResult<Option<Device>> {
    conn.query_row(
        &format!("SELECT {DEVICE_COLS} FROM devices WHERE device_id = ?1"),
        [id],
        device_row,
    )
    .optional()?
    .map(to_device)
    .transpose()
}

/// Every device.
pub(crate) fn devices(conn: &Connection) -> StoreResult<Vec<Device>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {DEVICE_COLS} FROM devices ORDER BY device_id"
    ))?;
    let rows: Vec<_> = stmt.query_map([], device_row)?.collect::<Result<_, _>>()?;
    rows.into_iter().map(to_device).collect()
}

/// Revokes a device; true if it was active.
pub(crate) fn revoke_device(
    tx: &Transaction<'_>,
    id: &str,
    at: DateTime<Utc>,
) -> StoreResult<bool> {
    Ok(tx.execute(
        "UPDATE devices SET revoked_at = ?2 WHERE device_id = ?1 AND revoked_at IS NULL",
        params![id, rfc3339(at)],
    )? == 1)
}

/// Notes that a device was seen.
pub(crate) fn touch_device(tx: &Transaction<'_>, id: &str, at: DateTime<Utc>) -> StoreResult<()> {
    tx.execute(
        "UPDATE devices SET last_seen_at = ?2 WHERE device_id = ?1",
        params![id, rfc3339(at)],
    )?;
    Ok(())
}

/// Who an actor is bound to: (device, user).
pub(crate) fn actor_binding(
    conn: &Connection,
    actor: &str,
) -> StoreResult<Option<(DeviceId, UserId)>> {
    conn.query_row(
        "SELECT device_id, username FROM actors WHERE actor = ?1",
        [actor],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
    )
    .optional()?
    .map(|(d, u)| Ok((parse(&d, "device")?, parse(&u, "user")?)))
    .transpose()
}

/// Binds an actor to a device (idempotent for the same device).
///
/// # Errors
/// [`StoreError::Conflict`] when the actor belongs to another device.
pub(crate) fn bind_actor(
    tx: &Transaction<'_>,
    actor: &str,
    device: &DeviceId,
    user: &UserId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO actors(actor, device_id, username, bound_at) VALUES (?1, ?2, ?3, ?4)",
        params![actor, device.as_str(), user.as_str(), rfc3339(at)],
    )?;
    let bound: String = tx.query_row(
        "SELECT device_id FROM actors WHERE actor = ?1",
        [actor],
        |r| r.get(0),
    )?;
    if bound != device.as_str() {
        return Err(StoreError::Conflict(format!(
            "actor {actor} belongs to device {bound}"
        )));
    }
    Ok(())
}

// ------------------------------------------------------------ documents

/// Registers a document (no-op if it exists).
pub(crate) fn insert_document(
    tx: &Transaction<'_>,
    id: DocId,
    kind: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT OR IGNORE INTO documents(doc_id, kind, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        params![id.to_string(), kind, rfc3339(at)],
    )?;
    Ok(())
}

/// Appends an incremental chunk; returns the total chunk bytes now stored.
pub(crate) fn append_chunk(
    tx: &Transaction<'_>,
    id: DocId,
    data: &[u8],
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    let doc = id.to_string();
    tx.execute(
        "INSERT INTO chunks(doc_id, data) VALUES (?1, ?2)",
        params![doc, data],
    )?;
    tx.execute(
        "UPDATE documents SET chunk_bytes = chunk_bytes + ?2, updated_at = ?3 WHERE doc_id = ?1",
        params![doc, count(data.len() as u64), rfc3339(at)],
    )?;
    let total: i64 = tx.query_row(
        "SELECT chunk_bytes FROM documents WHERE doc_id = ?1",
        [&doc],
        |r| r.get(0),
    )?;
    Ok(ucount(total))
}

/// Replaces a document's snapshot and chunks with one compacted snapshot.
pub(crate) fn compact(tx: &Transaction<'_>, id: DocId, snapshot: &[u8]) -> StoreResult<()> {
    let doc = id.to_string();
    tx.execute(
        "UPDATE documents SET snapshot = ?2, chunk_bytes = 0 WHERE doc_id = ?1",
        params![doc, snapshot],
    )?;
    tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [doc])?;
    Ok(())
}

/// Keeps a document's heads digest (written in the commit that moves them).
pub(crate) fn set_heads_digest(
    tx: &Transaction<'_>,
    id: DocId,
    digest: &[u8; 16],
) -> StoreResult<()> {
    tx.execute(
        "UPDATE documents SET heads_digest = ?2 WHERE doc_id = ?1",
        params![id.to_string(), hex::encode(digest)],
    )?;
    Ok(())
}

/// Of `docs` (with a device's digests), those whose stored digest differs,
/// those stored before digests were kept, and those the relay does not have
/// (a relay restored from a backup may have lost what a device holds: the
/// device's sync then brings it back, or is told it is unavailable).
pub(crate) fn stale(conn: &Connection, docs: &[(DocId, [u8; 16])]) -> StoreResult<Vec<DocId>> {
    let mut st = conn.prepare_cached("SELECT heads_digest FROM documents WHERE doc_id = ?1")?;
    let mut out = Vec::new();
    for (id, digest) in docs {
        let stored: Option<Option<String>> =
            st.query_row([id.to_string()], |r| r.get(0)).optional()?;
        if !matches!(stored, Some(Some(d)) if d == hex::encode(digest)) {
            out.push(*id);
        }
    }
    Ok(out)
}

/// A stored document: its kind, snapshot and chunks in order.
pub(crate) struct StoredDoc {
    pub(crate) snapshot: Option<Vec<u8>>,
    pub(crate) chunks: Vec<Vec<u8>>,
}

impl StoredDoc {
    /// The document these bytes hold. Automerge runs under `catch_unwind`:
    /// a damaged snapshot or chunk is an error, never a panic.
    pub(crate) fn assemble(&self) -> StoreResult<automerge::Automerge> {
        let build = || -> Result<automerge::Automerge, automerge::AutomergeError> {
            let mut doc = match &self.snapshot {
                Some(s) => automerge::Automerge::load(s)?,
                None => automerge::Automerge::new(),
            };
            for chunk in &self.chunks {
                doc.load_incremental(chunk)?;
            }
            Ok(doc)
        };
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
            .map_err(|_| StoreError::Corrupt("a stored document made automerge fail".into()))?
            .map_err(|e| StoreError::Corrupt(format!("a stored document does not load: {e}")))
    }
}

/// Loads a document's bytes.
pub(crate) fn load_document(conn: &Connection, id: DocId) -> StoreResult<Option<StoredDoc>> {
    let doc = id.to_string();
    let Some(snapshot) = conn
        .query_row(
            "SELECT snapshot FROM documents WHERE doc_id = ?1",
            [&doc],
            |r| r.get::<_, Option<Vec<u8>>>(0),
        )
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let chunks = stmt
        .query_map([&doc], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(StoredDoc { snapshot, chunks }))
}

// ------------------------------------------------------------ numbering

/// The next number of a series and year for `doc`: gap-free, in the order of
/// the transactions that take them. Idempotent per document.
pub(crate) fn take_number(
    tx: &Transaction<'_>,
    series: Series,
    year: u16,
    doc: DocId,
    at: DateTime<Utc>,
) -> StoreResult<u32> {
    let doc_s = doc.to_string();
    if let Some(n) = tx
        .query_row(
            "SELECT number FROM number_ledger WHERE doc_id = ?1",
            [&doc_s],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
    {
        return u32::try_from(n).map_err(|_| StoreError::Corrupt("number out of range".into()));
    }
    tx.execute(
        "INSERT INTO number_series(series, year, last) VALUES (?1, ?2, 0) ON CONFLICT DO NOTHING",
        params![series.code(), year],
    )?;
    let next: i64 = tx.query_row(
        "UPDATE number_series SET last = last + 1 WHERE series = ?1 AND year = ?2 RETURNING last",
        params![series.code(), year],
        |r| r.get(0),
    )?;
    // Issue-time order must match number order even if the clock steps back.
    let last: Option<String> = tx.query_row(
        "SELECT max(assigned_at) FROM number_ledger WHERE series = ?1 AND year = ?2",
        params![series.code(), year],
        |r| r.get(0),
    )?;
    let at = match last.map(time).transpose()? {
        Some(last) if last > at => last,
        _ => at,
    };
    tx.execute(
        "INSERT INTO number_ledger(series, year, number, doc_id, assigned_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![series.code(), year, next, doc_s, rfc3339(at)],
    )?;
    u32::try_from(next).map_err(|_| StoreError::Corrupt("number out of range".into()))
}

/// One row of the number ledger.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NumberRow {
    pub(crate) number: u32,
    pub(crate) doc_id: DocId,
    pub(crate) assigned_at: DateTime<Utc>,
}

/// The number ledger of a series and year, in number order.
pub(crate) fn number_ledger(
    conn: &Connection,
    series: Series,
    year: u16,
) -> StoreResult<Vec<NumberRow>> {
    let mut stmt = conn.prepare(
        "SELECT number, doc_id, assigned_at FROM number_ledger WHERE series = ?1 AND year = ?2 ORDER BY number",
    )?;
    let rows: Vec<(i64, String, String)> = stmt
        .query_map(params![series.code(), year], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(n, d, a)| {
            Ok(NumberRow {
                number: u32::try_from(n).map_err(|_| StoreError::Corrupt("number".into()))?,
                doc_id: parse(&d, "doc id")?,
                assigned_at: time(a)?,
            })
        })
        .collect()
}

// ------------------------------------------------------------ ledgers

/// One received change, as the sync log shows it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ChangeRow {
    pub(crate) hash: String,
    pub(crate) doc_id: DocId,
    pub(crate) actor: String,
    pub(crate) username: UserId,
    pub(crate) device_id: DeviceId,
    pub(crate) session_id: Option<i64>,
    pub(crate) bytes: u64,
    pub(crate) authored_at: DateTime<Utc>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) outcome: String,
    pub(crate) rule: Option<String>,
    pub(crate) reason: Option<String>,
}

/// Records a received change (once per hash).
pub(crate) fn insert_change(tx: &Transaction<'_>, c: &ChangeEntry) -> StoreResult<bool> {
    Ok(tx.execute(
        "INSERT OR IGNORE INTO change_ledger(hash, doc_id, actor, username, device_id, session_id, bytes,
            authored_at, received_at, outcome, rule, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            c.hash.to_string(),
            c.doc.to_string(),
            c.actor.to_hex_string(),
            c.user.as_str(),
            c.device.as_str(),
            c.session,
            count(c.bytes),
            rfc3339(c.authored_at),
            rfc3339(c.received_at),
            c.outcome.as_str(),
            c.rule,
            c.reason
        ],
    )? == 1)
}

/// Records a verdict.
pub(crate) fn insert_verdict(tx: &Transaction<'_>, v: &VerdictEntry) -> StoreResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO verdicts(doc_id, event_id, seq, action, username, device_id, change_hash,
            outcome, rule, reason, authored_at, judged_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            v.doc.to_string(),
            v.event.as_str(),
            count(v.seq),
            v.action,
            v.user.as_str(),
            v.device.as_str(),
            v.change.to_string(),
            v.outcome.as_str(),
            v.rule,
            v.reason,
            rfc3339(v.authored_at),
            rfc3339(v.judged_at)
        ],
    )?;
    Ok(())
}

/// An item of the review queue.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct ReviewRow {
    pub(crate) id: i64,
    pub(crate) doc_id: DocId,
    pub(crate) event_id: Option<String>,
    pub(crate) change_hash: Option<String>,
    pub(crate) kind: String,
    pub(crate) action: Option<String>,
    pub(crate) rule: String,
    pub(crate) reason: String,
    pub(crate) username: UserId,
    pub(crate) device_id: DeviceId,
    pub(crate) authored_at: DateTime<Utc>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) resolved_at: Option<DateTime<Utc>>,
    pub(crate) resolved_by: Option<String>,
    pub(crate) resolution: Option<String>,
}

/// Adds an item to the review queue (with the raw change, for hard rejections).
pub(crate) fn insert_review(tx: &Transaction<'_>, r: &ReviewEntry) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO review_queue(doc_id, event_id, change_hash, kind, action, rule, reason, username, device_id,
            authored_at, received_at, payload)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            r.doc.to_string(),
            r.event.as_ref().map(EventId::as_str),
            r.change.map(|h| h.to_string()),
            r.kind.as_str(),
            r.action,
            r.rule,
            r.reason,
            r.user.as_str(),
            r.device.as_str(),
            rfc3339(r.authored_at),
            rfc3339(r.received_at),
            r.payload
        ],
    )?;
    Ok(())
}

/// Marks the review item of an event resolved.
pub(crate) fn resolve_review(
    tx: &Transaction<'_>,
    doc: DocId,
    r: &Resolution,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE review_queue SET resolved_at = ?4, resolved_by = ?3, resolution = ?5
         WHERE doc_id = ?1 AND event_id = ?2 AND resolved_at IS NULL",
        params![
            doc.to_string(),
            r.event,
            r.by.as_str(),
            rfc3339(at),
            r.how.as_str()
        ],
    )?;
    Ok(())
}

/// A filter on the review queue.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReviewFilter {
    pub(crate) open_only: bool,
    pub(crate) doc_id: Option<DocId>,
    pub(crate) kind: Option<String>,
}

/// The review queue, newest first.
pub(crate) fn review_queue(conn: &Connection, f: &ReviewFilter) -> StoreResult<Vec<ReviewRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, doc_id, event_id, change_hash, kind, action, rule, reason, username, device_id, authored_at,
                received_at, resolved_at, resolved_by, resolution
         FROM review_queue
         WHERE (?1 = 0 OR resolved_at IS NULL) AND (?2 IS NULL OR doc_id = ?2) AND (?3 IS NULL OR kind = ?3)
         ORDER BY id DESC LIMIT 1000",
    )?;
    let rows = stmt.query_map(
        params![
            i64::from(f.open_only),
            f.doc_id.map(|d| d.to_string()),
            f.kind
        ],
        |r| {
            Ok(ReviewRow {
                id: r.get(0)?,
                doc_id: col(r, 1)?,
                event_id: r.get(2)?,
                change_hash: r.get(3)?,
                kind: r.get(4)?,
                action: r.get(5)?,
                rule: r.get(6)?,
                reason: r.get(7)?,
                username: col(r, 8)?,
                device_id: col(r, 9)?,
                authored_at: col_time(r, 10)?,
                received_at: col_time(r, 11)?,
                resolved_at: col_opt_time(r, 12)?,
                resolved_by: r.get(13)?,
                resolution: r.get(14)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Records a protocol-level refusal in the security log.
pub(crate) fn log_security(
    tx: &Transaction<'_>,
    at: DateTime<Utc>,
    user: Option<&str>,
    device: Option<&str>,
    peer: Option<&str>,
    kind: &str,
    detail: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO security_log(at, username, device_id, peer, kind, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![rfc3339(at), user, device, peer, kind, detail],
    )?;
    Ok(())
}

/// A row of the security log.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SecurityRow {
    pub(crate) at: String,
    pub(crate) username: Option<String>,
    pub(crate) device_id: Option<String>,
    pub(crate) peer: Option<String>,
    pub(crate) kind: String,
    pub(crate) detail: String,
    /// How many like refusals this row stands for (coalesced by the relay).
    pub(crate) count: u64,
    /// The last of them, when there were several.
    pub(crate) last_at: Option<String>,
}

/// The security log, newest first.
pub(crate) fn security_log(conn: &Connection, limit: u32) -> StoreResult<Vec<SecurityRow>> {
    let mut stmt = conn.prepare(
        "SELECT at, username, device_id, peer, kind, detail, count, last_at FROM security_log ORDER BY id DESC LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit], |r| {
        Ok(SecurityRow {
            at: r.get(0)?,
            username: r.get(1)?,
            device_id: r.get(2)?,
            peer: r.get(3)?,
            kind: r.get(4)?,
            detail: r.get(5)?,
            count: ucount(r.get(6)?),
            last_at: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------ sessions

/// The counters of one connection session.
#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct SessionCounters {
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) messages_in: u64,
    pub(crate) messages_out: u64,
    pub(crate) documents: u64,
    pub(crate) changes_received: u64,
    pub(crate) accepted: u64,
    pub(crate) conflict: u64,
    pub(crate) rejected: u64,
    pub(crate) hard_rejected: u64,
}

/// Opens a session row; returns its id.
pub(crate) fn start_session(
    tx: &Transaction<'_>,
    user: &UserId,
    device: &DeviceId,
    remote: Option<&str>,
    at: DateTime<Utc>,
) -> StoreResult<i64> {
    tx.execute(
        "INSERT INTO sync_sessions(username, device_id, remote_addr, started_at) VALUES (?1, ?2, ?3, ?4)",
        params![user.as_str(), device.as_str(), remote, rfc3339(at)],
    )?;
    Ok(tx.last_insert_rowid())
}

/// Writes a session's counters (and its end, once it ended).
pub(crate) fn update_session(
    tx: &Transaction<'_>,
    id: i64,
    peer: Option<&str>,
    c: &SessionCounters,
    ended: Option<(DateTime<Utc>, &str)>,
) -> StoreResult<()> {
    tx.execute(
        "UPDATE sync_sessions SET peer_id = coalesce(?2, peer_id), bytes_in = ?3, bytes_out = ?4, messages_in = ?5,
            messages_out = ?6, documents = ?7, changes_received = ?8, accepted = ?9, conflict = ?10,
            rejected = ?11, hard_rejected = ?12, ended_at = ?13, end_reason = ?14
         WHERE id = ?1",
        params![
            id,
            peer,
            count(c.bytes_in),
            count(c.bytes_out),
            count(c.messages_in),
            count(c.messages_out),
            count(c.documents),
            count(c.changes_received),
            count(c.accepted),
            count(c.conflict),
            count(c.rejected),
            count(c.hard_rejected),
            ended.map(|(t, _)| rfc3339(t)),
            ended.map(|(_, r)| r.to_owned())
        ],
    )?;
    Ok(())
}

// ------------------------------------------------------------ read models

/// A row of the ticket register.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct TicketRow {
    pub(crate) doc_id: DocId,
    pub(crate) kind: String,
    pub(crate) status: String,
    pub(crate) serial: Option<String>,
    pub(crate) title: String,
    pub(crate) location: String,
    pub(crate) household: Option<String>,
    pub(crate) assignee: Option<String>,
    pub(crate) department: Option<String>,
    pub(crate) created_by: String,
    pub(crate) channel: String,
    pub(crate) reported_at: DateTime<Utc>,
    pub(crate) received_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) paid: bool,
    /// The projection as JSON.
    pub(crate) projection: serde_json::Value,
}

impl TicketRow {
    /// The access-relevant facts the row holds.
    pub(crate) fn meta(&self) -> schema::access::TicketMeta {
        let projection: Option<schema::Projection> =
            serde_json::from_value(self.projection.clone()).ok();
        schema::access::TicketMeta {
            kind: self.kind.parse().unwrap_or(schema::Kind::Repair),
            paid: self.paid,
            department: self.department.as_deref().and_then(|d| d.parse().ok()),
            created_by: self
                .created_by
                .parse()
                .unwrap_or_else(|_| UserId::new("unknown").expect("a valid user id")),
            assignee: self.assignee.as_deref().and_then(|a| a.parse().ok()),
            open: !self
                .status
                .parse::<schema::Status>()
                .is_ok_and(schema::Status::is_terminal),
            engineers: projection
                .map(|p| p.engineers().into_iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Inserts or replaces a register row, and records the blobs it references.
pub(crate) fn upsert_ticket(tx: &Transaction<'_>, t: &Register) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO tickets(doc_id, kind, status, serial, title, location, household, assignee, department,
            created_by, channel, reported_at, received_at, updated_at, paid, projection)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT(doc_id) DO UPDATE SET status = excluded.status, serial = coalesce(tickets.serial, excluded.serial),
            title = excluded.title, location = excluded.location, household = excluded.household,
            assignee = excluded.assignee, department = excluded.department, updated_at = excluded.updated_at,
            paid = excluded.paid, projection = excluded.projection",
        params![
            t.doc.to_string(),
            t.kind.as_str(),
            t.status.as_str(),
            t.serial.map(|s| s.to_string()),
            t.title,
            t.location,
            t.household.map(|h| h.to_string()),
            t.assignee.as_ref().map(UserId::as_str),
            t.department.map(|d| d.as_str()),
            t.created_by.as_str(),
            t.channel.as_str(),
            rfc3339(t.reported_at),
            rfc3339(t.received_at),
            rfc3339(t.updated_at),
            t.paid,
            serde_json::to_string(&t.projection)
                .map_err(|e| StoreError::Corrupt(format!("a projection: {e}")))?
        ],
    )?;
    super::edges::add_blob_refs(tx, t.doc, &t.blobs)
}

fn ticket_row(r: &Row<'_>) -> rusqlite::Result<[Option<String>; 16]> {
    let mut out: [Option<String>; 16] = Default::default();
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = match r.get_ref(i)? {
            rusqlite::types::ValueRef::Null => None,
            rusqlite::types::ValueRef::Integer(n) => Some(n.to_string()),
            v => Some(v.as_str()?.to_owned()),
        };
    }
    Ok(out)
}

fn to_ticket(c: [Option<String>; 16]) -> StoreResult<TicketRow> {
    let s = |i: usize| c[i].clone().unwrap_or_default();
    Ok(TicketRow {
        doc_id: parse(&s(0), "doc id")?,
        kind: s(1),
        status: s(2),
        serial: c[3].clone(),
        title: s(4),
        location: s(5),
        household: c[6].clone(),
        assignee: c[7].clone(),
        department: c[8].clone(),
        created_by: s(9),
        channel: s(10),
        reported_at: time(s(11))?,
        received_at: time(s(12))?,
        updated_at: time(s(13))?,
        paid: s(14) == "1",
        projection: serde_json::from_str(&s(15)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

const TICKET_COLS: &str =
    "doc_id, kind, status, serial, title, location, household, assignee, department, created_by,
    channel, reported_at, received_at, updated_at, paid, projection";

/// One register row.
pub(crate) fn ticket(conn: &Connection, id: DocId) -> StoreResult<Option<TicketRow>> {
    conn.query_row(
        &format!("SELECT {TICKET_COLS} FROM tickets WHERE doc_id = ?1"),
        [id.to_string()],
        ticket_row,
    )
    .optional()?
    .map(to_ticket)
    .transpose()
}

/// A filter on the register.
#[derive(Clone, Debug, Default)]
pub(crate) struct TicketFilter {
    pub(crate) kind: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) assignee: Option<String>,
    pub(crate) department: Option<String>,
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
    pub(crate) limit: u32,
}

/// The register, newest first.
pub(crate) fn tickets(conn: &Connection, f: &TicketFilter) -> StoreResult<Vec<TicketRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {TICKET_COLS} FROM tickets
         WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR status = ?2) AND (?3 IS NULL OR assignee = ?3)
           AND (?4 IS NULL OR department = ?4) AND (?5 IS NULL OR received_at >= ?5) AND (?6 IS NULL OR received_at < ?6)
         ORDER BY received_at DESC, doc_id LIMIT ?7"
    ))?;
    let rows: Vec<_> = stmt
        .query_map(
            params![
                f.kind,
                f.status,
                f.assignee,
                f.department,
                f.from.map(rfc3339),
                f.to.map(rfc3339),
                if f.limit == 0 { 1000 } else { f.limit }
            ],
            ticket_row,
        )?
        .collect::<Result<_, _>>()?;
    rows.into_iter().map(to_ticket).collect()
}

/// Replaces the list of users with explicit access to a document.
pub(crate) fn set_access(
    tx: &Transaction<'_>,
    doc: DocId,
    access: &[(UserId, Grant)],
) -> StoreResult<()> {
    let d = doc.to_string();
    tx.execute("DELETE FROM doc_access WHERE doc_id = ?1", [&d])?;
    for (user, a) in access {
        tx.execute(
            "INSERT OR REPLACE INTO doc_access(doc_id, username, access) VALUES (?1, ?2, ?3)",
            params![d, user.as_str(), a.as_str()],
        )?;
    }
    Ok(())
}

/// Adds one user's access to a document (household files of their tickets).
pub(crate) fn grant_access(
    tx: &Transaction<'_>,
    doc: DocId,
    user: &UserId,
    access: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO doc_access(doc_id, username, access) VALUES (?1, ?2, ?3)",
        params![doc.to_string(), user.as_str(), access],
    )?;
    Ok(())
}

/// A user's explicit access to a document.
pub(crate) fn access(conn: &Connection, doc: DocId, user: &UserId) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT access FROM doc_access WHERE doc_id = ?1 AND username = ?2",
            params![doc.to_string(), user.as_str()],
            |r| r.get(0),
        )
        .optional()?)
}

/// Registers a household file pair.
pub(crate) fn insert_household(
    tx: &Transaction<'_>,
    public: DocId,
    private: DocId,
    building: &str,
    unit: &str,
) -> StoreResult<()> {
    tx.execute(
        "INSERT OR REPLACE INTO households(doc_id, private_doc, building, unit) VALUES (?1, ?2, ?3, ?4)",
        params![public.to_string(), private.to_string(), building, unit],
    )?;
    Ok(())
}

/// A household file pair.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HouseholdRow {
    pub(crate) doc_id: DocId,
    pub(crate) private_doc: Option<DocId>,
    pub(crate) building: String,
    pub(crate) unit: String,
}

/// One household by its public file's id.
pub(crate) fn household(conn: &Connection, id: DocId) -> StoreResult<Option<HouseholdRow>> {
    let row: Option<(Option<String>, String, String)> = conn
        .query_row(
            "SELECT private_doc, building, unit FROM households WHERE doc_id = ?1",
            [id.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    row.map(|(p, building, unit)| {
        Ok(HouseholdRow {
            doc_id: id,
            private_doc: p.map(|p| parse(&p, "doc id")).transpose()?,
            building,
            unit,
        })
    })
    .transpose()
}

/// Households, optionally matching a unit or building prefix.
pub(crate) fn households(conn: &Connection, q: Option<&str>) -> StoreResult<Vec<HouseholdRow>> {
    let pattern = q.map(|q| format!("%{}%", q.replace('%', "")));
    let mut stmt = conn.prepare(
        "SELECT doc_id, private_doc, building, unit FROM households
         WHERE ?1 IS NULL OR unit LIKE ?1 OR building LIKE ?1 ORDER BY unit LIMIT 200",
    )?;
    let rows: Vec<(String, Option<String>, String, String)> = stmt
        .query_map([pattern], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(d, p, b, u)| {
            Ok(HouseholdRow {
                doc_id: parse(&d, "doc id")?,
                private_doc: p.map(|p| parse(&p, "doc id")).transpose()?,
                building: b,
                unit: u,
            })
        })
        .collect()
}

// ------------------------------------------------------------ the sync log

/// A filter on the sync log.
#[derive(Clone, Debug, Default)]
pub(crate) struct SyncLogFilter {
    pub(crate) user: Option<String>,
    pub(crate) device: Option<String>,
    pub(crate) document: Option<DocId>,
    pub(crate) verdict: Option<String>,
    pub(crate) from: Option<DateTime<Utc>>,
    pub(crate) to: Option<DateTime<Utc>>,
}

/// A session row.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct SessionRow {
    pub(crate) id: i64,
    pub(crate) username: String,
    pub(crate) device_id: String,
    pub(crate) peer_id: Option<String>,
    pub(crate) remote_addr: Option<String>,
    pub(crate) started_at: String,
    pub(crate) ended_at: Option<String>,
    pub(crate) end_reason: Option<String>,
    #[serde(flatten)]
    pub(crate) counters: SessionCounters,
}

/// Sessions, newest first; at most `limit` of them (all when `None`).
pub(crate) fn sync_sessions(
    conn: &Connection,
    f: &SyncLogFilter,
    limit: Option<u32>,
) -> StoreResult<Vec<SessionRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, username, device_id, peer_id, remote_addr, started_at, ended_at, end_reason, bytes_in, bytes_out,
                messages_in, messages_out, documents, changes_received, accepted, conflict, rejected, hard_rejected
         FROM sync_sessions
         WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR device_id = ?2)
           AND (?3 IS NULL OR started_at >= ?3) AND (?4 IS NULL OR started_at < ?4)
         ORDER BY id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            f.user,
            f.device,
            f.from.map(rfc3339),
            f.to.map(rfc3339),
            sql_limit(limit)
        ],
        |r| {
            let n = |i: usize| r.get::<_, i64>(i).map(ucount);
            Ok(SessionRow {
                id: r.get(0)?,
                username: r.get(1)?,
                device_id: r.get(2)?,
                peer_id: r.get(3)?,
                remote_addr: r.get(4)?,
                started_at: r.get(5)?,
                ended_at: r.get(6)?,
                end_reason: r.get(7)?,
                counters: SessionCounters {
                    bytes_in: n(8)?,
                    bytes_out: n(9)?,
                    messages_in: n(10)?,
                    messages_out: n(11)?,
                    documents: n(12)?,
                    changes_received: n(13)?,
                    accepted: n(14)?,
                    conflict: n(15)?,
                    rejected: n(16)?,
                    hard_rejected: n(17)?,
                },
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// SQLite's `LIMIT` for "at most `limit`" (-1 is no limit).
fn sql_limit(limit: Option<u32>) -> i64 {
    limit.map_or(-1, i64::from)
}

/// The per-change ledger, newest first; at most `limit` rows (all when `None`).
pub(crate) fn change_ledger(
    conn: &Connection,
    f: &SyncLogFilter,
    limit: Option<u32>,
) -> StoreResult<Vec<ChangeRow>> {
    let mut stmt = conn.prepare(
        "SELECT hash, doc_id, actor, username, device_id, session_id, bytes, authored_at, received_at, outcome, rule, reason
         FROM change_ledger
         WHERE (?1 IS NULL OR username = ?1) AND (?2 IS NULL OR device_id = ?2) AND (?3 IS NULL OR doc_id = ?3)
           AND (?4 IS NULL OR outcome = ?4) AND (?5 IS NULL OR received_at >= ?5) AND (?6 IS NULL OR received_at < ?6)
         ORDER BY rowid DESC LIMIT ?7",
    )?;
    let rows = stmt.query_map(
        params![
            f.user,
            f.device,
            f.document.map(|d| d.to_string()),
            f.verdict,
            f.from.map(rfc3339),
            f.to.map(rfc3339),
            sql_limit(limit)
        ],
        |r| {
            Ok(ChangeRow {
                hash: r.get(0)?,
                doc_id: col(r, 1)?,
                actor: r.get(2)?,
                username: col(r, 3)?,
                device_id: col(r, 4)?,
                session_id: r.get(5)?,
                bytes: ucount(r.get(6)?),
                authored_at: col_time(r, 7)?,
                received_at: col_time(r, 8)?,
                outcome: r.get(9)?,
                rule: r.get(10)?,
                reason: r.get(11)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------ blobs

/// Records a blob's upload progress.
#[allow(clippy::too_many_arguments, reason = "one row's columns")]
pub(crate) fn upsert_blob(
    tx: &Transaction<'_>,
    sha: &str,
    size: u64,
    mime: &str,
    received: u64,
    complete: bool,
    by: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO blobs(sha256, size, mime, received, complete, uploaded_by, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(sha256) DO UPDATE SET received = excluded.received, complete = excluded.complete",
        params![sha, count(size), mime, count(received), complete, by, rfc3339(at)],
    )?;
    Ok(())
}

/// A stored blob's MIME type.
pub(crate) fn blob_mime(conn: &Connection, sha: &str) -> StoreResult<Option<String>> {
    Ok(conn
        .query_row("SELECT mime FROM blobs WHERE sha256 = ?1", [sha], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Records the caller of a new ticket, with the full number (the document
/// holds it masked). Written once: a repeat keeps the first.
pub(crate) fn put_caller(
    tx: &Transaction<'_>,
    doc: DocId,
    caller: &schema::ticket::Caller,
    by: &UserId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    tx.execute(
        "INSERT INTO ticket_callers(doc_id, name, phone, read_back, recorded_by, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(doc_id) DO NOTHING",
        params![
            doc.to_string(),
            caller.name,
            caller.phone,
            caller.read_back,
            by.as_str(),
            rfc3339(at)
        ],
    )?;
    Ok(())
}

/// A ticket's caller with the full number, if the relay recorded one.
pub(crate) fn caller(conn: &Connection, doc: DocId) -> StoreResult<Option<schema::ticket::Caller>> {
    Ok(conn
        .query_row(
            "SELECT name, phone, read_back FROM ticket_callers WHERE doc_id = ?1",
            [doc.to_string()],
            |r| {
                Ok(schema::ticket::Caller {
                    name: r.get(0)?,
                    phone: r.get(1)?,
                    read_back: r.get(2)?,
                })
            },
        )
        .optional()?)
}
