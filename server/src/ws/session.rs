//! One sync connection after the upgrade: the writer task (the only place a
//! frame is written to the socket), the handler of each message a peer
//! sends, and [`Refusal`], the one way a message is refused (the error the
//! peer reads, the security-log row, the end of the connection).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use schema::wire::{self, Message, PeerId};
use schema::{DocId, Principal};
use tokio::sync::mpsc;

use crate::hub::{ConnId, Outgoing, Peer, SessionStats};
use crate::state::Relay;
use crate::store::storage::SecurityEntry;

/// Most documents one heads-digest question may name.
const MAX_DIGESTS: usize = 50_000;

/// A token bucket: `rate` per second, up to `burst`.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        self.take_n(1.0)
    }

    fn take_n(&mut self, n: f64) -> bool {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= n {
            self.tokens -= n;
            true
        } else {
            false
        }
    }

    /// Gives back a message's token: it made progress (a device catching up
    /// makes progress with every message; a flood of empty or repeated
    /// messages does not, and is still cut off).
    fn refund(&mut self) {
        self.tokens = (self.tokens + 1.0).min(self.burst);
    }
}

/// A message the relay refuses: the `error` the peer reads, the
/// security-log row a manager sees (if the refusal is one to record), and
/// the reason the connection ends (if it does).
#[derive(Debug)]
struct Refusal {
    message: String,
    log: Option<(&'static str, String)>,
    ends: Option<&'static str>,
}

impl Refusal {
    /// A refusal that ends the connection with `end` as its reason.
    fn ending(end: &'static str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            log: None,
            ends: Some(end),
        }
    }

    /// A refusal after which the connection goes on.
    fn answer(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            log: None,
            ends: None,
        }
    }

    /// Recorded in the security log as `kind` with `detail`.
    fn logged(mut self, kind: &'static str, detail: impl Into<String>) -> Self {
        self.log = Some((kind, detail.into()));
        self
    }

    /// Over the message rate: logged, counted, and the connection ends.
    fn rate_limited(detail: impl Into<String>) -> Self {
        crate::metrics::rate_limited("messages");
        Self::ending("rate limited", "too many messages: slow down").logged("rate_limited", detail)
    }
}

/// Whether the connection goes on after a frame.
enum Flow {
    Go,
    End(String),
}

/// Writes what the hub and the handler queue for this connection, until the
/// queue closes or a close is queued; returns why it stopped.
async fn writer(
    mut sink: SplitSink<WebSocket, WsMessage>,
    mut queue: mpsc::Receiver<Outgoing>,
    stats: Arc<SessionStats>,
) -> String {
    while let Some(out) = queue.recv().await {
        match out {
            Outgoing::Msg(m) => {
                let bytes = wire::encode(&m);
                stats
                    .bytes_out
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                stats.messages_out.fetch_add(1, Ordering::Relaxed);
                if sink.send(WsMessage::Binary(bytes.into())).await.is_err() {
                    return "send failed".to_owned();
                }
            }
            Outgoing::Close(reason) => {
                let frame = CloseFrame {
                    code: 1008,
                    reason: reason.clone().into(),
                };
                let _ = sink.send(WsMessage::Close(Some(frame))).await;
                return reason;
            }
        }
    }
    "closed".to_owned()
}

/// A connection's state while it reads: who it is, its rate limit, its
/// peer once joined.
struct Connection {
    relay: Relay,
    principal: Principal,
    conn: ConnId,
    session: Option<i64>,
    stats: Arc<SessionStats>,
    out: mpsc::Sender<Outgoing>,
    bucket: Bucket,
    limits: wire::Limits,
    peer: Option<Peer>,
}

impl Connection {
    fn peer_id(&self) -> Option<&PeerId> {
        self.peer.as_ref().map(|p| &p.peer_id)
    }

    async fn send(&self, msg: Message) {
        let _ = self.out.send(Outgoing::Msg(msg)).await;
    }

