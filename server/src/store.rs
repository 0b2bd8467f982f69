//! The relay's SQLite store: one writer thread with group commit, a small
//! pool of readers, migrations by `PRAGMA user_version` (DESIGN.md §7).
//!
//! Writes are closures that take a `&Transaction`; the writer runs every job
//! queued at that moment in one transaction (each in its own savepoint, so one
//! failing job does not fail the others) and one fsync, then answers each job.
//! Reads are closures that take a `&Connection` and run on the blocking pool.
//!
//! **Architecture Invariant:** nothing is acknowledged to a peer before the
//! transaction that holds it has committed with `synchronous=FULL`.

pub(crate) mod edges;
pub(crate) mod records;
pub(crate) mod storage;

pub(crate) use records::models::Numbered;
pub(crate) use storage::ReportStore;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

/// Why the store could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (a full disk, an I/O error, a constraint).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The disk (or the database's page limit) is full: writes are refused, reads go on.
    #[error("the relay's storage is full; new writes are refused until space is freed")]
    Full,
    /// A stored document or value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// A rule of the data (a unique name, a gap in the number ledger).
    #[error("{0}")]
    Conflict(String),
    /// The writer thread has stopped.
    #[error("the storage writer has stopped")]
    Closed,
    /// The database was written by a newer relay: it is left untouched.
    #[error(
        "the database is schema version {found}, made by a newer relay; this relay knows up to version {known}. \
         Run the newer relay, or restore a backup taken before the upgrade"
    )]
    TooNew {
        /// The database's version.
        found: usize,
        /// The newest this relay knows.
        known: usize,
    },
}

impl StoreError {
    /// Maps SQLite's "disk full" to [`StoreError::Full`].
    fn classify(e: rusqlite::Error) -> Self {
        match &e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
                StoreError::Full
            }
            _ => StoreError::Sqlite(e),
        }
    }
}

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

type Completion = Box<dyn FnOnce(StoreResult<()>) + Send>;
type Job = Box<dyn FnOnce(&Transaction<'_>) -> (Ran, Completion) + Send>;

/// How a job went, for the writer (its result goes to its completion).
#[derive(Clone, Copy, Debug)]
enum Ran {
    Ok,
    /// It failed; `full` when the disk (or page limit) was full.
    Failed {
        full: bool,
    },
}

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/001_init.sql"),
    include_str!("../migrations/002_inboxes.sql"),
    include_str!("../migrations/003_edges.sql"),
    include_str!("../migrations/004_enrolment.sql"),
    include_str!("../migrations/005_heads_digest.sql"),
    include_str!("../migrations/006_property_and_fees.sql"),
    include_str!("../migrations/007_ticket_models.sql"),
    include_str!("../migrations/008_ticket_callers.sql"),
];

/// Most jobs one transaction takes, so one commit never waits too long.
const GROUP_MAX: usize = 256;

