//! The request extractors every handler shares, and how a token is read
//! from a request: [`Body`] and [`Params`] (whose rejections are our JSON
//! errors), [`Authed`] (a dashboard session's caller), [`RemoteAddr`], and
//! the `/sync` token from a bearer header, `?token=` or a WebSocket
//! subprotocol. Handlers import them from here; `api.rs` and `ws.rs` do not
//! import each other.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use schema::Principal;

use crate::error::AppError;
use crate::state::Relay;

/// A JSON body whose rejection is our JSON error, never axum's plain text.
pub(crate) struct Body<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = AppError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(r) => Err(body_refused(r.status(), r.body_text())),
        }
    }
}

/// Our error for a request body an extractor would not take: a body over the
/// route's limit is 413 (`too_large`), anything else malformed is 400.
pub(crate) fn body_refused(status: StatusCode, text: String) -> AppError {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::TooLarge(format!(
            "the request body is larger than the relay accepts here ({text})"
        ))
    } else {
        AppError::BadRequest(text)
    }
}

/// Query parameters whose rejection is our JSON error.
pub(crate) struct Params<T>(pub(crate) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Params(v)),
            Err(r) => Err(AppError::BadRequest(r.body_text())),
        }
    }
}

/// A dashboard session's caller: a session token from the bearer header or
/// the session cookie (with its CSRF token on state-changing requests); never
/// `?token=`, never a device token ([`crate::session`]).
pub(crate) struct Authed(pub(crate) Principal);

impl FromRequestParts<Relay> for Authed {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, relay: &Relay) -> Result<Self, Self::Rejection> {
        crate::session::authenticate(parts, relay, &[crate::auth::SESSION])
            .await
            .map(|a| Authed(a.principal))
    }
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

#[cfg(test)]
mod tests;