    /// Sends the refusal, records it, and says whether the connection ends.
    async fn refuse(&self, r: Refusal) -> Flow {
        self.send(Message::Error {
            sender_id: Some(self.relay.hub.relay_peer.clone()),
            target_id: self.peer_id().cloned(),
            message: r.message,
        })
        .await;
        if let Some((kind, detail)) = r.log {
            self.relay.seclog.record(
                SecurityEntry::of_principal(self.relay.hub.now(), &self.principal, kind)
                    .detail(detail),
            );
        }
        match r.ends {
            Some(end) => Flow::End(end.to_owned()),
            None => Flow::Go,
        }
    }

    /// One frame from the socket.
    async fn frame(&mut self, frame: WsMessage) -> Flow {
        let bytes = match frame {
            WsMessage::Binary(b) => b,
            WsMessage::Close(_) => return Flow::End("client closed".into()),
            WsMessage::Ping(_) | WsMessage::Pong(_) => return Flow::Go,
            WsMessage::Text(_) => {
                let r = Refusal::ending("text frame", "frames must be binary CBOR")
                    .logged("text_frame", "a text frame");
                return self.refuse(r).await;
            }
        };
        self.stats
            .bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        self.stats.messages_in.fetch_add(1, Ordering::Relaxed);
        if !self.bucket.take() {
            let per_second = self.relay.config.messages_per_second;
            let r = Refusal::rate_limited(format!("over {per_second} messages per second"));
            return self.refuse(r).await;
        }
        match wire::decode(&bytes, &self.limits) {
            Ok(msg) => self.message(msg).await,
            Err(e) => {
                let r = Refusal::ending("malformed frame", format!("malformed message: {e}"))
                    .logged("malformed_frame", e.to_string());
                self.refuse(r).await
            }
        }
    }

    /// One decoded message.
    async fn message(&mut self, msg: Message) -> Flow {
        let Some(p) = &self.peer else {
            return match msg {
                Message::Join { sender_id, .. } => self.join(sender_id).await,
                other => {
                    let why = format!("send join first, not {}", other.type_name());
                    self.refuse(Refusal::ending("no join", why)).await
                }
            };
        };
        let hub = &self.relay.hub;
        match msg {
            Message::Request {
                document_id, data, ..
            } => {
                let id = DocId::from(&document_id);
                let progress = hub.receive(p, id, &data, true).await;
                credit(&mut self.bucket, id, progress, "request failed");
                Flow::Go
            }
            Message::Sync {
                document_id, data, ..
            } => {
                let id = DocId::from(&document_id);
                let progress = hub.receive(p, id, &data, false).await;
                credit(&mut self.bucket, id, progress, "sync failed");
                Flow::Go
            }
            Message::Join { .. } => self.refuse(Refusal::answer("already joined")).await,
            Message::Ephemeral {
                document_id, data, ..
            } => {
                // A device's heads digests (others' ephemeral messages are
                // not the relay's to forward): one token per 100 documents.
                let Some(q) = wire::HeadsDigests::decode(&data, &self.limits)
                    .filter(|q| q.docs.len() <= MAX_DIGESTS)
                else {
                    return Flow::Go;
                };
                #[allow(clippy::cast_precision_loss, reason = "a token count")]
                let cost = (q.docs.len() / 100) as f64;
                if !self.bucket.take_n(cost) {
                    let r = Refusal::rate_limited("heads digests over the rate");
                    return self.refuse(r).await;
                }
                if let Err(e) = hub.digests(p, DocId::from(&document_id), q).await {
                    tracing::warn!(error = %e, "heads digests failed");
                }
                Flow::Go
            }
            Message::DocUnavailable { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. }
            | Message::Peer { .. }
            | Message::Error { .. } => Flow::Go,
            Message::Leave { .. } => Flow::End("client closed".into()),
            Message::Unknown { type_name } => {
                let r = Refusal::answer(format!("unknown message type {type_name:?}"))
                    .logged("unknown_message", type_name);
                self.refuse(r).await
            }
        }
    }

