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

use axum::Router;
use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use serde::Deserialize;

use crate::auth::AuthError;
use crate::error::AppError;
use crate::extract::{APP_PROTOCOL, Params, RemoteAddr, protocol_token, token_of};
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

async fn upgrade(
    State(relay): State<Relay>,
    headers: HeaderMap,
    Params(q): Params<TokenQuery>,
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
