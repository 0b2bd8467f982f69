// Long file: backup, restore and verify share the archive, its manifest and the checks.
//! Operating the relay: online backup, restore and verify (`propsync-server
//! admin backup|restore|verify`, and `serve --backup-every`).
//!
//! A **backup** is one `.tar.gz`: `propsync.sqlite3` (a consistent snapshot
//! taken with `VACUUM INTO` on a read-only connection, so the relay keeps
//! serving and writing while it runs), `blobs/<sha256>` for every finished
//! blob, and `manifest.json` last: the counts of what the snapshot holds and
//! every file's size and SHA-256.
//!
//! A **restore** refuses a non-empty target, checks every file against the
//! manifest and the counts against the database, then gives the restored
//! relay a new storage epoch, a new relay actor and a new dashboard actor
//! key (see [`restore`] for why), and verifies the result.
//!
//! **Verify** reads a data directory without changing it and lists every
//! problem: SQLite's own integrity check, documents that do not load (a
//! damaged chunk fails automerge's checksum), the ledgers against the
//! documents, gaps in the serial series, blobs missing or not matching
//! their hash.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use automerge::ReadDoc;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{self, records};

/// The backup archive's format; a restore refuses a newer one.
pub const BACKUP_FORMAT: u32 = 1;

/// The database file's name in a data directory and in an archive.
pub const DB_FILE: &str = "propsync.sqlite3";

/// The manifest's name in an archive.
pub const MANIFEST: &str = "manifest.json";

/// Why a backup, restore or verify could not run.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The request cannot be carried out as asked (a non-empty target, a
    /// damaged archive, a directory from a newer relay).
    #[error("{0}")]
    Refused(String),
}

/// The result of an operation.
pub type OpsResult<T> = Result<T, OpsError>;

fn io<T>(what: impl FnOnce() -> String, r: std::io::Result<T>) -> OpsResult<T> {
    r.map_err(|source| OpsError::Io {
        what: what(),
        source,
    })
}

/// How many of each kind of record a database holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Users.
    pub users: u64,
    /// Enrolled devices (dashboard ones included).
    pub devices: u64,
    /// Automerge documents.
    pub documents: u64,
    /// Stored incremental chunks.
    pub chunks: u64,
    /// Tickets in the register.
    pub tickets: u64,
    /// Serial numbers issued (number ledger rows).
    pub serials: u64,
    /// Received changes (change ledger rows).
    pub changes: u64,
    /// Judged events (verdict rows).
    pub verdicts: u64,
    /// Finished blobs.
    pub blobs: u64,
}

impl Counts {
    /// Counts the records of the database `conn` reads.
    ///
    /// # Errors
    /// SQLite errors.
    pub fn of(conn: &Connection) -> OpsResult<Self> {
        let n = |sql: &str| -> OpsResult<u64> {
            let v: i64 = conn.query_row(sql, [], |r| r.get(0))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(Self {
            users: n("SELECT count(*) FROM users")?,
            devices: n("SELECT count(*) FROM devices")?,
            documents: n("SELECT count(*) FROM documents")?,
            chunks: n("SELECT count(*) FROM chunks")?,
            tickets: n("SELECT count(*) FROM tickets")?,
            serials: n("SELECT count(*) FROM number_ledger")?,
            changes: n("SELECT count(*) FROM change_ledger")?,
            verdicts: n("SELECT count(*) FROM verdicts")?,
            blobs: n("SELECT count(*) FROM blobs WHERE complete = 1")?,
        })
    }
}

/// One file of an archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Its path in the archive (`propsync.sqlite3`, `blobs/<sha256>`).
    pub path: String,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
}

/// What a backup holds: written last into the archive.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// [`BACKUP_FORMAT`] of the relay that wrote it.
    pub format: u32,
    /// The relay's version (`propsync-server --version`).
    pub relay_version: String,
    /// The database's schema version (`PRAGMA user_version`).
    pub schema_version: u32,
    /// When the snapshot was taken (RFC 3339 UTC).
    pub taken_at: String,
    /// The storage epoch of the relay it was taken from.
    pub storage_epoch: Option<String>,
    /// What the database snapshot holds.
    pub counts: Counts,
    /// Every other file of the archive.
    pub files: Vec<FileEntry>,
}

