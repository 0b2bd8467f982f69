// Long file: every SQL statement of the device's store, beside the schema it reads (store/sql).
//! The device's SQLite store (DESIGN.md §7): documents as a snapshot plus
//! incremental chunks, the sync state per relay, pending local actions, the
//! last verdicts seen, the quarantine, photos, and the enrolment.
//!
//! One connection, the only writer: WAL, `synchronous=FULL`, migrations by
//! `PRAGMA user_version` from the `.sql` files in `store/sql/`. Writes take a
//! `&Transaction`, reads a `&Connection`. A local action is one transaction
//! that appends its change as a chunk *and* keeps the change bytes in
//! `pending`, so it survives a damaged chunk; a chunk whose checksum or
//! Automerge encoding is bad is reported in a [`LoadReport`], never a panic.

use std::path::Path;

use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use schema::DocId;
use sha2::{Digest, Sha256};

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the database's page limit) is full: nothing was written.
    #[error("the device store is full: nothing was written")]
    Full(#[source] rusqlite::Error),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[source] rusqlite::Error),
    /// The store was written by a newer version of this program.
    #[error("the store is at schema version {found}, newer than this program's {known}")]
    TooNew {
        /// The store's `user_version`.
        found: i64,
        /// The newest this program knows.
        known: i64,
    },
    /// A value in the store is not what this program wrote.
    #[error("bad value in the store: {0}")]
    Bad(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull) => StoreError::Full(e),
            _ => StoreError::Sqlite(e),
        }
    }
}

/// The migrations, in order; migration `i` takes `user_version` from `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("store/sql/0001_init.sql"),
    include_str!("store/sql/0002_sync_log.sql"),
];

