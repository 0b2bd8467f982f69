//! The simulated devices: each is `client_core`'s IO-free sync [`Engine`]
//! behind its own real WebSocket on loopback (one process, many
//! connections), speaking the automerge-repo protocol. Effects that a phone
//! would store are dropped: the devices keep their documents in memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use automerge::{ActorId, Automerge, ChangeHash};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use harness::client_core::engine::{Effect, Engine, EngineConfig, Input, LocalDoc};
use harness::client_core::store::Listing;
use harness::server::schema::judge::Outcome;
use harness::server::schema::wire::{self, Limits, PeerId};
use harness::server::schema::{DocId, EventId};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the socket gave.
pub(crate) type Frame = Option<Result<tungstenite::Message, tungstenite::Error>>;

/// WebSocket payload bytes the devices sent and received.
#[derive(Debug, Default)]
pub(crate) struct Wire {
    pub(crate) up: AtomicU64,
    pub(crate) down: AtomicU64,
}

impl Wire {
    pub(crate) fn total(&self) -> u64 {
        self.up.load(Ordering::Relaxed) + self.down.load(Ordering::Relaxed)
    }
}

/// Where the devices connect.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// `http://127.0.0.1:PORT`.
    pub(crate) base: String,
    /// The sync path (`/sync` on the relay, `/` on the peer).
    pub(crate) path: &'static str,
    /// Whether to send the device tokens (the peer has no auth).
    pub(crate) tokens: bool,
    /// Whether to wait for the relay's verdicts.
    pub(crate) verdicts: bool,
}

/// One simulated device's identity.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    pub(crate) name: String,
    pub(crate) token: String,
    pub(crate) actor: ActorId,
    pub(crate) inbox: Option<DocId>,
}

/// A document as a device holds it, with its saved sync state for one server.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) doc: Automerge,
    pub(crate) state: Option<Vec<u8>>,
}

/// One device's connection: the engine and its socket.
pub(crate) struct Conn {
    engine: Engine,
    sink: SplitSink<Ws, tungstenite::Message>,
    stream: SplitStream<Ws>,
    wire: Arc<Wire>,
    limits: Limits,
    /// The latest sync state per document (what a phone would store).
    pub(crate) states: BTreeMap<DocId, Vec<u8>>,
    /// Local changes the server acknowledged.
    pub(crate) acked: u64,
    /// Documents reset after a `change-rejected`.
    pub(crate) resets: u64,
    /// Why the last reset happened.
    pub(crate) last_reset: Option<String>,
    /// Documents whose content changed in the last step.
    pub(crate) changed: Vec<DocId>,
}

/// The storage epoch of the relay under test (one relay per run), as a
/// phone keeps it: a reconnect with it keeps the saved sync states.
static RELAY_EPOCH: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

impl Conn {
    /// Connects, joins, and waits for nothing: the caller steps it.
    pub(crate) async fn open(
        target: &Target,
        id: &Identity,
        docs: BTreeMap<DocId, Held>,
        unacked: &BTreeMap<DocId, Vec<ChangeHash>>,
        wire: Arc<Wire>,
    ) -> Result<Self> {
        let url = format!("{}{}", target.base.replacen("http", "ws", 1), target.path);
        let mut request = url.into_client_request()?;
        if target.tokens
            && let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", id.token))
        {
            request.headers_mut().insert("authorization", v);
        }
        let (ws, _) = connect_retrying(request).await?;
        let (sink, stream) = ws.split();
        let local = docs
            .into_iter()
            .map(|(doc_id, h)| LocalDoc {
                id: doc_id,
                doc: h.doc,
                sync_state: h.state,
                listing: Listing::Listed,
                unacked: unacked.get(&doc_id).cloned().unwrap_or_default(),
            })
            .collect();
        let peer_id = PeerId::new(format!("{}-{:08x}", id.name, rand::random::<u32>()))?;
        let engine = Engine::new(
            EngineConfig {
                peer_id,
                actor: id.actor.clone(),
                inbox: if target.tokens { id.inbox } else { None },
                relay_epoch: RELAY_EPOCH.lock().ok().and_then(|e| e.clone()),
            },
            local,
        );
        let mut conn = Self {
            engine,
            sink,
            stream,
            wire,
            limits: Limits::default(),
            states: BTreeMap::new(),
            acked: 0,
            resets: 0,
            last_reset: None,
            changed: Vec::new(),
        };
        let effects = conn.engine.handle(Input::Connected);
        conn.apply(effects).await?;
        Ok(conn)
    }

