//! Rate limits at the relay's edge and the login lock-out.
//!
//! - Per client address, every request but the health check and the page's
//!   own files (REST and `/sync` upgrades alike): a GCRA limiter (`governor`)
//!   keyed by address, applied by [`per_address`] before any token is looked
//!   at, so a flood of bad tokens is refused before it costs a database read.
//! - On login, per client address and per user name (the name is in the body,
//!   so this is checked in the handler, [`Edge::admit_login`]).
//! - After [`Limits::lockout_after`] failed logins in a row a user name is
//!   locked out for [`Limits::lockout_base`], doubling with each further
//!   lock-out up to [`Limits::lockout_max`]; a correct password resets it. The
//!   lock-out is written to the security log once, when it starts.
//!
//! Refusals are `429` with `Retry-After` ([`AppError::TooMany`]). The client
//! address is the TCP peer's, or, when the peer is one of
//! [`Limits::trusted_proxies`], the nearest untrusted address in its
//! `X-Forwarded-For`. Limiter state lives in memory (a restart forgets it) and
//! is pruned by the relay's sweeper.
//!
//! `governor` is used directly rather than through `tower_governor`: the
//! refusal must be the relay's JSON error and be logged with the client's
//! address, and `tower_governor`'s error handler does not see the request.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::Limits;
use crate::error::AppError;
use crate::state::Relay;
use crate::store::storage::SecurityEntry;

/// The client's address, as the edge decided it (in the request's extensions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientIp(pub(crate) IpAddr);

/// Most user names whose failed logins are remembered at once.
const MAX_TRACKED_USERS: usize = 100_000;

#[derive(Debug, Default, Clone)]
struct Failures {
    in_a_row: u32,
    lockouts: u32,
    until: Option<Instant>,
    last: Option<Instant>,
}

/// A lock-out that has just started, to be logged once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lockout {
    pub(crate) user: String,
    pub(crate) failures: u32,
    pub(crate) seconds: u64,
    pub(crate) nth: u32,
}

