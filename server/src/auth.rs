//! Authentication: argon2 password hashes and HS256 JWTs.
//!
//! Two kinds of token: a *session* token from `POST /api/v1/login` (dashboard
//! users) and a *device* token bound to one enrolled device. Both carry the
//! key id (`kid`) of the key that signed them; keys live in the database and
//! can be rotated. Only HS256 is accepted: `alg: none` and any other algorithm
//! are refused before the signature is looked at. A device token also needs
//! its device to be enrolled and not revoked, checked on every use.

use std::sync::{Arc, RwLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::store::records::SigningKey;

/// What a token says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: String,
    /// The device, for device tokens; `web-<user>` for dashboard sessions.
    pub dev: String,
    /// `session` or `device`.
    pub kind: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// A session token's id (its `web_sessions` row, which logout revokes);
    /// device tokens have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
}

/// The `kind` of a dashboard session token: the REST API and the dashboard,
/// never `/sync`.
pub const SESSION: &str = "session";
/// The `kind` of a device token: `/sync`, `/api/v1/me` and the blob store.
pub const DEVICE: &str = "device";

/// Why a token was refused. The message is safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was given.
    #[error("no token: send Authorization: Bearer <token> or ?token=")]
    Missing,
    /// The token is not a JWT this relay issued (malformed, wrong algorithm, bad signature, unknown key).
    #[error("the token is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("the token has expired")]
    Expired,
    /// Before its not-before time.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// The device was revoked or is unknown, or the user is disabled.
    #[error("this device or user is no longer allowed")]
    Revoked,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadLogin,
    /// A valid token of the wrong kind for this route.
    #[error("{0}")]
    WrongKind(&'static str),
}

/// The signing keys, newest first; shared by every handler.
#[derive(Clone, Default)]
pub struct Keys {
    inner: Arc<RwLock<Vec<SigningKey>>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.inner.read().map(|k| k.len()).unwrap_or(0);
        f.debug_struct("Keys").field("count", &n).finish()
    }
}

/// A fresh random signing key.
pub(crate) fn new_key() -> SigningKey {
    let secret: [u8; 32] = rand::random();
    let kid: [u8; 6] = rand::random();
    SigningKey {
        kid: hex::encode(kid),
        secret: secret.to_vec(),
    }
}

impl Keys {
    /// Keys from the database, newest first.
    pub(crate) fn new(keys: Vec<SigningKey>) -> Self {
        Self {
            inner: Arc::new(RwLock::new(keys)),
        }
    }

    /// Replaces the key set (after a rotation).
    pub(crate) fn replace(&self, keys: Vec<SigningKey>) {
        if let Ok(mut k) = self.inner.write() {
            *k = keys;
        }
    }

    /// Signs a token for `user` on `device`, valid for `ttl` from `now`.
    ///
    /// # Errors
    /// When there is no signing key.
    pub fn issue(
        &self,
        user: &str,
        device: &str,
        kind: &str,
        now: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.issue_with_id(user, device, kind, now, ttl, None)
    }

    /// [`Keys::issue`] with a token id (`jti`), for session tokens.
    ///
    /// # Errors
    /// When there is no signing key.
    pub fn issue_with_id(
        &self,
        user: &str,
        device: &str,
        kind: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        jti: Option<&str>,
    ) -> Result<String, AuthError> {
        let keys = self.inner.read().map_err(|_| AuthError::Invalid)?;
        let key = keys.first().ok_or(AuthError::Invalid)?;
        let claims = Claims {
            sub: user.to_owned(),
            dev: device.to_owned(),
            kind: kind.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti: jti.map(str::to_owned),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&key.secret))
            .map_err(|_| AuthError::Invalid)
    }

    /// Checks a token's algorithm, key, signature and times at `now`.
    ///
    /// # Errors
    /// Which check failed.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Claims, AuthError> {
        if token.len() > 4096 {
            return Err(AuthError::Invalid);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::Invalid);
        }
        let kid = header.kid.ok_or(AuthError::Invalid)?;
        let secret = {
            let keys = self.inner.read().map_err(|_| AuthError::Invalid)?;
            keys.iter()
                .find(|k| k.kid == kid)
                .map(|k| k.secret.clone())
                .ok_or(AuthError::Invalid)?
        };
        let mut v = Validation::new(Algorithm::HS256);
        // Times are checked below against the caller's clock, not the system's.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["exp", "nbf", "sub"]
            .into_iter()
            .map(String::from)
            .collect();
        let data = jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_secret(&secret), &v)
            .map_err(|_| AuthError::Invalid)?;
        let c = data.claims;
        let t = now.timestamp();
        if t >= c.exp {
            return Err(AuthError::Expired);
        }
        if t + 5 < c.nbf {
            return Err(AuthError::NotYetValid);
        }
        Ok(c)
    }
}

/// Hashes a password with argon2id and a random salt.
///
/// # Errors
/// Never in practice; argon2's own errors are mapped to `Invalid`.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt_bytes: [u8; 16] = rand::random();
    let salt = SaltString::encode_b64(&salt_bytes).map_err(|_| AuthError::Invalid)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| AuthError::Invalid)
}

/// Checks a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests;