    /// The engine (documents, idleness).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Waits for the next frame (cancel-safe: use it in `select!`, then [`Conn::handle`]).
    pub(crate) async fn recv(&mut self) -> Frame {
        self.stream.next().await
    }

    /// Handles one frame; `false` when the socket closed.
    pub(crate) async fn handle(&mut self, frame: Frame) -> Result<bool> {
        self.changed.clear();
        let frame = match frame {
            None | Some(Ok(tungstenite::Message::Close(_))) => return Ok(false),
            Some(Err(e)) => return Err(e).context("reading the socket"),
            Some(Ok(f)) => f,
        };
        let tungstenite::Message::Binary(bytes) = frame else {
            return Ok(true);
        };
        self.wire
            .down
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let msg = wire::decode(&bytes, &self.limits).context("decoding a frame")?;
        let effects = self.engine.handle(Input::Received(msg));
        self.apply(effects).await?;
        Ok(true)
    }

    /// Receives one frame and handles it; `false` when the socket closed.
    pub(crate) async fn step(&mut self) -> Result<bool> {
        let frame = self.recv().await;
        self.handle(frame).await
    }

    /// Applies a change made on a copy of one of the engine's documents, and sends it.
    pub(crate) async fn local_change(
        &mut self,
        doc: DocId,
        change: automerge::Change,
    ) -> Result<()> {
        let effects = self.engine.local_change(doc, change);
        self.apply(effects).await
    }

    async fn apply(&mut self, effects: Vec<Effect>) -> Result<()> {
        for e in effects {
            match e {
                Effect::Send(m) => {
                    let bytes = wire::encode(&m);
                    self.wire
                        .up
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    self.sink
                        .send(tungstenite::Message::binary(bytes))
                        .await
                        .context("sending")?;
                }
                Effect::RelayEpoch { epoch } => {
                    self.states.clear();
                    if let Ok(mut e) = RELAY_EPOCH.lock() {
                        *e = Some(epoch);
                    }
                }
                Effect::StoreSyncState { doc, state } => {
                    self.states.insert(doc, state);
                }
                Effect::StoreChanges { doc, .. } => self.changed.push(doc),
                Effect::Acked { hashes, .. } => self.acked += hashes.len() as u64,
                Effect::Reset {
                    doc, rule, reason, ..
                } => {
                    self.resets += 1;
                    self.last_reset = Some(format!("{doc}: {rule}: {reason}"));
                }
                Effect::Close { reason } => bail!("the server closed the connection: {reason}"),
                Effect::Problem { what } => bail!("protocol problem: {what}"),
                Effect::Listed { .. }
                | Effect::Delisted { .. }
                | Effect::Released { .. }
                | Effect::Purge { .. }
                | Effect::Unavailable { .. } => {}
            }
        }
        Ok(())
    }

    /// Steps until `done` holds, at most `timeout`.
    pub(crate) async fn until(
        &mut self,
        timeout: Duration,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !done(self) {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, self.step()).await {
                Err(_) => bail!(
                    "stalled: {} documents out of sync",
                    self.engine.outstanding()
                ),
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => bail!("the server closed the connection"),
                Ok(Err(e)) => return Err(e),
            }
        }
        Ok(())
    }

    /// Every document the engine holds, with its latest sync state.
    pub(crate) fn held(&self) -> BTreeMap<DocId, Held> {
        self.engine
            .doc_ids()
            .into_iter()
            .filter_map(|id| {
                let doc = self.engine.doc(id)?.clone();
                Some((
                    id,
                    Held {
                        doc,
                        state: self.states.get(&id).cloned(),
                    },
                ))
            })
            .collect()
    }

    /// Closes the socket politely.
    pub(crate) async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

