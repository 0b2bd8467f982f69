//! The relay's configuration, read once at start.

use std::net::{IpAddr, SocketAddr};
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
    /// Rate limits and lock-out at the relay's edge.
    pub limits: Limits,
    /// How often refusals gathered for the security log are written (one
    /// transaction for all of them).
    pub security_log_flush: std::time::Duration,
    /// Bytes one device may upload to the blob store per UTC day.
    pub blob_quota_per_day: u64,
    /// An unfinished upload (`.part`) untouched this long is deleted.
    pub blob_part_max_age: std::time::Duration,
    /// How often abandoned uploads are looked for (also once at start-up).
    pub blob_sweep_every: std::time::Duration,
    /// Mark the session cookie `Secure` (set when the relay is reached over
    /// HTTPS, directly or through a TLS-terminating proxy).
    pub secure_cookies: bool,
    /// The clock every relay decision reads: verdict and receipt times, due
    /// times, serial years, token lifetimes, report defaults.
    pub clock: TimeSource,
    /// The built field app served at `/app/` (`client-core/web/build.sh`
    /// writes it to the workspace's `target/field-app`, the default).
    pub app_dir: PathBuf,
}

/// Rate limits per client address and per user name, and the login lock-out.
/// A rate of 0 turns that limit off.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Requests (REST and `/sync` upgrades) per second one client address may
    /// make on average.
    pub per_address_per_second: u32,
    /// The burst one client address may make at once.
    pub per_address_burst: u32,
    /// Login attempts per minute from one client address.
    pub logins_per_minute_per_address: u32,
    /// The burst of login attempts from one client address.
    pub login_burst_per_address: u32,
    /// Login attempts per minute for one user name.
    pub logins_per_minute_per_user: u32,
    /// The burst of login attempts for one user name.
    pub login_burst_per_user: u32,
    /// Failed logins in a row after which a user name is locked out (0: never).
    pub lockout_after: u32,
    /// The first lock-out's length; each further one doubles it.
    pub lockout_base: std::time::Duration,
    /// The longest lock-out.
    pub lockout_max: std::time::Duration,
    /// Reverse proxies whose `X-Forwarded-For` names the client; any other
    /// peer's header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
}

impl Default for Limits {
    /// Production defaults: generous enough for an office of dashboard users
    /// and a site's phones behind one NAT address, tight enough that one
    /// address cannot make the relay write or hash without pause.
    fn default() -> Self {
        Self {
            per_address_per_second: 100,
            per_address_burst: 1_000,
            logins_per_minute_per_address: 30,
            login_burst_per_address: 60,
            logins_per_minute_per_user: 10,
            login_burst_per_user: 10,
            lockout_after: 5,
            lockout_base: std::time::Duration::from_secs(60),
            lockout_max: std::time::Duration::from_secs(3_600),
            trusted_proxies: Vec::new(),
        }
    }
}

impl Limits {
    /// Every rate limit and the lock-out off: for load tests and benchmarks
    /// that drive hundreds of devices from one address.
    pub fn off() -> Self {
        Self {
            per_address_per_second: 0,
            logins_per_minute_per_address: 0,
            logins_per_minute_per_user: 0,
            lockout_after: 0,
            ..Self::default()
        }
    }
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
            limits: Limits::default(),
            security_log_flush: std::time::Duration::from_millis(250),
            blob_quota_per_day: 1024 * 1024 * 1024,
            blob_part_max_age: std::time::Duration::from_secs(24 * 3_600),
            blob_sweep_every: std::time::Duration::from_secs(3_600),
            secure_cookies: false,
            clock: TimeSource::system(),
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
