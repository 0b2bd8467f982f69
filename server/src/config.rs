//! The relay's configuration, read once at start.

use std::net::SocketAddr;
use std::path::PathBuf;

use chrono::Duration;

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
    /// How long a document nobody syncs or writes stays in memory.
    pub doc_idle: std::time::Duration,
    /// The built field app served at `/app/` (`client-core/web/build.sh`
    /// writes it to the workspace's `target/field-app`, the default).
    pub app_dir: PathBuf,
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
            app_dir: default_app_dir(),
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

/// Where `client-core/web/build.sh` puts the field app in this checkout.
pub fn default_app_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/field-app"))
}