/// The open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `path`.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated, or is from a newer version.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::setup(Connection::open(path)?)
    }

    /// Opens (creating if needed) and migrates the store `name` through the
    /// SQLite VFS `vfs` (in the browser: the origin private file system's
    /// sync-access-handle pool, registered by the field app before this).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_vfs(name: &str, vfs: &str) -> Result<Self, StoreError> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
            | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        Self::setup(Connection::open_with_flags_and_vfs(name, flags, vfs)?)
    }

    /// A store in memory (tests).
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        // journal_mode answers with a row, so it is read rather than updated.
        // A VFS without shared memory (the browser's) keeps its rollback
        // journal; every commit is still synced before it returns.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Self { conn };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        let found: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > known {
            return Err(StoreError::TooNew { found, known });
        }
        let from = usize::try_from(found).map_err(|_| StoreError::Bad("user_version".into()))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            let version = i64::try_from(i + 1).map_err(|_| StoreError::Bad("migration".into()))?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version of the store.
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// The connection, for reads.
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` in one transaction: all of it is kept, or none of it.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = self.conn.transaction()?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Limits the database to `pages` pages, so tests can fill the "disk".
    #[cfg(test)]
    pub(crate) fn limit_pages(&self, pages: u64) -> Result<(), StoreError> {
        let _: i64 = self
            .conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })?;
        Ok(())
    }
}

// ------------------------------------------------------------------- meta

/// Reads a setting.
pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Writes a setting.
pub(crate) fn meta_put(tx: &Transaction<'_>, key: &str, value: &str) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )?;
    Ok(())
}

// ------------------------------------------------------------------- docs

/// Whether and how a document is on the user's inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Listing {
    /// Made on this device; not yet seen in the inbox.
    Local,
    /// In the inbox.
    Listed,
    /// Left the inbox: purged once its pending changes are flushed.
    Delisted,
}

impl Listing {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Listing::Local => "local",
            Listing::Listed => "listed",
            Listing::Delisted => "delisted",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "local" => Ok(Listing::Local),
            "listed" => Ok(Listing::Listed),
            "delisted" => Ok(Listing::Delisted),
            _ => Err(StoreError::Bad(format!("listing {s:?}"))),
        }
    }
}

/// One row of `docs`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DocRow {
    /// The document.
    pub id: DocId,
    /// `ticket`, `household`, … when known.
    pub kind: Option<String>,
    /// Whether the user may append (`rw`) or only read (`ro`).
    pub read_only: bool,
    /// The inbox label.
    pub label: String,
    /// Inbox status.
    pub listing: Listing,
    /// The serial number, once the relay has given one.
    pub serial: Option<String>,
    /// The ticket's title, when it is a ticket.
    pub title: Option<String>,
}

fn doc_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawDocRow> {
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

type RawDocRow = (
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
);

fn to_doc_row(raw: RawDocRow) -> Result<DocRow, StoreError> {
    let (id, kind, access, label, listing, serial, title) = raw;
    Ok(DocRow {
        id: id
            .parse()
            .map_err(|e: schema::IdError| StoreError::Bad(e.to_string()))?,
        kind,
        read_only: access == "ro",
        label,
        listing: Listing::parse(&listing)?,
        serial,
        title,
    })
}

const DOC_COLUMNS: &str = "doc_id, kind, access, label, listing, serial, title";

/// Every document row.
pub(crate) fn docs(conn: &Connection) -> Result<Vec<DocRow>, StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT {DOC_COLUMNS} FROM docs ORDER BY doc_id"))?;
    let rows = stmt.query_map([], doc_row)?;
    rows.map(|r| to_doc_row(r?)).collect()
}

/// One document row.
pub(crate) fn doc(conn: &Connection, id: DocId) -> Result<Option<DocRow>, StoreError> {
    conn.query_row(
        &format!("SELECT {DOC_COLUMNS} FROM docs WHERE doc_id = ?1"),
        [id.to_string()],
        doc_row,
    )
    .optional()?
    .map(to_doc_row)
    .transpose()
}

/// The document with this serial number.
pub(crate) fn doc_by_serial(conn: &Connection, serial: &str) -> Result<Option<DocId>, StoreError> {
    let id: Option<String> = conn
        .query_row("SELECT doc_id FROM docs WHERE serial = ?1", [serial], |r| {
            r.get(0)
        })
        .optional()?;
    id.map(|s| {
        s.parse()
            .map_err(|e: schema::IdError| StoreError::Bad(e.to_string()))
    })
    .transpose()
}

/// Adds a document row if there is none.
pub(crate) fn doc_ensure(
    tx: &Transaction<'_>,
    id: DocId,
    listing: Listing,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO docs (doc_id, listing) VALUES (?1, ?2) ON CONFLICT (doc_id) DO NOTHING",
        params![id.to_string(), listing.as_str()],
    )?;
    Ok(())
}

/// Records what the inbox says about a document.
pub(crate) fn doc_list(
    tx: &Transaction<'_>,
    id: DocId,
    kind: &str,
    read_only: bool,
    label: &str,
) -> Result<(), StoreError> {
    doc_ensure(tx, id, Listing::Listed)?;
    tx.execute(
        "UPDATE docs SET kind = ?2, access = ?3, label = ?4, listing = 'listed' WHERE doc_id = ?1",
        params![
            id.to_string(),
            kind,
            if read_only { "ro" } else { "rw" },
            label
        ],
    )?;
    Ok(())
}

/// Marks a document as having left the inbox.
pub(crate) fn doc_delist(tx: &Transaction<'_>, id: DocId) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE docs SET listing = 'delisted' WHERE doc_id = ?1",
        [id.to_string()],
    )?;
    Ok(())
}

/// Records a ticket's kind, title and serial as read from the document.
pub(crate) fn doc_describe(
    tx: &Transaction<'_>,
    id: DocId,
    kind: &str,
    title: Option<&str>,
    serial: Option<&str>,
) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE docs SET kind = ?2, title = COALESCE(?3, title), serial = COALESCE(?4, serial)
         WHERE doc_id = ?1",
        params![id.to_string(), kind, title, serial],
    )?;
    Ok(())
}

/// Removes a document and everything about it except its quarantine.
pub(crate) fn doc_purge(tx: &Transaction<'_>, id: DocId) -> Result<(), StoreError> {
    let id = id.to_string();
    tx.execute("DELETE FROM pending WHERE doc_id = ?1", [&id])?;
    tx.execute("DELETE FROM verdicts WHERE doc_id = ?1", [&id])?;
    tx.execute("DELETE FROM docs WHERE doc_id = ?1", [&id])?;
    Ok(())
}

// ----------------------------------------------------------------- chunks

/// Appends an incremental chunk (one or more changes) to a document.
pub(crate) fn chunk_append(
    tx: &Transaction<'_>,
    id: DocId,
    bytes: &[u8],
) -> Result<(), StoreError> {
    insert_chunk(tx, id, "incremental", bytes)
}

fn insert_chunk(
    tx: &Transaction<'_>,
    id: DocId,
    kind: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let sum = Sha256::digest(bytes);
    tx.execute(
        "INSERT INTO chunks (doc_id, kind, bytes, sha256) VALUES (?1, ?2, ?3, ?4)",
        params![id.to_string(), kind, bytes, sum.as_slice()],
    )?;
    Ok(())
}

/// Drops a document's chunks (a reset from the relay).
pub(crate) fn chunks_clear(tx: &Transaction<'_>, id: DocId) -> Result<(), StoreError> {
    tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [id.to_string()])?;
    tx.execute(
        "DELETE FROM sync_states WHERE doc_id = ?1",
        [id.to_string()],
    )?;
    Ok(())
}

/// Replaces a document's chunks by one snapshot, when the incremental chunks
/// have outgrown the snapshot. Returns whether it compacted.
pub(crate) fn compact_if_needed(
    tx: &Transaction<'_>,
    id: DocId,
    doc: &Automerge,
) -> Result<bool, StoreError> {
    let (snap, incr): (i64, i64) = tx.query_row(
        "SELECT COALESCE(SUM(CASE WHEN kind = 'snapshot' THEN length(bytes) END), 0),
                COALESCE(SUM(CASE WHEN kind = 'incremental' THEN length(bytes) END), 0)
         FROM chunks WHERE doc_id = ?1",
        [id.to_string()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    if incr <= snap.max(COMPACT_FLOOR) {
        return Ok(false);
    }
    compact(tx, id, doc)?;
    Ok(true)
}

/// Below this many bytes of chunks a document is never compacted.
const COMPACT_FLOOR: i64 = 4096;

/// Replaces a document's chunks by one snapshot of `doc`.
pub(crate) fn compact(tx: &Transaction<'_>, id: DocId, doc: &Automerge) -> Result<(), StoreError> {
    let snapshot = doc.save();
    tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [id.to_string()])?;
    insert_chunk(tx, id, "snapshot", &snapshot)
}

/// A chunk that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChunkProblem {
    /// The document.
    pub doc: String,
    /// The chunk's row id.
    pub chunk: i64,
    /// What is wrong with it.
    pub problem: String,
}

/// What loading a document found that it could not use.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    /// Chunks skipped.
    pub problems: Vec<ChunkProblem>,
    /// Local actions re-applied from `pending` because their chunk was lost.
    pub recovered: usize,
}

impl LoadReport {
    /// Whether everything loaded.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Loads a document from its chunks, with `actor` as its actor; then
/// re-applies every pending local change the chunks did not hold.
pub(crate) fn load_doc(
    conn: &Connection,
    id: DocId,
    actor: &ActorId,
) -> Result<(Automerge, LoadReport), StoreError> {
    let mut report = LoadReport::default();
    let mut doc = Automerge::new().with_actor(actor.clone());
    let mut stmt =
        conn.prepare("SELECT id, kind, bytes, sha256 FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let mut rows = stmt.query([id.to_string()])?;
    loop {
        let row = match rows.next() {
            Ok(Some(row)) => row,
            Ok(None) => break,
            Err(e) => {
                report.problems.push(ChunkProblem {
                    doc: id.to_string(),
                    chunk: -1,
                    problem: format!("unreadable rows: {e}"),
                });
                break;
            }
        };
        let chunk: i64 = row.get(0).unwrap_or(-1);
        let read: rusqlite::Result<(Vec<u8>, Vec<u8>)> = (|| Ok((row.get(2)?, row.get(3)?)))();
        let problem = |p: String| ChunkProblem {
            doc: id.to_string(),
            chunk,
            problem: p,
        };
        let (bytes, sum) = match read {
            Ok(x) => x,
            Err(e) => {
                report.problems.push(problem(format!("unreadable: {e}")));
                continue;
            }
        };
        if Sha256::digest(&bytes).as_slice() != sum.as_slice() {
            report
                .problems
                .push(problem("checksum mismatch: the chunk is damaged".into()));
            continue;
        }
        if let Err(e) = doc.load_incremental(&bytes) {
            report.problems.push(problem(format!("not automerge: {e}")));
        }
    }
    for change in pending_changes(conn, id)? {
        if doc.get_change_by_hash(&change.hash()).is_none() {
            match doc.apply_changes([change]) {
                Ok(()) => report.recovered += 1,
                Err(e) => report.problems.push(ChunkProblem {
                    doc: id.to_string(),
                    chunk: -1,
                    problem: format!("pending change not applicable: {e}"),
                }),
            }
        }
    }
    Ok((doc, report))
}

// ------------------------------------------------------------ sync states

/// The saved sync state of a document with a relay.
pub(crate) fn sync_state(
    conn: &Connection,
    id: DocId,
    relay: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT state FROM sync_states WHERE doc_id = ?1 AND relay = ?2",
            params![id.to_string(), relay],
            |r| r.get(0),
        )
        .optional()?)
}

/// Forgets every saved sync state with a relay (it was restored from a backup).
pub(crate) fn sync_states_forget(tx: &Transaction<'_>, relay: &str) -> Result<(), StoreError> {
    tx.execute("DELETE FROM sync_states WHERE relay = ?1", [relay])?;
    Ok(())
}

/// Saves the sync state of a document with a relay.
pub(crate) fn sync_state_put(
    tx: &Transaction<'_>,
    id: DocId,
    relay: &str,
    state: &[u8],
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO sync_states (doc_id, relay, state) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id, relay) DO UPDATE SET state = excluded.state",
        params![id.to_string(), relay, state],
    )?;
    Ok(())
}

// ---------------------------------------------------------------- pending

/// A local action the relay has not yet judged (events) or received (notes).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct PendingRow {
    /// The event or note id.
    pub event_id: String,
    /// The document.
    pub doc: String,
    /// `event` or `note`.
    pub kind: String,
    /// The action (`note` for notes).
    pub action: String,
    /// The change that carries it, hex.
    pub change_hash: String,
    /// Device time.
    pub at: String,
    /// Whether the relay has the change.
    pub acked: bool,
}

/// Records a local action and the change that carries it.
#[allow(
    clippy::too_many_arguments,
    reason = "one argument per column; called from one place"
)]
pub(crate) fn pending_add(
    tx: &Transaction<'_>,
    event_id: &str,
    id: DocId,
    kind: &str,
    action: &str,
    change: &Change,
    at: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO pending (event_id, doc_id, kind, action, change_hash, change, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            event_id,
            id.to_string(),
            kind,
            action,
            change.hash().to_string(),
            change.raw_bytes(),
            at
        ],
    )?;
    Ok(())
}

/// Every pending row, oldest first.
pub(crate) fn pending(conn: &Connection) -> Result<Vec<PendingRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT event_id, doc_id, kind, action, change_hash, at, acked FROM pending ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(PendingRow {
            event_id: r.get(0)?,
            doc: r.get(1)?,
            kind: r.get(2)?,
            action: r.get(3)?,
            change_hash: r.get(4)?,
            at: r.get(5)?,
            acked: r.get::<_, i64>(6)? != 0,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The changes of a document's pending rows, in the order they were made.
pub(crate) fn pending_changes(conn: &Connection, id: DocId) -> Result<Vec<Change>, StoreError> {
    let mut stmt = conn.prepare("SELECT change FROM pending WHERE doc_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([id.to_string()], |r| r.get::<_, Vec<u8>>(0))?;
    let mut out = Vec::new();
    for bytes in rows {
        let change = Change::from_bytes(bytes?)
            .map_err(|e| StoreError::Bad(format!("pending change: {e}")))?;
        out.push(change);
    }
    Ok(out)
}

/// The hashes of a document's pending changes the relay does not have yet.
pub(crate) fn unacked(conn: &Connection, id: DocId) -> Result<Vec<ChangeHash>, StoreError> {
    let mut stmt = conn
        .prepare("SELECT change_hash FROM pending WHERE doc_id = ?1 AND acked = 0 ORDER BY seq")?;
    let rows = stmt.query_map([id.to_string()], |r| r.get::<_, String>(0))?;
    let mut out = Vec::new();
    for h in rows {
        let h = h?;
        out.push(
            h.parse()
                .map_err(|_| StoreError::Bad(format!("change hash {h:?}")))?,
        );
    }
    Ok(out)
}

/// Marks changes as received by the relay; drops acknowledged notes, which get no verdict.
pub(crate) fn pending_ack(
    tx: &Transaction<'_>,
    id: DocId,
    hashes: &[ChangeHash],
) -> Result<usize, StoreError> {
    let mut n = 0;
    for h in hashes {
        n += tx.execute(
            "UPDATE pending SET acked = 1 WHERE doc_id = ?1 AND change_hash = ?2 AND acked = 0",
            params![id.to_string(), h.to_string()],
        )?;
    }
    tx.execute(
        "DELETE FROM pending WHERE doc_id = ?1 AND kind = 'note' AND acked = 1",
        [id.to_string()],
    )?;
    Ok(n)
}

/// Drops the pending rows of these changes (moved to the quarantine).
pub(crate) fn pending_drop_changes(
    tx: &Transaction<'_>,
    id: DocId,
    hashes: &[ChangeHash],
) -> Result<(), StoreError> {
    for h in hashes {
        tx.execute(
            "DELETE FROM pending WHERE doc_id = ?1 AND change_hash = ?2",
            params![id.to_string(), h.to_string()],
        )?;
    }
    Ok(())
}

// --------------------------------------------------------------- verdicts

/// Records a verdict; returns whether it is new. A judged event stops being pending.
pub(crate) fn verdict_put(
    tx: &Transaction<'_>,
    id: DocId,
    event: &schema::EventId,
    v: &schema::VerdictRecord,
) -> Result<bool, StoreError> {
    let seq = i64::try_from(v.seq).map_err(|_| StoreError::Bad("verdict seq".into()))?;
    let n = tx.execute(
        "INSERT INTO verdicts (doc_id, event_id, seq, outcome, rule, reason, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (doc_id, event_id) DO NOTHING",
        params![
            id.to_string(),
            event.as_str(),
            seq,
            v.outcome.as_str(),
            v.rule,
            v.reason,
            schema::doc::rfc3339(v.at)
        ],
    )?;
    tx.execute(
        "DELETE FROM pending WHERE doc_id = ?1 AND event_id = ?2",
        params![id.to_string(), event.as_str()],
    )?;
    Ok(n > 0)
}

/// How many verdicts the store holds for a document.
pub(crate) fn verdict_count(conn: &Connection, id: DocId) -> Result<u64, StoreError> {
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM verdicts WHERE doc_id = ?1",
        [id.to_string()],
        |r| r.get(0),
    )?;
    u64::try_from(n).map_err(|_| StoreError::Bad("count".into()))
}

// ------------------------------------------------------------- quarantine

/// A local change the relay would not take.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct QuarantineRow {
    /// Row id.
    pub id: i64,
    /// The document.
    pub doc: String,
    /// The change hash, hex.
    pub change_hash: String,
    /// The rule the relay named.
    pub rule: String,
    /// The relay's reason.
    pub reason: String,
    /// When it was quarantined (device time).
    pub at: String,
    /// What the change did, for people (events and notes it added).
    pub summary: String,
    /// The raw change, hex (so an export can be replayed or audited).
    pub change_hex: String,
}

/// Quarantines one change.
#[allow(clippy::too_many_arguments, reason = "one argument per column")]
pub(crate) fn quarantine_add(
    tx: &Transaction<'_>,
    id: DocId,
    change: &Change,
    rule: &str,
    reason: &str,
    at: &str,
    summary: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO quarantine (doc_id, change_hash, change, rule, reason, at, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (doc_id, change_hash) DO NOTHING",
        params![
            id.to_string(),
            change.hash().to_string(),
            change.raw_bytes(),
            rule,
            reason,
            at,
            summary
        ],
    )?;
    Ok(())
}

/// Drops quarantined changes the relay turned out to hold.
pub(crate) fn quarantine_release(
    tx: &Transaction<'_>,
    id: DocId,
    hashes: &[ChangeHash],
) -> Result<(), StoreError> {
    for h in hashes {
        tx.execute(
            "DELETE FROM quarantine WHERE doc_id = ?1 AND change_hash = ?2",
            params![id.to_string(), h.to_string()],
        )?;
    }
    Ok(())
}

/// Every quarantined change, oldest first.
pub(crate) fn quarantine(conn: &Connection) -> Result<Vec<QuarantineRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT id, doc_id, change_hash, rule, reason, at, summary, change FROM quarantine ORDER BY id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QuarantineRow {
            id: r.get(0)?,
            doc: r.get(1)?,
            change_hash: r.get(2)?,
            rule: r.get(3)?,
            reason: r.get(4)?,
            at: r.get(5)?,
            summary: r.get(6)?,
            change_hex: hex::encode(r.get::<_, Vec<u8>>(7)?),
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

// ------------------------------------------------------------------ blobs

/// A photo waiting for (or done with) its upload.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlobRow {
    /// Lowercase hex SHA-256.
    pub sha256: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Bytes the relay has confirmed.
    pub uploaded: u64,
    /// Whether the relay has all of it.
    pub complete: bool,
}

/// Stores a blob by its hash (a no-op if it is there).
pub(crate) fn blob_put(
    tx: &Transaction<'_>,
    sha: &str,
    mime: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    let size = i64::try_from(bytes.len()).map_err(|_| StoreError::Bad("blob size".into()))?;
    tx.execute(
        "INSERT INTO blobs (sha256, mime, size, bytes) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (sha256) DO NOTHING",
        params![sha, mime, size, bytes],
    )?;
    Ok(())
}

/// A blob's row, without its bytes.
pub(crate) fn blob(conn: &Connection, sha: &str) -> Result<Option<BlobRow>, StoreError> {
    conn.query_row(
        "SELECT sha256, mime, size, uploaded, complete FROM blobs WHERE sha256 = ?1",
        [sha],
        blob_row,
    )
    .optional()?
    .transpose()
}

fn blob_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<BlobRow, StoreError>> {
    let size: i64 = r.get(2)?;
    let uploaded: i64 = r.get(3)?;
    Ok((|| {
        Ok(BlobRow {
            sha256: r.get(0)?,
            mime: r.get(1)?,
            size: u64::try_from(size).map_err(|_| StoreError::Bad("blob size".into()))?,
            uploaded: u64::try_from(uploaded).map_err(|_| StoreError::Bad("blob offset".into()))?,
            complete: r.get::<_, i64>(4)? != 0,
        })
    })())
}

/// Blobs the relay does not have in full.
pub(crate) fn blobs_to_upload(conn: &Connection) -> Result<Vec<BlobRow>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT sha256, mime, size, uploaded, complete FROM blobs WHERE complete = 0 ORDER BY sha256",
    )?;
    let rows = stmt.query_map([], blob_row)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

/// A blob's bytes.
pub(crate) fn blob_bytes(conn: &Connection, sha: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(conn
        .query_row("SELECT bytes FROM blobs WHERE sha256 = ?1", [sha], |r| {
            r.get(0)
        })
        .optional()?)
}

/// Records upload progress.
pub(crate) fn blob_progress(
    tx: &Transaction<'_>,
    sha: &str,
    uploaded: u64,
    complete: bool,
) -> Result<(), StoreError> {
    let uploaded = i64::try_from(uploaded).map_err(|_| StoreError::Bad("blob offset".into()))?;
    tx.execute(
        "UPDATE blobs SET uploaded = ?2, complete = ?3 WHERE sha256 = ?1",
        params![sha, uploaded, i64::from(complete)],
    )?;
    Ok(())
}

mod sync_log;

pub use sync_log::SyncLogRow;
pub(crate) use sync_log::{sync_log, sync_log_add};

#[cfg(test)]
mod tests;