/// The edge's limiters and the lock-out table; one per relay.
pub(crate) struct Edge {
    limits: Limits,
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    login_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    login_user: Option<DefaultKeyedRateLimiter<String>>,
    failures: Mutex<HashMap<String, Failures>>,
    dummy_hash: OnceLock<String>,
    password_checks: AtomicU64,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn limiter<K: std::hash::Hash + Eq + Clone>(
    rate: u32,
    burst: u32,
    per: Duration,
) -> Option<DefaultKeyedRateLimiter<K>> {
    let rate = NonZeroU32::new(rate)?;
    let burst = NonZeroU32::new(burst.max(1))?;
    let quota = Quota::with_period(per / rate.get())?.allow_burst(burst);
    Some(RateLimiter::keyed(quota))
}

fn check<K: std::hash::Hash + Eq + Clone>(
    l: Option<&DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), Duration> {
    match l {
        None => Ok(()),
        Some(l) => l
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
    }
}

/// Whole seconds to wait, at least 1.
fn seconds(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

impl Edge {
    pub(crate) fn new(limits: Limits) -> Self {
        let second = Duration::from_secs(1);
        let minute = Duration::from_secs(60);
        Self {
            per_address: limiter(
                limits.per_address_per_second,
                limits.per_address_burst,
                second,
            ),
            login_address: limiter(
                limits.logins_per_minute_per_address,
                limits.login_burst_per_address,
                minute,
            ),
            login_user: limiter(
                limits.logins_per_minute_per_user,
                limits.login_burst_per_user,
                minute,
            ),
            limits,
            failures: Mutex::new(HashMap::new()),
            dummy_hash: OnceLock::new(),
            password_checks: AtomicU64::new(0),
        }
    }

    /// The client's address: the TCP peer, or for a trusted proxy the
    /// nearest untrusted hop it names in `X-Forwarded-For`.
    pub(crate) fn client_ip(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> IpAddr {
        let peer = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !self.limits.trusted_proxies.contains(&peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|h| h.trim().parse().ok())
            .collect();
        hops.into_iter()
            .rev()
            .find(|ip| !self.limits.trusted_proxies.contains(ip))
            .unwrap_or(peer)
    }

    /// One request from `ip`; the wait when it is over the limit.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<(), Duration> {
        check(self.per_address.as_ref(), &ip)
    }

    /// A login attempt for `user` from `ip`: the address's and the name's
    /// rate, and the name's lock-out.
    pub(crate) fn admit_login(&self, ip: IpAddr, user: &str) -> Result<(), AppError> {
        if let Err(wait) = check(self.login_address.as_ref(), &ip) {
            crate::metrics::rate_limited("login");
            return Err(AppError::TooMany {
                code: "rate_limited",
                message: "too many login attempts from this address; wait and try again".into(),
                retry_after: seconds(wait),
            });
        }
        let key = user.to_lowercase();
        if let Some(until) = self
            .failures
            .lock()
            .ok()
            .and_then(|f| f.get(&key).and_then(|f| f.until))
        {
            let now = Instant::now();
            if until > now {
                crate::metrics::rate_limited("login");
                return Err(AppError::TooMany {
                    code: "locked_out",
                    message:
                        "too many failed logins for this user name: it is locked for a while; \
                              a manager can see it in the security log"
                            .into(),
                    retry_after: seconds(until - now),
                });
            }
        }
        if let Err(wait) = check(self.login_user.as_ref(), &key) {
            crate::metrics::rate_limited("login");
            return Err(AppError::TooMany {
                code: "rate_limited",
                message: "too many login attempts for this user name; wait and try again".into(),
                retry_after: seconds(wait),
            });
        }
        Ok(())
    }

    /// A failed login for `user`; the lock-out it started, if it started one.
    pub(crate) fn login_failed(&self, user: &str) -> Option<Lockout> {
        let after = self.limits.lockout_after;
        if after == 0 {
            return None;
        }
        let key = user.to_lowercase();
        let mut all = self.failures.lock().ok()?;
        if all.len() >= MAX_TRACKED_USERS && !all.contains_key(&key) {
            prune(&mut all, self.limits.lockout_max);
            if all.len() >= MAX_TRACKED_USERS {
                return None;
            }
        }
        let now = Instant::now();
        let f = all.entry(key.clone()).or_default();
        f.last = Some(now);
        f.in_a_row += 1;
        if f.in_a_row < after {
            return None;
        }
        let failures = f.in_a_row;
        f.in_a_row = 0;
        f.lockouts += 1;
        let factor = 2u32.saturating_pow(f.lockouts.saturating_sub(1).min(20));
        let length = self
            .limits
            .lockout_base
            .saturating_mul(factor)
            .min(self.limits.lockout_max);
        f.until = Some(now + length);
        Some(Lockout {
            user: key,
            failures,
            seconds: seconds(length),
            nth: f.lockouts,
        })
    }

    /// A correct password: the name's failures are forgotten.
    pub(crate) fn login_succeeded(&self, user: &str) {
        if let Ok(mut all) = self.failures.lock() {
            all.remove(&user.to_lowercase());
        }
    }

    /// Checks `password` against `hash`, or against a dummy hash when there is
    /// none (an unknown user), so both take one argon2 verification.
    pub(crate) async fn verify_password(&self, hash: Option<String>, password: String) -> bool {
        let known = hash.is_some();
        let hash = match hash {
            Some(h) => h,
            None => self.dummy_hash().await,
        };
        self.password_checks.fetch_add(1, Ordering::Relaxed);
        let ok =
            tokio::task::spawn_blocking(move || crate::auth::verify_password(&password, &hash))
                .await
                .unwrap_or(false);
        ok && known
    }

    async fn dummy_hash(&self) -> String {
        if let Some(h) = self.dummy_hash.get() {
            return h.clone();
        }
        let secret: [u8; 16] = rand::random();
        let made = tokio::task::spawn_blocking(move || {
            crate::auth::hash_password(&hex::encode(secret)).unwrap_or_default()
        })
        .await
        .unwrap_or_default();
        self.dummy_hash.get_or_init(|| made).clone()
    }

    /// How many passwords were checked with argon2 (for tests).
    pub(crate) fn password_checks(&self) -> u64 {
        self.password_checks.load(Ordering::Relaxed)
    }

    /// Forgets limiter state no longer needed (run by the sweeper).
    pub(crate) fn prune(&self) {
        for l in [&self.per_address, &self.login_address]
            .into_iter()
            .flatten()
        {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Some(l) = &self.login_user {
            l.retain_recent();
            l.shrink_to_fit();
        }
        if let Ok(mut all) = self.failures.lock() {
            prune(&mut all, self.limits.lockout_max);
        }
    }
}

/// Drops names whose last failure is older than the longest lock-out and
/// that are not locked now.
fn prune(all: &mut HashMap<String, Failures>, keep: Duration) {
    let now = Instant::now();
    all.retain(|_, f| {
        f.until.is_some_and(|u| u > now) || f.last.is_some_and(|l| now.duration_since(l) < keep)
    });
}

/// Routes no limit applies to: the health check and the page's own files.
fn exempt(path: &str) -> bool {
    path == "/api/v1/health" || path == "/" || path.starts_with("/assets/")
}

/// The per-address limit, before anything else: a request over it gets a
/// 429 and is logged (coalesced) without its token being looked at.
pub(crate) async fn per_address(
    State(relay): State<Relay>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = relay.edge.client_ip(peer, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    if !exempt(req.uri().path())
        && let Err(wait) = relay.edge.admit(ip)
    {
        crate::metrics::rate_limited("address");
        relay.seclog.record(
            SecurityEntry::new(relay.hub.now(), "rate_limited")
                .peer(ip.to_string())
                .detail(format!(
                    "over {} requests per second from one address",
                    relay.config.limits.per_address_per_second
                )),
        );
        return AppError::TooMany {
            code: "rate_limited",
            message: "too many requests from this address; slow down".into(),
            retry_after: seconds(wait),
        }
        .into_response();
    }
    next.run(req).await
}

/// The client address the edge recorded for this request.
impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .or_else(|| {
                parts
                    .extensions
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|c| ClientIp(c.0.ip()))
            })
            .unwrap_or(ClientIp(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

#[cfg(test)]
mod tests;
