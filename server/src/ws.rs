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
//! This file checks the token and upgrades; [`session`] serves the
//! connection.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::auth::AuthError;
use crate::error::AppError;
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
            relay.seclog.record(
                SecurityEntry::new(relay.hub.now(), "auth_refused")
                    .peer(ip.to_string())
                    .detail(e.to_string()),
            );
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
        .on_upgrade(move |socket| session::run(relay, principal, addr, socket)))
}

mod session;

#[cfg(test)]
mod tests;