/// A progress line for long runs: `done` of `total` items of `stage`.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// What is being done.
    pub stage: &'a str,
    /// Items done.
    pub done: u64,
    /// Items in all.
    pub total: u64,
    /// Bytes done.
    pub bytes: u64,
}

/// Progress reports go here (the command line prints them to stderr).
pub type OnProgress<'a> = &'a mut dyn FnMut(Progress<'_>);

/// A progress sink that prints at most about one line a second (and the last).
pub fn stderr_progress() -> impl FnMut(Progress<'_>) {
    let mut last: Option<Instant> = None;
    move |p: Progress<'_>| {
        let due = last.is_none_or(|t| t.elapsed().as_secs() >= 1);
        if due || p.done == p.total {
            last = Some(Instant::now());
            eprintln!(
                "{}: {}/{} ({} KiB)",
                p.stage,
                p.done,
                p.total,
                p.bytes / 1024
            );
        }
    }
}

fn sha256_file(path: &Path) -> OpsResult<(u64, String)> {
    let mut f = io(|| format!("opening {}", path.display()), File::open(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut n = 0_u64;
    loop {
        let k = io(|| format!("reading {}", path.display()), f.read(&mut buf))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((n, hex::encode(h.finalize())))
}

fn is_blob_name(name: &str) -> bool {
    schema::judge::is_sha256_hex(name)
}

/// The finished blobs in a blob directory (names only, sorted).
fn blob_files(dir: &Path) -> OpsResult<Vec<String>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return io(|| format!("listing {}", dir.display()), Err(e)),
    };
    for e in entries {
        let e = io(|| format!("listing {}", dir.display()), e)?;
        if let Some(name) = e.file_name().to_str()
            && is_blob_name(name)
        {
            out.push(name.to_owned());
        }
    }
    out.sort();
    Ok(out)
}

fn schema_version(conn: &Connection) -> OpsResult<u32> {
    let v: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    Ok(u32::try_from(v).unwrap_or(0))
}

fn open_read_only(db: &Path) -> OpsResult<Connection> {
    if !db.exists() {
        return Err(OpsError::Refused(format!(
            "{} does not exist: this is not a relay's data directory",
            db.display()
        )));
    }
    let conn = Connection::open_with_flags(
        db,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(conn)
}

/// Takes a consistent copy of the database at `db` into `to` (which must not
/// exist) with `VACUUM INTO`, on a read-only connection: the relay may go on
/// serving and writing meanwhile.
///
/// # Errors
/// SQLite errors (a full disk).
pub fn snapshot_db(db: &Path, to: &Path) -> OpsResult<()> {
    let conn = open_read_only(db)?;
    let target = to
        .to_str()
        .ok_or_else(|| OpsError::Refused(format!("{} is not a UTF-8 path", to.display())))?;
    conn.execute("VACUUM INTO ?1", [target])?;
    Ok(())
}

/// A temporary path beside `path` (same file system, so a rename is atomic).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(format!(".{suffix}-{:08x}", rand::random::<u32>()));
    path.with_file_name(name)
}

/// Removes a file or directory when dropped, unless disarmed.
struct Cleanup(Option<PathBuf>);

impl Cleanup {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Backs up the data directory `data` into the archive `out` (written
/// beside it first, then renamed, so a half-written archive never has the
/// final name). The relay may be serving.
///
/// # Errors
/// `data` holds no database; I/O and SQLite errors. Nothing is left at `out`.
pub fn backup(data: &Path, out: &Path, progress: OnProgress<'_>) -> OpsResult<Manifest> {
    let db = data.join(DB_FILE);
    let snap = beside(out, "db");
    let mut snap_guard = Cleanup(Some(snap.clone()));
    progress(Progress {
        stage: "backup: database snapshot",
        done: 0,
        total: 1,
        bytes: 0,
    });
    snapshot_db(&db, &snap)?;
    let (schema, counts, epoch) = {
        let conn = open_read_only(&snap)?;
        (
            schema_version(&conn)?,
            Counts::of(&conn)?,
            records::meta(&conn, EPOCH_KEY).map_err(store_err)?,
        )
    };
    let (db_bytes, db_sha) = sha256_file(&snap)?;
    progress(Progress {
        stage: "backup: database snapshot",
        done: 1,
        total: 1,
        bytes: db_bytes,
    });
    let partial = beside(out, "partial");
    let mut partial_guard = Cleanup(Some(partial.clone()));
    let file = io(
        || format!("creating {}", partial.display()),
        File::create(&partial),
    )?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut files = vec![FileEntry {
        path: DB_FILE.into(),
        bytes: db_bytes,
        sha256: db_sha,
    }];
    io(
        || "writing the database into the archive".into(),
        tar.append_path_with_name(&snap, DB_FILE),
    )?;
    drop(snap_guard.0.take().map(std::fs::remove_file));
    snap_guard.disarm();
    // Blobs are content-addressed and never change once finished: every blob
    // the snapshot names as finished is on disk now (it was renamed into
    // place before its row was written). Later ones come along too.
    let blob_dir = data.join("blobs");
    let names = blob_files(&blob_dir)?;
    let total = names.len() as u64;
    let mut bytes = 0_u64;
    for (i, name) in names.iter().enumerate() {
        let path = blob_dir.join(name);
        let (n, sha) = sha256_file(&path)?;
        if &sha != name {
            tracing::warn!(blob = %name, "a blob does not match its hash; backed up as it is");
        }
        io(
            || format!("writing blob {name} into the archive"),
            tar.append_path_with_name(&path, format!("blobs/{name}")),
        )?;
        files.push(FileEntry {
            path: format!("blobs/{name}"),
            bytes: n,
            sha256: sha,
        });
        bytes += n;
        progress(Progress {
            stage: "backup: blobs",
            done: i as u64 + 1,
            total,
            bytes,
        });
    }
    let manifest = Manifest {
        format: BACKUP_FORMAT,
        relay_version: env!("CARGO_PKG_VERSION").into(),
        schema_version: schema,
        taken_at: schema::doc::rfc3339(chrono::Utc::now()),
        storage_epoch: epoch,
        counts,
        files,
    };
    let body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| OpsError::Refused(format!("the manifest: {e}")))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(body.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0));
    header.set_cksum();
    io(
        || "writing the manifest".into(),
        tar.append_data(&mut header, MANIFEST, body.as_slice()),
    )?;
    let gz = io(|| "finishing the archive".into(), tar.into_inner())?;
    let buf = io(|| "finishing the archive".into(), gz.finish())?;
    let file = buf.into_inner().map_err(|e| OpsError::Io {
        what: "flushing the archive".into(),
        source: e.into_error(),
    })?;
    io(|| "syncing the archive".into(), file.sync_all())?;
    io(
        || format!("renaming the archive to {}", out.display()),
        std::fs::rename(&partial, out),
    )?;
    partial_guard.disarm();
    if let Some(parent) = out.parent() {
        fsync_dir(parent);
    }
    Ok(manifest)
}

fn store_err(e: store::StoreError) -> OpsError {
    OpsError::Refused(e.to_string())
}

/// The meta key of the relay's storage epoch: a random id, new on every
/// restore, sent to devices in the `peer` message (`storageId`). A device
/// that sees it change forgets what it believed the relay has.
pub const EPOCH_KEY: &str = "storage_epoch";

/// The meta key listing relay actors retired by a restore (hex, comma
/// separated): changes by them coming back up from devices are refused,
/// never bound to a device.
pub const RETIRED_ACTORS_KEY: &str = "retired_relay_actors";

/// What a restore did.
#[derive(Debug)]
pub struct Restored {
    /// The archive's manifest.
    pub manifest: Manifest,
    /// Bytes of the archive.
    pub archive_bytes: u64,
    /// Files extracted and checked against the manifest.
    pub files_checked: u64,
    /// The restored relay's new storage epoch.
    pub epoch: String,
    /// What verify found in the restored directory.
    pub verify: VerifyReport,
}

fn is_empty_dir(dir: &Path) -> OpsResult<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => io(|| format!("reading {}", dir.display()), Err(e)),
    }
}

