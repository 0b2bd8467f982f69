//! Enrolling a phone without typing a token (the field app).
//!
//! A supervisor, engineering supervisor or manager asks for a one-time code
//! for a user (`POST /api/v1/enrolments`, from the dashboard's Devices page,
//! which shows it as text and as a QR code of `<relay>/app/#enrol=<code>`; the
//! fragment never reaches a server or a log). The phone exchanges it once,
//! before it expires (10 minutes), for a new device and its device token
//! (`POST /api/v1/enrol`, no token needed, rate-limited): the same tokens
//! `admin enroll-device` issues. Only the code's SHA-256 is stored; the code
//! is burnt in the same transaction that creates the device, and every failed
//! exchange is a security-log row.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use rusqlite::{OptionalExtension, params};
use schema::doc::rfc3339;
use schema::{DeviceId, Role, UserId};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::extract::RemoteAddr;
use crate::extract::{Authed, Body};
use crate::state::Relay;
use crate::store::StoreError;
use crate::store::records;

/// How long a code is good for.
pub(crate) const CODE_TTL: Duration = Duration::minutes(10);

/// The code's alphabet: no 0/O, 1/I/L, so it can be read out and typed.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Characters in a code (about 50 bits: far beyond what the rate limit lets
/// anyone try in ten minutes).
const CODE_LEN: usize = 10;

/// Who may enrol phones for others.
const ENROLLERS: &[Role] = &[Role::Supervisor, Role::EngineeringSupervisor, Role::Manager];

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/api/v1/enrolments", post(create))
        .route("/api/v1/enrol", post(exchange))
}

/// A new code, grouped for reading: `ABCD-EFGH-JK`.
fn new_code() -> String {
    let mut rng = rand::rng();
    let raw: String = (0..CODE_LEN)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{}-{}-{}", &raw[..4], &raw[4..8], &raw[8..])
}

/// The code as stored: upper case, separators and spaces dropped, hashed.
pub(crate) fn code_hash(code: &str) -> String {
    let norm: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    hex::encode(Sha256::digest(norm.as_bytes()))
}

#[derive(Deserialize)]
struct NewEnrolment {
    username: String,
    #[serde(default)]
    label: Option<String>,
    /// The dashboard's origin (`location.origin`), for the QR code's link.
    #[serde(default)]
    origin: Option<String>,
}

async fn create(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Body(body): Body<NewEnrolment>,
) -> AppResult<(StatusCode, Json<Value>)> {
    if !ENROLLERS.contains(&p.role) {
        return Err(AppError::Forbidden(format!(
            "a {} may not enrol phones",
            p.role
        )));
    }
    let user = UserId::new(body.username.clone())
        .map_err(|_| AppError::BadRequest(format!("{:?} is not a user name", body.username)))?;
    let name = user.to_string();
    let found = relay.db.read(move |c| records::user(c, &name)).await?;
    match found {
        Some((u, _)) if !u.disabled => {}
        Some(_) => return Err(AppError::Conflict(format!("{user} is disabled"))),
        None => return Err(AppError::NotFound(format!("no user {user}"))),
    }
    let label = body
        .label
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| "field app".into());
    if label.chars().count() > 80 {
        return Err(AppError::BadRequest(
            "the label is over 80 characters".into(),
        ));
    }
    let origin = match body.origin {
        Some(o) if (o.starts_with("http://") || o.starts_with("https://")) && o.len() <= 200 => {
            o.trim_end_matches('/').to_owned()
        }
        Some(o) => return Err(AppError::BadRequest(format!("{o:?} is not an origin"))),
        None => String::new(),
    };
    let code = new_code();
    let now = relay.hub.now();
    let expires = now + CODE_TTL;
    let (hash, by, u, l) = (
        code_hash(&code),
        p.user.to_string(),
        user.to_string(),
        label,
    );
    relay
        .db
        .write(move |tx| {
            tx.execute(
                "INSERT INTO enrolments (code_hash, username, label, created_by, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![hash, u, l, by, rfc3339(now), rfc3339(expires)],
            )?;
            Ok(())
        })
        .await?;
    let link = format!("{origin}/app/#enrol={code}");
    let qr = crate::dashboard::qr_svg(&link).map_err(AppError::Internal)?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "code": code,
            "username": user,
            "expires_at": rfc3339(expires),
            "link": link,
            "qr_svg": qr,
        })),
    ))
}

#[derive(Deserialize)]
struct Exchange {
    code: String,
    #[serde(default)]
    label: Option<String>,
}

/// Why an exchange failed (the security log's detail; the phone hears only
/// that the code is not valid).
enum Refusal {
    Unknown,
    Used,
    Expired,
}

impl Refusal {
    fn detail(&self) -> &'static str {
        match self {
            Refusal::Unknown => "no such enrolment code",
            Refusal::Used => "enrolment code already used",
            Refusal::Expired => "enrolment code expired",
        }
    }
}

