//! `GET /sync`: the automerge-repo WebSocket endpoint.
//!
//! The token is checked before the upgrade and must be a device token: a
//! bearer header, `?token=` (the one place a token may travel in a URL:
//! automerge-repo's JavaScript adapter cannot set headers), or, for the field
//! app in the browser, which can set no header and should put no long-lived
//! token in a URL, the WebSocket subprotocols `propsync.v1` +
//! `propsync.token.<token>`; the connection is bound to the token's user and
//! device whatever peer id the
//! client announces. Frames are binary CBOR messages ([`schema::wire`]);
//! anything else, a flood, or a malformed frame gets an `error` message, a log
//! row, and the connection closed. Every connection is one `sync_sessions` row.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use futures_util::{SinkExt, StreamExt};
use schema::wire::{self, Message, PeerId};
use schema::{DocId, Principal};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::auth::AuthError;
use crate::error::AppError;
use crate::hub::{Outgoing, Peer, SessionStats};
use crate::limits::ClientIp;
use crate::state::Relay;
use crate::store::storage::SecurityEntry;

pub(crate) fn router() -> Router<Relay> {
    Router::new().route("/sync", get(upgrade))
}

#[derive(Deserialize)]
pub(crate) struct TokenQuery {
    token: Option<String>,
}

/// The `/sync` token from `Authorization: Bearer` or `?token=`.
pub(crate) fn token_of(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| query.map(str::to_owned))
}

/// The subprotocol the relay selects for clients that offer it (the field app).
pub(crate) const APP_PROTOCOL: &str = "propsync.v1";

/// The prefix of the subprotocol that carries the device token.
const TOKEN_PROTOCOL: &str = "propsync.token.";

/// The token offered as a `propsync.token.<token>` subprotocol, if any.
pub(crate) fn protocol_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|p| p.trim().strip_prefix(TOKEN_PROTOCOL))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The peer's address, when the server was started with connect info.
pub(crate) struct RemoteAddr(pub(crate) Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for RemoteAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(RemoteAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.to_string()),
        ))
    }
}

async fn upgrade(
    State(relay): State<Relay>,
    headers: HeaderMap,
    crate::api::Params(q): crate::api::Params<TokenQuery>,
    RemoteAddr(addr): RemoteAddr,
    ClientIp(ip): ClientIp,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let token = protocol_token(&headers)
        .or_else(|| token_of(&headers, q.token.as_deref()))
        .ok_or(AuthError::Missing)?;
    let checked = relay.authenticate(&token).await.and_then(|(p, c)| {
        if c.kind == crate::auth::DEVICE {
            Ok(p)
        } else {
            Err(AuthError::WrongKind(
                "/sync takes a device token, not a dashboard session's",
            ))
        }
    });
    let principal = match checked {
        Ok(p) => p,
        Err(e) => {
            // Coalesced with like refusals: a flood of bad tokens costs no
            // write per request.
            relay.seclog.record(SecurityEntry {
                at: relay.hub.now(),
                user: None,
                device: None,
                peer: Some(ip.to_string()),
                kind: "auth_refused".into(),
                detail: e.to_string(),
            });
            return Err(e.into());
        }
    };
    let max = relay.config.max_frame_bytes;
    Ok(ws
        .protocols([APP_PROTOCOL])
        .max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(max * 2)
        .on_upgrade(move |socket| run(relay, principal, addr, socket)))
}

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

/// Most documents one heads-digest question may name.
const MAX_DIGESTS: usize = 50_000;