/// Restores the archive `from` into `data`, which must be empty or absent.
///
/// The files are extracted beside `data`, each checked against the
/// manifest (size and SHA-256, and a blob against its name), the database's
/// counts against the manifest's; only then is the directory renamed to
/// `data`. The restored relay gets:
/// - a new **storage epoch**, so devices that synced with the relay after
///   the backup forget what they believed it has and send it again;
/// - a new **relay actor** and **dashboard actor key**: the lost relay may
///   have written changes after the backup under the old ones that devices
///   still hold, and a second change with the same actor and sequence
///   number would break those devices' documents. Changes by the old relay
///   actor that come back up are refused (they cannot be told from a
///   forgery); the restored relay judges the devices' own changes again,
///   and an order numbered after the backup gets the next number of the
///   restored series.
///
/// # Errors
/// A non-empty target, a damaged or mismatched archive, a database from a
/// newer relay; I/O and SQLite errors. The target is left as it was.
pub fn restore(from: &Path, data: &Path, progress: OnProgress<'_>) -> OpsResult<Restored> {
    if !is_empty_dir(data)? {
        return Err(OpsError::Refused(format!(
            "{} is not empty; restore only into an empty or new directory",
            data.display()
        )));
    }
    let archive_bytes = io(
        || format!("reading {}", from.display()),
        std::fs::metadata(from),
    )?
    .len();
    let parent = match data.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    io(
        || format!("creating {}", parent.display()),
        std::fs::create_dir_all(&parent),
    )?;
    let staging = beside(data, "restoring");
    io(
        || format!("creating {}", staging.display()),
        std::fs::create_dir_all(staging.join("blobs")),
    )?;
    let mut guard = Cleanup(Some(staging.clone()));
    let file = io(|| format!("opening {}", from.display()), File::open(from))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut found: BTreeMap<String, (u64, String)> = BTreeMap::new();
    let mut manifest: Option<Manifest> = None;
    let mut read = 0_u64;
    let entries = io(|| "reading the archive".into(), tar.entries())?;
    for entry in entries {
        let mut entry = io(|| "reading the archive".into(), entry)?;
        let path = io(|| "reading the archive".into(), entry.path())?
            .to_string_lossy()
            .into_owned();
        if path == MANIFEST {
            let mut body = Vec::new();
            io(
                || "reading the manifest".into(),
                entry.read_to_end(&mut body),
            )?;
            manifest = Some(serde_json::from_slice(&body).map_err(|e| {
                OpsError::Refused(format!("the archive's manifest does not read: {e}"))
            })?);
            continue;
        }
        let ok = path == DB_FILE || path.strip_prefix("blobs/").is_some_and(is_blob_name);
        if !ok {
            return Err(OpsError::Refused(format!(
                "the archive holds an unexpected file {path:?}; it is not a relay backup"
            )));
        }
        let dest = staging.join(&path);
        let mut out = BufWriter::new(io(
            || format!("creating {}", dest.display()),
            File::create(&dest),
        )?);
        let mut h = Sha256::new();
        let mut buf = vec![0_u8; 64 * 1024];
        let mut n = 0_u64;
        loop {
            let k = io(
                || format!("reading {path} from the archive"),
                entry.read(&mut buf),
            )?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            io(
                || format!("writing {}", dest.display()),
                out.write_all(&buf[..k]),
            )?;
            n += k as u64;
        }
        let f = out.into_inner().map_err(|e| OpsError::Io {
            what: format!("writing {}", dest.display()),
            source: e.into_error(),
        })?;
        io(|| format!("syncing {}", dest.display()), f.sync_all())?;
        read += n;
        found.insert(path, (n, hex::encode(h.finalize())));
        progress(Progress {
            stage: "restore: files",
            done: found.len() as u64,
            total: found.len() as u64,
            bytes: read,
        });
    }
    let manifest = manifest.ok_or_else(|| {
        OpsError::Refused("the archive has no manifest.json; it is not a relay backup".into())
    })?;
    if manifest.format > BACKUP_FORMAT {
        return Err(OpsError::Refused(format!(
            "the archive is backup format {}, newer than this relay's ({BACKUP_FORMAT}); restore it with relay {} or later",
            manifest.format, manifest.relay_version
        )));
    }
    let mut problems = Vec::new();
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    for f in &manifest.files {
        match found.get(&f.path) {
            None => problems.push(format!("{} is listed but missing from the archive", f.path)),
            Some((n, sha)) if *n != f.bytes || *sha != f.sha256 => problems.push(format!(
                "{} is {n} bytes with SHA-256 {sha}; the manifest says {} bytes, {}",
                f.path, f.bytes, f.sha256
            )),
            Some(_) => {}
        }
        if let Some(name) = f.path.strip_prefix("blobs/")
            && name != f.sha256
        {
            problems.push(format!(
                "blob {name} does not match its hash ({})",
                f.sha256
            ));
        }
    }
    for path in found.keys() {
        if !listed.contains(path.as_str()) {
            problems.push(format!("{path} is in the archive but not in its manifest"));
        }
    }
    if !problems.is_empty() {
        return Err(OpsError::Refused(format!(
            "the archive does not match its manifest; nothing was restored:\n  {}",
            problems.join("\n  ")
        )));
    }
    let db = staging.join(DB_FILE);
    let epoch = hex::encode(rand::random::<[u8; 16]>());
    {
        let mut conn = Connection::open(&db)?;
        let version = schema_version(&conn)?;
        if version as usize > store::SCHEMA_VERSION {
            return Err(OpsError::Refused(format!(
                "the backup's database is schema version {version}; this relay knows up to {}: restore it with a newer relay",
                store::SCHEMA_VERSION
            )));
        }
        let counts = Counts::of(&conn)?;
        if counts != manifest.counts {
            return Err(OpsError::Refused(format!(
                "the restored database holds {counts:?}; the manifest says {:?}",
                manifest.counts
            )));
        }
        let tx = conn.transaction()?;
        let old_actor: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = 'relay_actor'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let retired: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key = ?1",
                [RETIRED_ACTORS_KEY],
                |r| r.get(0),
            )
            .optional()?;
        let mut list: Vec<String> = retired
            .map(|r| r.split(',').map(str::to_owned).collect())
            .unwrap_or_default();
        list.extend(old_actor);
        list.retain(|a| !a.is_empty());
        let set = |k: &str, v: &str| {
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                params![k, v],
            )
        };
        set(RETIRED_ACTORS_KEY, &list.join(","))?;
        set("relay_actor", &hex::encode(rand::random::<[u8; 16]>()))?;
        set("web_actor_key", &hex::encode(rand::random::<[u8; 32]>()))?;
        set(EPOCH_KEY, &epoch)?;
        set("restored_from", &manifest.taken_at)?;
        tx.commit()?;
    }
    if data.exists() {
        io(
            || format!("removing the empty {}", data.display()),
            std::fs::remove_dir(data),
        )?;
    }
    io(
        || format!("moving the restored files to {}", data.display()),
        std::fs::rename(&staging, data),
    )?;
    guard.disarm();
    fsync_dir(&parent);
    let verify = verify(data, progress)?;
    Ok(Restored {
        files_checked: found.len() as u64,
        manifest,
        archive_bytes,
        epoch,
        verify,
    })
}

