//! Who is asking, and dashboard sessions: login, logout, the session cookie
//! and CSRF protection.
//!
//! A token reaches a route in one of three ways:
//!
//! - `Authorization: Bearer <token>`: API clients, phones, tests;
//! - the `propsync_session` cookie that `POST /api/v1/login` sets (HttpOnly,
//!   SameSite=Strict, Secure when [`Config::secure_cookies`](crate::Config)):
//!   the dashboard, so no token sits in page script, URLs, logs or history.
//!   A state-changing request (anything but GET and HEAD) authenticated by
//!   the cookie must carry the session's CSRF token in `X-CSRF-Token`
//!   (returned by login); a bearer request needs none;
//! - `?token=`: only on `/sync`, for automerge-repo's JavaScript WebSocket
//!   adapter, which cannot set headers ([`crate::extract::token_of`]).
//!
//! Token kinds ([`auth::SESSION`], [`auth::DEVICE`]) are enforced: a session
//! token may use the REST API and the dashboard but not `/sync`; a device
//! token may use `/sync`, `GET /api/v1/me` and the blob store, nothing else.
//! Logout revokes the session server-side (its `web_sessions` row), so the
//! token stops working everywhere at once, live streams included.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use schema::Principal;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{self, AuthError, Claims};
use crate::error::{AppError, AppResult};
use crate::extract::Body;
use crate::limits::ClientIp;
use crate::state::Relay;
use crate::store::records;
use crate::store::storage::SecurityEntry;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "propsync_session";

/// The header a cookie-authenticated state-changing request must carry.
pub(crate) const CSRF_HEADER: &str = "x-csrf-token";

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
}

/// Where the token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Bearer,
    Cookie,
}

/// A checked caller: who, the token's claims, and the token itself (for
/// streams that check it again while they run).
#[derive(Debug, Clone)]
pub(crate) struct Authn {
    pub(crate) principal: Principal,
    pub(crate) claims: Claims,
    pub(crate) token: String,
}

/// The bearer token, else the session cookie.
pub(crate) fn credential(headers: &HeaderMap) -> Option<(String, Source)> {
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some((t.to_owned(), Source::Bearer));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|t| !t.is_empty())
        .map(|t| (t.to_owned(), Source::Cookie))
}

/// Equal strings, compared without an early exit.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks the request's token: its kind is one of `kinds`; a cookie-borne
/// session token on a state-changing request needs the CSRF header.
pub(crate) async fn authenticate(
    parts: &Parts,
    relay: &Relay,
    kinds: &[&'static str],
) -> AppResult<Authn> {
    let (token, source) = credential(&parts.headers).ok_or(AuthError::Missing)?;
    let (principal, claims, csrf) = relay.authenticate_with_csrf(&token).await?;
    if !kinds.contains(&claims.kind.as_str()) {
        return Err(AuthError::WrongKind(if claims.kind == auth::DEVICE {
            "a device token opens /sync, /api/v1/me and the blob store only: sign in for the dashboard"
        } else {
            "this route takes a device token"
        })
        .into());
    }
    if source == Source::Cookie && !matches!(parts.method, Method::GET | Method::HEAD) {
        let sent = parts
            .headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if !csrf.is_some_and(|c| same(&c, sent)) {
            return Err(AppError::Csrf);
        }
    }
    Ok(Authn {
        principal,
        claims,
        token,
    })
}

/// Any signed-in caller, device or dashboard session (`/api/v1/me`, blobs).
pub(crate) struct Caller(pub(crate) Principal);

impl FromRequestParts<Relay> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, relay: &Relay) -> Result<Self, Self::Rejection> {
        authenticate(parts, relay, &[auth::SESSION, auth::DEVICE])
            .await
            .map(|a| Caller(a.principal))
    }
}

/// A dashboard session, with its token and claims.
pub(crate) struct SessionAuthn(pub(crate) Authn);

impl FromRequestParts<Relay> for SessionAuthn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, relay: &Relay) -> Result<Self, Self::Rejection> {
        authenticate(parts, relay, &[auth::SESSION])
            .await
            .map(SessionAuthn)
    }
}

fn cookie(relay: &Relay, value: &str, max_age: i64) -> HeaderValue {
    let secure = if relay.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("propsync_session=; Max-Age=0"))
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

async fn login(
    State(relay): State<Relay>,
    ClientIp(ip): ClientIp,
    Body(body): Body<Login>,
) -> AppResult<Response> {
    if body.username.chars().count() > 64 || body.password.len() > 1024 {
        return Err(AuthError::BadLogin.into());
    }
    relay.edge.admit_login(ip, &body.username)?;
    let name = body.username.clone();
    let found = relay.db.read(move |c| records::user(c, &name)).await?;
    let hash = found.as_ref().map(|(_, h)| h.clone());
    // One argon2 verification whether or not the user exists.
    let ok = relay.edge.verify_password(hash, body.password).await;
    let Some(user) = found.map(|(u, _)| u).filter(|u| ok && !u.disabled) else {
        let at = relay.hub.now();
        relay.seclog.record(
            SecurityEntry::new(at, "bad_login")
                .user(body.username.clone())
                .peer(ip.to_string())
                .detail("wrong user name or password"),
        );
        if let Some(l) = relay.edge.login_failed(&body.username) {
            relay.seclog.record(
                SecurityEntry::new(at, "login_locked")
                    .user(l.user.clone())
                    .peer(ip.to_string())
                    .detail(format!(
                        "locked for {} s after {} failed logins in a row (lock-out {} for this name; the last try from {ip})",
                        l.seconds, l.failures, l.nth
                    )),
            );
        }
        return Err(AuthError::BadLogin.into());
    };
    relay.edge.login_succeeded(&body.username);
    let device = crate::admin::web_device(&user.username);
    let session = relay.open_session(&user.username, &device).await?;
    let ttl = relay.config.session_ttl.num_seconds();
    let tz = crate::settings::time_zone(&relay).await?;
    let mut r = Json(json!({
        "token": session.token,
        "csrf": session.csrf,
        "time_zone": tz.name(),
        "user": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "department": user.department,
        "inbox": user.inbox_doc.url().to_string(),
    }))
    .into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&relay, &session.token, ttl));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

async fn logout(State(relay): State<Relay>, SessionAuthn(a): SessionAuthn) -> AppResult<Response> {
    let id = a.claims.jti.clone().ok_or(AuthError::Invalid)?;
    let now = relay.hub.now();
    let ended = relay
        .db
        .write(move |tx| crate::store::edges::revoke_web_session(tx, &id, now))
        .await?;
    let mut r = Json(json!({ "logged_out": ended })).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie(&relay, "", 0));
    Ok(r)
}