async fn run(relay: Relay, principal: Principal, addr: Option<String>, socket: WebSocket) {
    let hub = relay.hub.clone();
    let now = hub.now();
    let (u, d, a) = (
        principal.user.clone(),
        principal.device.clone(),
        addr.clone(),
    );
    let session = hub.store.start_session(u, d, a, now).await.ok();
    metrics::counter!("propsync_sync_sessions_total").increment(1);
    let stats = Arc::new(SessionStats::default());
    let (out_tx, mut out_rx) = mpsc::channel::<Outgoing>(512);
    let conn = hub.connect(
        principal.device.clone(),
        principal.user.clone(),
        out_tx.clone(),
        stats.clone(),
    );
    let (mut sink, mut stream) = socket.split();

    let writer_stats = stats.clone();
    let writer = tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            match out {
                Outgoing::Msg(m) => {
                    let bytes = wire::encode(&m);
                    writer_stats
                        .bytes_out
                        .fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    writer_stats.messages_out.fetch_add(1, Ordering::Relaxed);
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
    });

    let limits = wire::Limits {
        max_frame_bytes: relay.config.max_frame_bytes,
        ..wire::Limits::default()
    };
    let mut bucket = Bucket {
        tokens: f64::from(relay.config.message_burst),
        rate: f64::from(relay.config.messages_per_second),
        burst: f64::from(relay.config.message_burst),
        last: Instant::now(),
    };
    let mut peer: Option<Peer> = None;
    let relay_peer = hub.relay_peer.clone();
    let storage_epoch = hub.storage_epoch.clone();
    let mut end = "client closed".to_owned();
    let refuse = |peer_id: Option<&PeerId>, message: String| {
        Outgoing::Msg(Message::Error {
            sender_id: Some(relay_peer.clone()),
            target_id: peer_id.cloned(),
            message,
        })
    };
    let log = |kind: &'static str, detail: String| {
        let seclog = relay.seclog.clone();
        let entry = SecurityEntry {
            at: hub.now(),
            user: Some(principal.user.to_string()),
            device: Some(principal.device.to_string()),
            peer: None,
            kind: kind.into(),
            detail,
        };
        async move {
            seclog.record(entry);
        }
    };
    let mut writer = writer;
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
        let bytes = match frame {
            WsMessage::Binary(b) => b,
            WsMessage::Close(_) => break,
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
            WsMessage::Text(_) => {
                let _ = out_tx
                    .send(refuse(
                        peer.as_ref().map(|p| &p.peer_id),
                        "frames must be binary CBOR".into(),
                    ))
                    .await;
                log("text_frame", "a text frame".into()).await;
                end = "text frame".into();
                break;
            }
        };
        stats
            .bytes_in
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        stats.messages_in.fetch_add(1, Ordering::Relaxed);
        if !bucket.take() {
            let _ = out_tx
                .send(refuse(
                    peer.as_ref().map(|p| &p.peer_id),
                    "too many messages: slow down".into(),
                ))
                .await;
            log(
                "rate_limited",
                format!(
                    "over {} messages per second",
                    relay.config.messages_per_second
                ),
            )
            .await;
            crate::metrics::rate_limited("messages");
            end = "rate limited".into();
            break;
        }
        let msg = match wire::decode(&bytes, &limits) {
            Ok(m) => m,
            Err(e) => {
                let _ = out_tx
                    .send(refuse(
                        peer.as_ref().map(|p| &p.peer_id),
                        format!("malformed message: {e}"),
                    ))
                    .await;
                log("malformed_frame", e.to_string()).await;
                end = "malformed frame".into();
                break;
            }
        };
        match (msg, &peer) {
            (Message::Join { sender_id, .. }, None) => {
                let p = Peer {
                    conn,
                    peer_id: sender_id.clone(),
                    principal: principal.clone(),
                    session,
                    stats: stats.clone(),
                };
                let _ = out_tx
                    .send(Outgoing::Msg(Message::Peer {
                        sender_id: relay_peer.clone(),
                        target_id: sender_id,
                        peer_metadata: Some(wire::PeerMetadata {
                            storage_id: storage_epoch.clone(),
                            is_ephemeral: false,
                        }),
                        selected_protocol_version: "1".into(),
                    }))
                    .await;
                peer = Some(p);
            }
            (other, None) => {
                let _ = out_tx
                    .send(refuse(
                        None,
                        format!("send join first, not {}", other.type_name()),
                    ))
                    .await;
                end = "no join".into();
                break;
            }
            (
                Message::Request {
                    document_id, data, ..
                },
                Some(p),
            ) => {
                let id = DocId::from(&document_id);
                match hub.receive(p, id, &data, true).await {
                    Ok(true) => bucket.refund(),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(doc = %id, error = %e, "request failed"),
                }
            }
            (
                Message::Sync {
                    document_id, data, ..
                },
                Some(p),
            ) => {
                let id = DocId::from(&document_id);
                match hub.receive(p, id, &data, false).await {
                    Ok(true) => bucket.refund(),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(doc = %id, error = %e, "sync failed"),
                }
            }
            (Message::Join { .. }, Some(p)) => {
                let _ = out_tx
                    .send(refuse(Some(&p.peer_id), "already joined".into()))
                    .await;
            }
            (
                Message::Ephemeral {
                    document_id, data, ..
                },
                Some(p),
            ) => {
                // A device's heads digests (others' ephemeral messages are
                // not the relay's to forward): one token per 100 documents.
                if let Some(q) = wire::HeadsDigests::decode(&data, &limits)
                    .filter(|q| q.docs.len() <= MAX_DIGESTS)
                {
                    #[allow(clippy::cast_precision_loss, reason = "a token count")]
                    let cost = (q.docs.len() / 100) as f64;
                    if !bucket.take_n(cost) {
                        let _ = out_tx
                            .send(refuse(
                                Some(&p.peer_id),
                                "too many messages: slow down".into(),
                            ))
                            .await;
                        log("rate_limited", "heads digests over the rate".into()).await;
                        crate::metrics::rate_limited("messages");
                        end = "rate limited".into();
                        break;
                    }
                    let on = DocId::from(&document_id);
                    if let Err(e) = hub.digests(p, on, q).await {
                        tracing::warn!(error = %e, "heads digests failed");
                    }
                }
            }
            (
                Message::DocUnavailable { .. }
                | Message::RemoteSubscriptionChange { .. }
                | Message::RemoteHeadsChanged { .. }
                | Message::Peer { .. }
                | Message::Error { .. },
                Some(_),
            ) => {}
            (Message::Leave { .. }, Some(_)) => break,
            (Message::Unknown { type_name }, Some(p)) => {
                let _ = out_tx
                    .send(refuse(
                        Some(&p.peer_id),
                        format!("unknown message type {type_name:?}"),
                    ))
                    .await;
                log("unknown_message", type_name).await;
            }
        }
    }
    hub.disconnect(conn).await;
    let peer_id = peer.take().map(|p| p.peer_id.to_string());
    drop(out_tx);
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

#[cfg(test)]
mod tests;