/// What verify found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Every problem, one line each.
    pub problems: Vec<String>,
    /// What was checked and found sound.
    pub counts: Counts,
    /// Documents loaded.
    pub documents_loaded: u64,
    /// Serial numbers checked for continuity.
    pub serials_checked: u64,
    /// Blob files hashed.
    pub blobs_hashed: u64,
    /// Merged ledger changes found in their documents.
    pub changes_checked: u64,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks a data directory without changing it (the relay may be serving):
/// SQLite's integrity check, the schema version, every document loads
/// (automerge checks each chunk's checksum), every accepted change in the
/// ledger is in its document, every ticket's serial is in the number ledger
/// and every series runs 1..=last without gap or repeat, every finished blob
/// is on disk with the right size and hash.
///
/// # Errors
/// Only when it cannot run at all (no database); problems found are in the
/// report.
pub fn verify(data: &Path, progress: OnProgress<'_>) -> OpsResult<VerifyReport> {
    let db = data.join(DB_FILE);
    let conn = open_read_only(&db)?;
    // Read everything from one snapshot while the relay may be writing.
    conn.execute_batch("BEGIN")?;
    let mut r = VerifyReport::default();
    let version = schema_version(&conn)?;
    if version as usize > store::SCHEMA_VERSION {
        return Err(OpsError::Refused(format!(
            "the database is schema version {version}; this relay knows up to {}: verify it with a newer relay",
            store::SCHEMA_VERSION
        )));
    }
    let check: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if check != ["ok"] {
        r.problems
            .extend(check.into_iter().map(|c| format!("sqlite integrity: {c}")));
        // The rest may not read; say what SQLite said and stop here.
        return Ok(r);
    }
    if (version as usize) < store::SCHEMA_VERSION {
        r.problems.push(format!(
            "the database is schema version {version}; this relay migrates it to {} when it next opens it",
            store::SCHEMA_VERSION
        ));
    }
    r.counts = Counts::of(&conn)?;
    check_documents(&conn, &mut r, progress)?;
    check_serials(&conn, &mut r)?;
    check_blobs(&conn, &data.join("blobs"), &mut r, progress)?;
    conn.execute_batch("COMMIT")?;
    Ok(r)
}