/// The store: a handle to the writer thread and the reader pool. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: mpsc::UnboundedSender<Job>,
    readers: Mutex<Vec<Connection>>,
    /// Write transactions committed (each one fsync), for tests and health.
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn open_connection(path: &Path, write: bool) -> StoreResult<Connection> {
    let flags = if write {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    if write {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
    }
    Ok(conn)
}

/// The schema version this relay writes: the number of migrations it knows.
/// A data directory stores its version in `PRAGMA user_version`.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Brings the database up to [`SCHEMA_VERSION`]: every missing migration in
/// one transaction (all or nothing), after copying the database to
/// `<db>.before-v<old>-to-v<new>` with `VACUUM INTO`. A database from a
/// newer relay is refused and left as it is.
fn migrate(conn: &mut Connection, path: &Path) -> StoreResult<()> {
    let version: usize = conn
        .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
        .map(|v| usize::try_from(v).unwrap_or(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::TooNew {
            found: version,
            known: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    if version > 0 {
        // An existing property: keep a copy of it as it was before the upgrade.
        let copy = path.with_file_name(format!(
            "{}.before-v{version}-to-v{SCHEMA_VERSION}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("propsync.sqlite3")
        ));
        if !copy.exists() {
            let target = copy.to_string_lossy().into_owned();
            conn.execute("VACUUM INTO ?1", [target])?;
            tracing::warn!(
                from = version,
                to = SCHEMA_VERSION,
                copy = %copy.display(),
                "upgrading the database; a copy of it as it was is kept"
            );
        }
    }
    let tx = conn.transaction()?;
    for sql in MIGRATIONS.iter().skip(version) {
        tx.execute_batch(sql)?;
    }
    tx.pragma_update(
        None,
        "user_version",
        i64::try_from(SCHEMA_VERSION).unwrap_or(i64::MAX),
    )?;
    tx.commit()?;
    Ok(())
}

impl Db {
    /// Opens (creating and migrating if needed) the database at `path` and
    /// starts its writer thread.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: &Path) -> StoreResult<Self> {
        Self::open_with_limit(path, None)
    }

    /// [`Db::open`] with the writer limited to `max_pages` pages (`PRAGMA
    /// max_page_count`): past it, writes fail with [`StoreError::Full`].
    ///
    /// # Errors
    /// As [`Db::open`].
    pub fn open_with_limit(path: &Path, max_pages: Option<u32>) -> StoreResult<Self> {
        let mut conn = open_connection(path, true)?;
        migrate(&mut conn, path)?;
        records::models::backfill(&mut conn)?;
        if let Some(pages) = max_pages {
            // SQLite answers with the limit it applied; it never goes below the
            // database's current size.
            conn.pragma_update_and_check(None, "max_page_count", pages, |_| Ok(()))?;
        }
        let (tx, rx) = mpsc::unbounded_channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = commits.clone();
        thread::Builder::new()
            .name("db-writer".into())
            .spawn(move || writer_loop(conn, rx, &counter))
            .map_err(|e| StoreError::Corrupt(format!("cannot start the writer thread: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: tx,
                readers: Mutex::new(Vec::new()),
                commits,
            }),
        })
    }

    /// How many write transactions (each one fsync) have been committed.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(Ordering::Relaxed)
    }

    /// Runs `f` in the next group transaction and waits until it is durable.
    ///
    /// # Errors
    /// `f`'s own error (its savepoint is rolled back, the others commit), or the
    /// commit's.
    pub async fn write<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Transaction<'_>) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(f, tx)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Waits until every write handed to the store before this call is done
    /// (committed or refused).
    ///
    /// # Errors
    /// The writer thread has stopped.
    pub async fn flush(&self) -> StoreResult<()> {
        self.write(|_| Ok(())).await
    }

    /// [`Db::write`] for callers outside the async runtime (admin commands).
    ///
    /// # Errors
    /// As [`Db::write`].
    pub fn write_blocking<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Transaction<'_>) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        self.submit(f, tx)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)?
    }

    fn submit<R, F>(&self, f: F, reply: oneshot::Sender<StoreResult<R>>) -> StoreResult<()>
    where
        F: FnOnce(&Transaction<'_>) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let job: Job = Box::new(move |t| {
            let result = f(t).map_err(|e| match e {
                StoreError::Sqlite(e) => StoreError::classify(e),
                other => other,
            });
            let ran = match &result {
                Ok(_) => Ran::Ok,
                Err(e) => Ran::Failed {
                    full: matches!(e, StoreError::Full),
                },
            };
            let completion: Completion = Box::new(move |commit: StoreResult<()>| {
                let _ = reply.send(match (result, commit) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) | (Ok(_), Err(e)) => Err(e),
                });
            });
            (ran, completion)
        });
        self.inner.writer.send(job).map_err(|_| StoreError::Closed)
    }

    /// Runs `f` on a reader connection, off the async threads.
    ///
    /// # Errors
    /// `f`'s error, or opening a reader failed.
    pub async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
        R: Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read_blocking(f))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// [`Db::read`] on the current thread.
    ///
    /// # Errors
    /// As [`Db::read`].
    pub fn read_blocking<R, F>(&self, f: F) -> StoreResult<R>
    where
        F: FnOnce(&Connection) -> StoreResult<R>,
    {
        let conn = self
            .inner
            .readers
            .lock()
            .map_err(|_| StoreError::Closed)?
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => open_connection(&self.inner.path, false)?,
        };
        let result = f(&conn);
        if let Ok(mut pool) = self.inner.readers.lock()
            && pool.len() < 8
        {
            pool.push(conn);
        }
        result
    }
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::UnboundedReceiver<Job>, commits: &AtomicU64) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = VecDeque::from([first]);
        while jobs.len() < GROUP_MAX {
            match rx.try_recv() {
                Ok(j) => jobs.push_back(j),
                Err(_) => break,
            }
        }
        while !jobs.is_empty() {
            if run_group(&mut conn, &mut jobs) {
                commits.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Runs jobs from the front of `jobs` in one group transaction; true when
/// it committed. Each job has its own savepoint, so a failing job leaves
/// nothing and the others commit. But SQLite may roll the whole transaction
/// back on its own when a statement fails (a full disk, an I/O error): then
/// every job of the group so far is answered with that failure, and the
/// ones not run yet are left in `jobs` for a new transaction. (Run on
/// regardless, they would each commit by themselves, outside any group,
/// while being told they failed.)
fn run_group(conn: &mut Connection, jobs: &mut VecDeque<Job>) -> bool {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            // Dropping the jobs answers each with `StoreError::Closed`.
            tracing::error!(error = %e, "cannot begin a write transaction");
            jobs.clear();
            return false;
        }
    };
    let mut completions: Vec<Completion> = Vec::with_capacity(jobs.len());
    let mut rolled_back = None;
    while let Some(job) = jobs.pop_front() {
        let name = format!("job{}", completions.len());
        if let Err(e) = tx.execute_batch(&format!("SAVEPOINT {name}")) {
            // The job is dropped unrun, which answers it with `Closed`.
            tracing::error!(error = %e, "savepoint failed");
            continue;
        }
        let (ran, completion) = job(&tx);
        if let Ran::Failed { .. } = ran {
            // A failing job leaves nothing behind; the others still commit.
            let _ = tx.execute_batch(&format!("ROLLBACK TO {name}"));
        }
        if tx.is_autocommit() {
            completions.push(completion);
            rolled_back = Some(if matches!(ran, Ran::Failed { full: true }) {
                StoreError::Full
            } else {
                StoreError::Conflict("the write transaction was rolled back by the database".into())
            });
            break;
        }
        let _ = tx.execute_batch(&format!("RELEASE {name}"));
        completions.push(completion);
    }
    let commit = match rolled_back {
        Some(e) => {
            tracing::error!(error = %e, "a group transaction was rolled back by the database");
            drop(tx);
            Err(e)
        }
        None => tx.commit().map_err(StoreError::classify),
    };
    if let Err(e) = &commit {
        tracing::error!(error = %e, "group commit failed");
    }
    let committed = commit.is_ok();
    for c in completions {
        c(match &commit {
            Ok(()) => Ok(()),
            Err(StoreError::Full) => Err(StoreError::Full),
            Err(e) => Err(StoreError::Conflict(format!("commit failed: {e}"))),
        });
    }
    committed
}

#[cfg(test)]
mod tests;
