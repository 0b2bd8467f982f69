//! The relay's configuration, read once at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};

/// Where the relay reads the time: the system clock, or (set in code by
/// tests) a clock they move. There is no flag or environment variable for
/// it: a deployment always runs on the system clock.
#[derive(Clone)]
pub struct TimeSource(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl TimeSource {
    /// The system clock.
    pub fn system() -> Self {
        Self(Arc::new(Utc::now))
    }

    /// A clock read from `now` (tests: a time they set and advance).
    pub fn from_fn(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Self(Arc::new(now))
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for TimeSource {
    fn default() -> Self {
        Self::system()
    }
}

impl std::fmt::Debug for TimeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TimeSource({})", self.now())
    }
}

/// Where the relay keeps its data and how it behaves.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory (database, blobs, demo credentials).
    pub data_dir: PathBuf,
    /// The address to listen on.
    pub listen: SocketAddr,
    /// How long a dashboard session token lasts.
    pub session_ttl: Duration,
    /// How long a device token lasts.
    pub device_ttl: Duration,
    /// The largest WebSocket frame accepted.
    pub max_frame_bytes: usize,
    /// Messages per second a connection may send on average.
    pub messages_per_second: u32,
    /// The burst a connection may send at once.
    pub message_burst: u32,
    /// The largest blob (photo) accepted.
    pub max_blob_bytes: u64,
    /// The largest single Automerge change accepted.
    pub max_change_bytes: usize,
    /// The most pages the database may grow to (`PRAGMA max_page_count` on the
    /// writer), to bound its size; `None` leaves SQLite's own limit.
    pub max_db_pages: Option<u32>,
    /// How long a document nobody syncs or writes stays in memory (wall
    /// time: the sweeper runs on tokio's clock, never on [`Config::clock`]).
    pub doc_idle: std::time::Duration,
    /// The clock every relay decision reads: verdict and receipt times, due
    /// times, serial years, token lifetimes, report defaults.
    pub clock: TimeSource,
}

impl Config {
    /// The defaults, in `data_dir`, listening on `listen`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Self {
            data_dir,
            listen,
            session_ttl: Duration::hours(12),
            device_ttl: Duration::days(365),
            max_frame_bytes: 8 * 1024 * 1024,
            messages_per_second: 200,
            message_burst: 2_000,
            max_blob_bytes: 20 * 1024 * 1024,
            max_change_bytes: 256 * 1024,
            max_db_pages: None,
            doc_idle: std::time::Duration::from_secs(10),
            clock: TimeSource::system(),
        }
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("propsync.sqlite3")
    }

    /// The blob directory.
    pub fn blob_dir(&self) -> PathBuf {
        self.data_dir.join("blobs")
    }
}