fn check_documents(
    conn: &Connection,
    r: &mut VerifyReport,
    progress: OnProgress<'_>,
) -> OpsResult<()> {
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM documents ORDER BY doc_id")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let total = ids.len() as u64;
    let mut ledger = conn.prepare(
        "SELECT hash FROM change_ledger WHERE doc_id = ?1 AND outcome IN ('accepted', 'conflict', 'rejected')",
    )?;
    for (i, id) in ids.iter().enumerate() {
        let Ok(doc_id) = id.parse::<schema::DocId>() else {
            r.problems
                .push(format!("document {id:?}: not a document id"));
            continue;
        };
        let loaded = records::load_document(conn, doc_id)
            .map_err(store_err)
            .and_then(|d| {
                d.ok_or_else(|| OpsError::Refused("vanished".into()))?
                    .assemble()
                    .map_err(store_err)
            });
        match loaded {
            Err(e) => r.problems.push(format!("document {id} does not load: {e}")),
            Ok(doc) => {
                r.documents_loaded += 1;
                if let Some(problem) = check_model(conn, id, &doc)? {
                    r.problems.push(problem);
                }
                let hashes: Vec<String> = ledger
                    .query_map([id], |row| row.get(0))?
                    .collect::<Result<_, _>>()?;
                for h in hashes {
                    let present = hex::decode(&h)
                        .ok()
                        .and_then(|b| automerge::ChangeHash::try_from(b.as_slice()).ok())
                        .is_some_and(|hash| doc.get_change_by_hash(&hash).is_some());
                    if present {
                        r.changes_checked += 1;
                    } else {
                        r.problems.push(format!(
                            "document {id}: the change ledger accepted change {h}, the document does not hold it"
                        ));
                    }
                }
            }
        }
        progress(Progress {
            stage: "verify: documents",
            done: i as u64 + 1,
            total,
            bytes: 0,
        });
    }
    let orphans: Vec<String> = conn
        .prepare(
            "SELECT t.doc_id FROM tickets t LEFT JOIN documents d ON d.doc_id = t.doc_id
             WHERE d.doc_id IS NULL",
        )?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for t in orphans {
        r.problems.push(format!(
            "ticket {t} is in the register but its document is missing"
        ));
    }
    Ok(())
}