/// A token bucket per address and one for everyone: the exchange needs no
/// token, so guessing is slowed here.
#[derive(Debug, Default)]
pub(crate) struct Limiter {
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

/// Per address: 5 tries at once, then one every 12 s; all addresses together 60 at once, 1 a second.
const PER_PEER: (f64, f64) = (5.0, 1.0 / 12.0);
const GLOBAL: (f64, f64) = (60.0, 1.0);

impl Limiter {
    fn take(&self, key: &str, (burst, rate): (f64, f64), now: Instant) -> bool {
        let Ok(mut b) = self.buckets.lock() else {
            return false;
        };
        if b.len() > 10_000 {
            b.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = b.entry(key.to_owned()).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether an exchange from `peer` may go ahead now.
    pub(crate) fn allow(&self, peer: Option<&str>, now: Instant) -> bool {
        let host = peer
            .and_then(|p| p.rsplit_once(':').map(|(h, _)| h))
            .unwrap_or("unknown");
        self.take(&format!("peer:{host}"), PER_PEER, now) && self.take("*", GLOBAL, now)
    }
}

fn too_many() -> Response {
    crate::metrics::rate_limited("enrol");
    AppError::TooMany {
        code: "rate_limited",
        message: "too many enrolment attempts; wait a minute".into(),
        retry_after: 12,
    }
    .into_response()
}

async fn exchange(
    State(relay): State<Relay>,
    RemoteAddr(addr): RemoteAddr,
    Body(body): Body<Exchange>,
) -> AppResult<Response> {
    if !relay.enrol_limiter.allow(addr.as_deref(), Instant::now()) {
        log(
            &relay,
            None,
            addr.as_deref(),
            "enrol_rate_limited",
            "too many enrolment attempts",
        )
        .await;
        return Ok(too_many());
    }
    let label = body
        .label
        .filter(|l| !l.trim().is_empty() && l.chars().count() <= 80);
    let hash = code_hash(&body.code);
    let now = relay.hub.now();
    let suffix: String = {
        let mut rng = rand::rng();
        (0..6)
            .map(|_| char::from(b"abcdefghijkmnpqrstuvwxyz23456789"[rng.random_range(0..32)]))
            .collect()
    };
    let outcome = relay
        .db
        .write(move |tx| burn(tx, &hash, now, &suffix, label.as_deref()))
        .await?;
    let (user, device) = match outcome {
        Ok(x) => x,
        Err((refusal, user)) => {
            log(
                &relay,
                user.as_deref(),
                addr.as_deref(),
                "enrol_refused",
                refusal.detail(),
            )
            .await;
            return Ok((
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": {"code": "invalid_code",
                    "message": "this enrolment code is not valid (unknown, used or expired): ask your supervisor for a new one"}})),
            )
                .into_response());
        }
    };
    let token = relay.issue_token(&user, &device, false)?;
    Ok(Json(json!({
        "user": user,
        "device": device,
        "token": token,
    }))
    .into_response())
}

type Burnt = Result<(UserId, DeviceId), (Refusal, Option<String>)>;

/// In one transaction: find the code, refuse it if used or expired, else
/// mark it used and create the device.
fn burn(
    tx: &rusqlite::Transaction<'_>,
    hash: &str,
    now: DateTime<Utc>,
    suffix: &str,
    label: Option<&str>,
) -> Result<Burnt, StoreError> {
    let row: Option<(String, String, String, Option<String>)> = tx
        .query_row(
            "SELECT username, label, expires_at, used_at FROM enrolments WHERE code_hash = ?1",
            [hash],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let Some((username, stored_label, expires, used)) = row else {
        return Ok(Err((Refusal::Unknown, None)));
    };
    if used.is_some() {
        return Ok(Err((Refusal::Used, Some(username))));
    }
    let expired =
        DateTime::parse_from_rfc3339(&expires).map_or(true, |e| e.with_timezone(&Utc) <= now);
    if expired {
        return Ok(Err((Refusal::Expired, Some(username))));
    }
    let user = UserId::new(username.clone()).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let device = DeviceId::new(format!("app-{username}-{suffix}"))
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let n = tx.execute(
        "UPDATE enrolments SET used_at = ?2, device_id = ?3 WHERE code_hash = ?1 AND used_at IS NULL",
        params![hash, rfc3339(now), device.as_str()],
    )?;
    if n != 1 {
        return Ok(Err((Refusal::Used, Some(username))));
    }
    records::insert_device(
        tx,
        &records::Device {
            device_id: device.clone(),
            username: user.clone(),
            label: label.unwrap_or(&stored_label).to_owned(),
            created_at: now,
            revoked_at: None,
            last_seen_at: None,
        },
    )?;
    Ok(Ok((user, device)))
}

async fn log(
    relay: &Relay,
    user: Option<&str>,
    peer: Option<&str>,
    kind: &'static str,
    detail: &'static str,
) {
    let (at, user, peer) = (
        relay.hub.now(),
        user.map(str::to_owned),
        peer.map(str::to_owned),
    );
    let logged = relay
        .db
        .write(move |tx| {
            records::log_security(tx, at, user.as_deref(), None, peer.as_deref(), kind, detail)
        })
        .await;
    if let Err(e) = logged {
        tracing::warn!(error = %e, "security log write failed");
    }
}

#[cfg(test)]
mod tests;