    /// The peer's `join`: it is answered with the relay's `peer` and the
    /// storage epoch.
    async fn join(&mut self, sender_id: PeerId) -> Flow {
        let hub = &self.relay.hub;
        self.send(Message::Peer {
            sender_id: hub.relay_peer.clone(),
            target_id: sender_id.clone(),
            peer_metadata: Some(wire::PeerMetadata {
                storage_id: hub.storage_epoch.clone(),
                is_ephemeral: false,
            }),
            selected_protocol_version: "1".into(),
        })
        .await;
        self.peer = Some(Peer {
            conn: self.conn,
            peer_id: sender_id,
            principal: self.principal.clone(),
            session: self.session,
            stats: self.stats.clone(),
        });
        Flow::Go
    }
}

/// A sync message that made progress gives its token back; a failure is
/// logged (the hub has told the peer).
fn credit(
    bucket: &mut Bucket,
    id: DocId,
    progress: Result<bool, crate::hub::HubError>,
    what: &'static str,
) {
    match progress {
        Ok(true) => bucket.refund(),
        Ok(false) => {}
        Err(e) => tracing::warn!(doc = %id, error = %e, "{what}"),
    }
}

/// Serves one upgraded connection: its `sync_sessions` row from start to
/// end, the writer task, and each frame through [`Connection::frame`].
pub(super) async fn run(
    relay: Relay,
    principal: Principal,
    addr: Option<String>,
    socket: WebSocket,
) {
    let hub = relay.hub.clone();
    let (user, device) = (principal.user.clone(), principal.device.clone());
    let session = hub
        .store
        .start_session(user, device, addr.clone(), hub.now())
        .await
        .ok();
    metrics::counter!("propsync_sync_sessions_total").increment(1);
    let stats = Arc::new(SessionStats::default());
    let (out, queue) = mpsc::channel::<Outgoing>(512);
    let conn = hub.connect(
        principal.device.clone(),
        principal.user.clone(),
        out.clone(),
        stats.clone(),
    );
    let (sink, mut stream) = socket.split();
    let mut writer = tokio::spawn(writer(sink, queue, stats.clone()));
    let burst = f64::from(relay.config.message_burst);
    let mut c = Connection {
        bucket: Bucket {
            tokens: burst,
            rate: f64::from(relay.config.messages_per_second),
            burst,
            last: Instant::now(),
        },
        limits: wire::Limits {
            max_frame_bytes: relay.config.max_frame_bytes,
            ..wire::Limits::default()
        },
        relay,
        principal,
        conn,
        session,
        stats: stats.clone(),
        out,
        peer: None,
    };
    let mut end = "client closed".to_owned();
    let mut writer_done: Option<String> = None;
    loop {
        let frame = tokio::select! {
            f = stream.next() => f,
            r = &mut writer => {
                writer_done = Some(r.unwrap_or_default());
                break;
            }
        };
        let Some(frame) = frame else { break };
        let Ok(frame) = frame else {
            end = "transport error".into();
            break;
        };
        if let Flow::End(why) = c.frame(frame).await {
            end = why;
            break;
        }
    }
    hub.disconnect(conn).await;
    let peer_id = c.peer.take().map(|p| p.peer_id.to_string());
    let principal = c.principal.clone();
    // The connection's sender goes: the writer ends once the queue drains.
    drop(c);
    let reason = match writer_done {
        Some(r) => r,
        None => tokio::time::timeout(std::time::Duration::from_secs(2), writer)
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
    };
    if !reason.is_empty() && reason != "closed" {
        end = reason;
    }
    let counters = stats.snapshot();
    tracing::info!(
        user = %principal.user,
        device = %principal.device,
        addr = addr.as_deref().unwrap_or("-"),
        messages_in = counters.messages_in,
        messages_out = counters.messages_out,
        documents = counters.documents,
        accepted = counters.accepted,
        rejected = counters.rejected + counters.hard_rejected,
        end = %end,
        "sync session ended"
    );
    if let Some(id) = session {
        let at = hub.now();
        let _ = hub.store.end_session(id, peer_id, counters, at, end).await;
    }
}