/// A ticket's read model (what the reports read) must be the ticket its
/// document holds.
fn check_model(
    conn: &Connection,
    id: &str,
    doc: &automerge::Automerge,
) -> OpsResult<Option<String>> {
    if schema::doc::doc_kind(doc) != Some(schema::inbox::DocKind::Ticket) {
        return Ok(None);
    }
    let Ok(ticket) = schema::doc::read_ticket(doc, None) else {
        return Ok(None);
    };
    let body: Option<String> = conn
        .query_row(
            "SELECT body FROM ticket_models WHERE doc_id = ?1",
            [id],
            |row| row.get(0),
        )
        .optional()?;
    let Some(body) = body else {
        return Ok(Some(format!(
            "ticket {id} has no read model: the reports leave it out"
        )));
    };
    let same = serde_json::from_str::<schema::Ticket>(&body).is_ok_and(|m| m == ticket);
    Ok((!same).then(|| format!("ticket {id}: the reports' read model differs from its document")))
}

fn check_serials(conn: &Connection, r: &mut VerifyReport) -> OpsResult<()> {
    let series: Vec<(String, i64, i64)> = conn
        .prepare("SELECT series, year, last FROM number_series ORDER BY series, year")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut seen_series = HashSet::new();
    for (s, year, last) in series {
        seen_series.insert((s.clone(), year));
        let numbers: Vec<i64> = conn
            .prepare(
                "SELECT number FROM number_ledger WHERE series = ?1 AND year = ?2 ORDER BY number",
            )?
            .query_map(params![s, year], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let mut expect = 1_i64;
        for n in &numbers {
            if *n != expect {
                r.problems.push(format!(
                    "serial series {s} {year}: number {expect} is missing (next is {n})"
                ));
            }
            expect = n + 1;
        }
        r.serials_checked += numbers.len() as u64;
        if numbers.last().copied().unwrap_or(0) != last {
            r.problems.push(format!(
                "serial series {s} {year}: the counter says {last} were issued, the ledger ends at {}",
                numbers.last().copied().unwrap_or(0)
            ));
        }
    }
    let strays: Vec<(String, i64)> = conn
        .prepare("SELECT DISTINCT series, year FROM number_ledger")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (s, year) in strays {
        if !seen_series.contains(&(s.clone(), year)) {
            r.problems.push(format!(
                "serial series {s} {year} has numbers but no counter"
            ));
        }
    }
    let unledgered: Vec<(String, String)> = conn
        .prepare(
            "SELECT t.doc_id, t.serial FROM tickets t LEFT JOIN number_ledger n ON n.doc_id = t.doc_id
             WHERE t.serial IS NOT NULL AND n.doc_id IS NULL",
        )?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (doc, serial) in unledgered {
        r.problems.push(format!(
            "ticket {doc} carries serial {serial}, which the number ledger never issued"
        ));
    }
    Ok(())
}

fn check_blobs(
    conn: &Connection,
    dir: &Path,
    r: &mut VerifyReport,
    progress: OnProgress<'_>,
) -> OpsResult<()> {
    let rows: Vec<(String, i64)> = conn
        .prepare("SELECT sha256, size FROM blobs WHERE complete = 1 ORDER BY sha256")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let total = rows.len() as u64;
    let mut bytes = 0_u64;
    for (i, (sha, size)) in rows.iter().enumerate() {
        let path = dir.join(sha);
        if !is_blob_name(sha) {
            r.problems
                .push(format!("blob row {sha:?} is not a SHA-256"));
        } else if !path.exists() {
            r.problems
                .push(format!("blob {sha} is missing from {}", dir.display()));
        } else {
            match sha256_file(&path) {
                Err(e) => r.problems.push(format!("blob {sha}: {e}")),
                Ok((n, got)) => {
                    bytes += n;
                    r.blobs_hashed += 1;
                    if got != *sha {
                        r.problems.push(format!(
                            "blob {sha} does not match its hash (it hashes to {got})"
                        ));
                    }
                    if i64::try_from(n).ok() != Some(*size) {
                        r.problems
                            .push(format!("blob {sha} is {n} bytes; the store says {size}"));
                    }
                }
            }
        }
        progress(Progress {
            stage: "verify: blobs",
            done: i as u64 + 1,
            total,
            bytes,
        });
    }
    Ok(())
}

/// Keeps the newest `keep` archives named `propsync-*.tar.gz` in `dir`,
/// deleting older ones; returns how many were deleted.
///
/// # Errors
/// I/O errors listing or deleting.
pub fn prune_backups(dir: &Path, keep: usize) -> OpsResult<usize> {
    let mut names: Vec<String> = Vec::new();
    for e in io(
        || format!("listing {}", dir.display()),
        std::fs::read_dir(dir),
    )? {
        let e = io(|| format!("listing {}", dir.display()), e)?;
        if let Some(n) = e.file_name().to_str()
            && n.starts_with("propsync-")
            && n.ends_with(".tar.gz")
        {
            names.push(n.to_owned());
        }
    }
    // The names carry a sortable UTC time stamp.
    names.sort();
    let drop = names.len().saturating_sub(keep.max(1));
    for n in &names[..drop] {
        io(
            || format!("deleting {n}"),
            std::fs::remove_file(dir.join(n)),
        )?;
    }
    Ok(drop)
}

/// The file name of a scheduled backup taken at `at`.
pub fn backup_name(at: chrono::DateTime<chrono::Utc>) -> String {
    format!("propsync-{}.tar.gz", at.format("%Y%m%dT%H%M%SZ"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn pruning_keeps_the_newest_scheduled_backups_and_nothing_else_is_touched() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let t0 = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        for h in 0..5 {
            let name = super::backup_name(t0 + chrono::Duration::hours(h));
            std::fs::write(dir.path().join(name), b"x").expect("written");
        }
        std::fs::write(dir.path().join("by-hand.tar.gz"), b"x").expect("written");
        assert_eq!(super::prune_backups(dir.path(), 2).expect("pruned"), 3);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .expect("listed")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "by-hand.tar.gz".to_owned(),
                super::backup_name(t0 + chrono::Duration::hours(3)),
                super::backup_name(t0 + chrono::Duration::hours(4)),
            ]
        );
    }
}
