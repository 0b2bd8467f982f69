//! Shared helpers for the integration tests: a relay in-process on
//! `127.0.0.1:0` with its own data directory and demo property, the relay
//! binary as a child process (for kill -9 tests), REST and device clients,
//! and waiting on conditions with deadlines (never sleeping for state).

#![allow(
    missing_debug_implementations,
    reason = "test fixtures; their fields are not worth printing"
)]

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use chrono::{DateTime, Utc};
use client_core::Device;
use serde_json::Value;
use server::demo::DemoUser;
use server::schema::{DeviceId, UserId};

pub use client_core;
pub use server;

/// A clock tests set and move: milliseconds since the epoch in a `static`,
/// so the relay ([`TestClock::source`]) and a device's plain
/// `fn() -> DateTime<Utc>` (a function reading the same static) see one
/// time. It moves only when the test moves it; wall time (timeouts, the
/// relay's idle sweep) is untouched.
#[derive(Clone, Copy, Debug)]
pub struct TestClock(&'static AtomicI64);

impl TestClock {
    /// A clock kept in `cell` (a test's own `static`).
    pub const fn new(cell: &'static AtomicI64) -> Self {
        Self(cell)
    }

    /// The time now.
    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    /// Sets the time (it may only move forward in a test that issues tokens).
    pub fn set(&self, t: DateTime<Utc>) {
        self.0.store(t.timestamp_millis(), Ordering::SeqCst);
    }

    /// Moves the time on.
    pub fn advance(&self, by: chrono::Duration) {
        self.0.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }

    /// The relay's time source reading this clock.
    pub fn source(&self) -> server::TimeSource {
        let cell = self.0;
        server::TimeSource::from_fn(move || {
            DateTime::from_timestamp_millis(cell.load(Ordering::SeqCst)).unwrap_or_default()
        })
    }
}

/// A relay running in this process, on its own data directory.
pub struct TestRelay {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The relay's state, for admin calls.
    pub relay: server::Relay,
    /// The demo users' credentials.
    pub creds: BTreeMap<String, DemoUser>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestRelay {
    /// Starts a relay with the demo property.
    pub async fn start() -> Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts a relay on `clock`, set to `at`, with the demo property seeded
    /// at that time; `tune` adjusts the rest of the configuration.
    pub async fn start_at(
        clock: TestClock,
        at: DateTime<Utc>,
        tune: impl FnOnce(&mut server::Config),
    ) -> Result<Self> {
        clock.set(at);
        Self::start_with(|c| {
            c.clock = clock.source();
            tune(c);
        })
        .await
    }

    /// Starts a relay with the demo property and a configuration `tune` adjusts.
    /// The rate limits and the login lock-out start off (the tests drive many
    /// clients from one address, as the soak and the bench do); the edge's
    /// own tests (`edge.rs`) turn them on.
    pub async fn start_with(tune: impl FnOnce(&mut server::Config)) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("propsync-test-")
            .tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mut config = server::Config::new(dir.path().join("relay"), addr);
        config.limits = server::Limits::off();
        tune(&mut config);
        let relay = server::open(config).await?;
        let creds = server::demo::seed(&relay)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .context("seeded twice")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let r = relay.clone();
        let task = tokio::spawn(async move {
            let _ = server::serve(listener, r, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            relay,
            creds,
            dir,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// A REST client logged in as a demo user.
    pub async fn api(&self, user: &str) -> Result<Api> {
        let password = &self.creds.get(user).context("no such demo user")?.password;
        Api::login(&self.url, user, password).await
    }

    /// The demo user's own phone, enrolled.
    pub async fn device(&self, user: &str) -> Result<Device> {
        let token = self
            .creds
            .get(user)
            .context("no such demo user")?
            .device_token
            .clone();
        self.device_with_token(user, &token).await
    }

    /// Another phone for a demo user, enrolled under `device_id`.
    pub async fn new_device(&self, user: &str, device_id: &str) -> Result<Device> {
        let token = server::admin::enroll_device(
            &self.relay,
            &UserId::new(user)?,
            &DeviceId::new(device_id)?,
            "test phone",
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
        self.device_with_token(device_id, &token).await
    }

    async fn device_with_token(&self, name: &str, token: &str) -> Result<Device> {
        let path = self
            .dir
            .path()
            .join(format!("{name}-{}.db", rand::random::<u32>()));
        let device = Device::open(&path)?;
        device.enroll(&self.url, token).await?;
        Ok(device)
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops serving (the state stays readable).
    pub async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(mut t) = self.task.take() {
            // A graceful end: the relay finishes what it has in hand, so the
            // next relay on this directory starts from all of it.
            if tokio::time::timeout(std::time::Duration::from_secs(10), &mut t)
                .await
                .is_err()
            {
                t.abort();
                let _ = t.await;
            }
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A REST client with a session token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    /// The session token.
    pub token: String,
}

impl Api {
    /// Logs in.
    pub async fn login(base: &str, user: &str, password: &str) -> Result<Self> {
        let http = reqwest::Client::new();
        let r: Value = http
            .post(format!("{base}/api/v1/login"))
            .json(&serde_json::json!({"username": user, "password": password}))
            .send()
            .await?
            .json()
            .await?;
        let token = r["token"]
            .as_str()
            .with_context(|| format!("login failed: {r}"))?
            .to_owned();
        Ok(Self {
            http,
            base: base.to_owned(),
            token,
        })
    }

    /// GET, returning the status and the JSON body.
    pub async fn get(&self, path: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// POST JSON, returning the status and the JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// PUT JSON, returning the status and the JSON body.
    pub async fn put(&self, path: &str, body: &Value) -> Result<(u16, Value)> {
        let r = self
            .http
            .put(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// POST a file's bytes with a content type (imports).
    pub async fn post_bytes(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// GET a text body (CSV exports).
    pub async fn get_text(&self, path: &str) -> Result<(u16, String)> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        let status = r.status().as_u16();
        Ok((status, r.text().await.unwrap_or_default()))
    }

    /// POST raw bytes as JSON (for malformed bodies), with or without the token.
    pub async fn post_raw(&self, path: &str, body: &str, authed: bool) -> Result<(u16, Value)> {
        let mut r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if authed {
            r = r.bearer_auth(&self.token);
        }
        let r = r.send().await?;
        let status = r.status().as_u16();
        Ok((status, r.json().await.unwrap_or(Value::Null)))
    }

    /// POSTs an event to a ticket and returns the verdict's outcome.
    pub async fn act(&self, ticket: &str, action: &str, data: Value) -> Result<String> {
        self.act_on(ticket, &Value::Null, action, data).await
    }

    /// POSTs an event made on the ticket version `heads` (what the person's
    /// screen showed) and returns the verdict's outcome.
    pub async fn act_on(
        &self,
        ticket: &str,
        heads: &Value,
        action: &str,
        data: Value,
    ) -> Result<String> {
        let (status, body) = self
            .post(
                &format!("/api/v1/tickets/{ticket}/events"),
                &serde_json::json!({"action": action, "data": data, "heads": heads}),
            )
            .await?;
        if status != 200 {
            bail!("{action} on {ticket}: HTTP {status}: {body}");
        }
        Ok(body["verdict"]["outcome"]
            .as_str()
            .unwrap_or("none")
            .to_owned())
    }

    /// The ticket as the relay shows it.
    pub async fn ticket(&self, id: &str) -> Result<Value> {
        let (status, body) = self.get(&format!("/api/v1/tickets/{id}")).await?;
        if status != 200 {
            bail!("ticket {id}: HTTP {status}: {body}");
        }
        Ok(body)
    }
}

/// This year at the demo property (Asia/Shanghai, UTC+8 all year): the year
/// its serial numbers carry, which turns at local midnight, not UTC's.
pub fn property_year() -> i32 {
    chrono::Datelike::year(&(Utc::now() + chrono::Duration::hours(8)))
}

/// Waits until `f` returns `Some`, polling, for at most `timeout`.
///
/// # Errors
/// When the deadline passes, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The relay binary running as a child process (for kill -9).
pub struct RelayProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The data directory.
    pub data: PathBuf,
}

impl RelayProcess {
    /// Starts `propsync-server demo` (first start) or `serve` on `data`, on
    /// `listen` (`127.0.0.1:0` for any port); `bin` is
    /// `env!("CARGO_BIN_EXE_propsync-test-relay")`.
    pub fn start(bin: &str, data: &Path, listen: &str) -> Result<Self> {
        Self::start_with(bin, data, listen, &[])
    }

    /// [`RelayProcess::start`] with more arguments (`--doc-idle-secs 5`).
    pub fn start_with(bin: &str, data: &Path, listen: &str, extra: &[&str]) -> Result<Self> {
        let sub = if data.join("propsync.sqlite3").exists() {
            "serve"
        } else {
            "demo"
        };
        let mut child = Command::new(bin)
            .args([sub, "--data", &data.to_string_lossy(), "--listen", listen])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let Some(line) = lines.next() else {
                bail!("the relay exited before listening")
            };
            let line = line?;
            if let Some(rest) = line.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            if Instant::now() > deadline {
                bail!("the relay did not start listening");
            }
        };
        // The relay's log, shown with PROPSYNC_RELAY_LOG=1 (RUST_LOG=warn).
        let show = std::env::var_os("PROPSYNC_RELAY_LOG").is_some();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if show {
                    eprintln!("relay: {line}");
                }
            }
        });
        Ok(Self {
            child,
            url,
            data: data.to_owned(),
        })
    }

    /// The relay's process id (for `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs an admin command of the relay binary on this data directory
    /// (while the relay runs) and returns what it printed.
    pub fn admin(bin: &str, data: &Path, args: &[&str]) -> Result<String> {
        let out = Command::new(bin)
            .arg("admin")
            .arg("--data")
            .arg(data)
            .args(args)
            .output()?;
        if !out.status.success() {
            bail!("admin {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// The demo credentials the first start wrote.
    pub fn creds(&self) -> Result<Value> {
        Ok(serde_json::from_slice(&std::fs::read(
            self.data.join("demo-credentials.json"),
        )?)?)
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A bare automerge-repo peer over a real WebSocket: sends whatever a test
/// wants (forged changes, garbage frames, floods) and records what comes back.
pub struct RawPeer {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Our peer id.
    pub peer_id: server::schema::wire::PeerId,
    /// The relay's peer id.
    pub relay_id: server::schema::wire::PeerId,
    /// Every message received, in order.
    pub received: Vec<server::schema::wire::Message>,
    /// Whether the relay closed the connection.
    pub closed: bool,
}

impl RawPeer {
    /// Connects with a token and joins.
    pub async fn connect(base: &str, token: &str) -> Result<Self> {
        use futures_util::{SinkExt, StreamExt};
        use server::schema::wire::{self, Message, PeerId, PeerMetadata};
        let url = format!("{}/sync?token={token}", base.replacen("http", "ws", 1));
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .context("connecting to /sync")?;
        let peer_id = PeerId::new(format!("raw-{}", rand::random::<u32>()))?;
        let join = Message::Join {
            sender_id: peer_id.clone(),
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
            }),
            supported_protocol_versions: Some(vec!["1".into()]),
        };
        ws.send(tokio_tungstenite::tungstenite::Message::binary(
            wire::encode(&join),
        ))
        .await?;
        let reply = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .context("no peer message")?;
        let Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b))) = reply else {
            bail!("no peer message: {reply:?}")
        };
        let Message::Peer { sender_id, .. } = wire::decode(&b, &wire::Limits::default())? else {
            bail!("expected peer")
        };
        Ok(Self {
            ws,
            peer_id,
            relay_id: sender_id,
            received: Vec::new(),
            closed: false,
        })
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: &server::schema::wire::Message) -> Result<()> {
        self.send_raw(server::schema::wire::encode(msg)).await
    }

    /// Sends raw bytes as one binary frame.
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<()> {
        use futures_util::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::binary(bytes))
            .await?;
        Ok(())
    }

    /// Receives the next message, `None` after `timeout` or on close.
    pub async fn recv(&mut self, timeout: Duration) -> Option<server::schema::wire::Message> {
        use futures_util::StreamExt;
        loop {
            match tokio::time::timeout(timeout, self.ws.next()).await {
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(b)))) => {
                    let m =
                        server::schema::wire::decode(&b, &server::schema::wire::Limits::default())
                            .ok()?;
                    self.received.push(m.clone());
                    return Some(m);
                }
                Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(_)) | Err(_)) | None) => {
                    self.closed = true;
                    return None;
                }
                Ok(Some(Ok(_))) => {}
                Err(_) => return None,
            }
        }
    }

    /// Waits until the relay closes the connection, at most `timeout`.
    pub async fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            self.recv(left).await;
        }
        self.closed
    }

    /// Syncs `doc` (a fresh `request` when `fresh`) until `done(doc)` holds or
    /// the relay stops answering; returns whether `done` held.
    pub async fn sync_until(
        &mut self,
        id: server::schema::DocId,
        doc: &mut automerge::Automerge,
        state: &mut automerge::sync::State,
        fresh: bool,
        timeout: Duration,
        done: impl Fn(&automerge::Automerge) -> bool,
    ) -> Result<bool> {
        use automerge::sync::SyncDoc;
        use server::schema::wire::Message;
        let deadline = Instant::now() + timeout;
        let mut first = true;
        loop {
            if let Some(m) = doc.generate_sync_message(state) {
                let msg = if fresh && first {
                    Message::Request {
                        sender_id: self.peer_id.clone(),
                        target_id: self.relay_id.clone(),
                        document_id: id.into(),
                        data: m.encode(),
                    }
                } else {
                    Message::Sync {
                        sender_id: self.peer_id.clone(),
                        target_id: self.relay_id.clone(),
                        document_id: id.into(),
                        data: m.encode(),
                    }
                };
                first = false;
                self.send(&msg).await?;
            }
            if done(doc) {
                return Ok(true);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(false);
            }
            match self.recv(left.min(Duration::from_secs(2))).await {
                Some(Message::Sync {
                    data, document_id, ..
                }) if server::schema::DocId::from(&document_id) == id => {
                    let m = automerge::sync::Message::decode(&data)?;
                    doc.receive_sync_message(state, m)?;
                }
                Some(Message::DocUnavailable { .. } | Message::Error { .. }) => {
                    return Ok(done(doc));
                }
                Some(_) => {}
                None if self.closed => return Ok(done(doc)),
                None => {
                    if done(doc) {
                        return Ok(true);
                    }
                }
            }
        }
    }

    /// The `change-rejected` notices received so far.
    pub fn rejections(&self) -> Vec<server::schema::wire::ChangeRejected> {
        self.received
            .iter()
            .filter_map(|m| match m {
                server::schema::wire::Message::Ephemeral { data, .. } => {
                    server::schema::wire::ChangeRejected::decode(
                        data,
                        &server::schema::wire::Limits::default(),
                    )
                }
                _ => None,
            })
            .collect()
    }

    /// The `error` messages received so far.
    pub fn errors(&self) -> Vec<String> {
        self.received
            .iter()
            .filter_map(|m| match m {
                server::schema::wire::Message::Error { message, .. } => Some(message.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A repair recorded by the front desk and assigned to eng1, fetched by
/// eng1's phone over a bare peer: the start of the protocol-level tests.
pub struct FetchedRepair {
    pub relay: TestRelay,
    pub id: String,
    pub doc_id: server::schema::DocId,
    pub peer: RawPeer,
    pub doc: automerge::Automerge,
    pub state: automerge::sync::State,
}

impl FetchedRepair {
    /// Records "`title`" at `location` on `relay`, assigns it to eng1 and syncs it to a bare peer.
    pub async fn on(relay: TestRelay, title: &str, location: &str) -> Result<Self> {
        let desk = relay.api("frontdesk").await?;
        let (status, t) = desk
            .post(
                "/api/v1/tickets",
                &serde_json::json!({"kind": "repair", "title": title, "location": location, "category": "general"}),
            )
            .await?;
        anyhow::ensure!(status == 201, "{t}");
        let id = t["id"].as_str().context("id")?.to_owned();
        let outcome = desk
            .act(&id, "assign", serde_json::json!({"assignee": "eng1"}))
            .await?;
        anyhow::ensure!(outcome == "accepted", "assigning: {outcome}");
        let doc_id: server::schema::DocId = id.parse()?;
        let mut peer = RawPeer::connect(&relay.url, &relay.creds["eng1"].device_token).await?;
        let mut doc = automerge::Automerge::new();
        let mut state = automerge::sync::State::new();
        let fetched = peer
            .sync_until(
                doc_id,
                &mut doc,
                &mut state,
                true,
                Duration::from_secs(10),
                |d| server::schema::doc::read_ticket(d, None).is_ok_and(|t| t.events.len() == 2),
            )
            .await?;
        anyhow::ensure!(fetched, "eng1 fetches its ticket");
        Ok(Self {
            relay,
            id,
            doc_id,
            peer,
            doc,
            state,
        })
    }
}