/// Loopback connects can be refused for a moment when a thousand arrive at
/// once (a full accept backlog): retry briefly, as a phone would.
async fn connect_retrying(
    request: tungstenite::handshake::client::Request,
) -> Result<(Ws, tungstenite::handshake::client::Response)> {
    let mut delay = Duration::from_millis(20);
    let mut last = None;
    for _ in 0..8 {
        // Small frames: no Nagle delay (as the relay's side of the socket).
        match tokio_tungstenite::connect_async_with_config(request.clone(), None, true).await {
            Ok(ok) => return Ok(ok),
            Err(tungstenite::Error::Io(e)) => {
                last = Some(e);
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => return Err(e).context("connecting"),
        }
    }
    Err(last.map_or_else(|| anyhow::anyhow!("connecting"), anyhow::Error::from))
}

/// How long a storm device waits for a frame before it reports a stall.
const STALL: Duration = Duration::from_secs(30);

/// What one device of a storm reports.
#[derive(Debug, Default)]
pub(crate) struct StormResult {
    /// From the common start until this device was converged.
    pub(crate) took: Duration,
    pub(crate) acked: u64,
    pub(crate) accepted: u64,
    pub(crate) conflicts: u64,
    pub(crate) rejected: u64,
    pub(crate) resets: u64,
}

/// What one device brings to a storm.
#[derive(Debug)]
pub(crate) struct StormDevice {
    pub(crate) id: Identity,
    pub(crate) docs: BTreeMap<DocId, Held>,
    pub(crate) unacked: BTreeMap<DocId, Vec<ChangeHash>>,
    /// The lifecycle events made offline, whose verdicts must come back.
    pub(crate) events: BTreeMap<DocId, BTreeSet<EventId>>,
}

/// Runs one device of a storm: waits for the start, connects, syncs until it
/// has converged (and, on the relay, every verdict is back), reports, then
/// stays connected and idle until `stop`.
pub(crate) async fn storm_device(
    target: Target,
    dev: StormDevice,
    wire: Arc<Wire>,
    mut start: tokio::sync::watch::Receiver<Option<Instant>>,
    report: tokio::sync::mpsc::UnboundedSender<Result<StormResult>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let t0 = loop {
        if let Some(t) = *start.borrow_and_update() {
            break t;
        }
        if start.changed().await.is_err() {
            return;
        }
    };
    let mut conn = match storm_converge(&target, dev, wire, t0).await {
        Ok((conn, result)) => {
            let _ = report.send(Ok(result));
            conn
        }
        Err(e) => {
            let _ = report.send(Err(e));
            return;
        }
    };
    // Idle, but answering whatever arrives (the live test runs now).
    loop {
        tokio::select! {
            f = conn.recv() => if !matches!(conn.handle(f).await, Ok(true)) { return },
            _ = stop.changed() => break,
        }
    }
    conn.close().await;
}

async fn storm_converge(
    target: &Target,
    dev: StormDevice,
    wire: Arc<Wire>,
    t0: Instant,
) -> Result<(Conn, StormResult)> {
    let mut waiting = if target.verdicts {
        dev.events
    } else {
        BTreeMap::new()
    };
    let mut result = StormResult::default();
    let mut conn = Conn::open(target, &dev.id, dev.docs, &dev.unacked, wire)
        .await
        .with_context(|| format!("device {}", dev.id.name))?;
    loop {
        if conn.engine.is_idle() && waiting.is_empty() {
            break;
        }
        match tokio::time::timeout(STALL, conn.step()).await {
            Err(_) => bail!(
                "device {} stalled: {} documents out of sync, {} verdicts missing ({})",
                dev.id.name,
                conn.engine.outstanding(),
                waiting.values().map(BTreeSet::len).sum::<usize>(),
                waiting
                    .keys()
                    .filter_map(|d| conn.engine.doc(*d))
                    .map(
                        |d| match harness::server::schema::doc::read_ticket(d, None) {
                            Ok(t) => format!(
                                "{} events, {} verdicts",
                                t.events.len(),
                                t.server.verdicts.len()
                            ),
                            Err(e) => format!("unreadable: {e}"),
                        }
                    )
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => bail!("device {}: the server closed the connection", dev.id.name),
            Ok(Err(e)) => return Err(e.context(format!("device {}", dev.id.name))),
        }
        if let Some(why) = &conn.last_reset {
            bail!("device {}: the relay refused a change: {why}", dev.id.name);
        }
        for doc in std::mem::take(&mut conn.changed) {
            let Some(want) = waiting.get_mut(&doc) else {
                continue;
            };
            let Some(d) = conn.engine.doc(doc) else {
                continue;
            };
            let Ok(t) = harness::server::schema::doc::read_ticket(d, None) else {
                continue;
            };
            want.retain(|e| match t.server.verdicts.get(e) {
                None => true,
                Some(v) => {
                    match v.outcome {
                        Outcome::Accepted => result.accepted += 1,
                        Outcome::Conflict => result.conflicts += 1,
                        Outcome::Rejected => result.rejected += 1,
                    }
                    false
                }
            });
            if want.is_empty() {
                waiting.remove(&doc);
            }
        }
    }
    result.took = t0.elapsed();
    result.acked = conn.acked;
    result.resets = conn.resets;
    Ok((conn, result))
}
