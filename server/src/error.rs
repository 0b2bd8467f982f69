//! The relay's one error type for HTTP: every failure becomes a JSON body
//! `{"error": {"code", "message"}}` with the right status, in one `match`.
//! Internal causes are logged, never sent.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;
use crate::hub::HubError;
use crate::store::StoreError;

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// 400: the request is malformed or names unknown values.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no valid token.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// 403: the user's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 409: a rule of the data refuses it (duplicate name, wrong state, offset).
    #[error("{0}")]
    Conflict(String),
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 422: the change was refused by a hard rule.
    #[error("{0}")]
    Refused(String),
    /// 403 `csrf`: a state-changing request authenticated by the session
    /// cookie without the session's CSRF token.
    #[error("this request needs the session's X-CSRF-Token header")]
    Csrf,
    /// 429 with `Retry-After`: a rate limit, a lock-out or an upload quota.
    #[error("{message}")]
    TooMany {
        /// `rate_limited`, `locked_out` or `quota_exceeded`.
        code: &'static str,
        /// For people.
        message: String,
        /// Seconds to wait.
        retry_after: u64,
    },
    /// 400 `invalid`: the request was read but its content is wrong in
    /// several places, each listed in `details` (an import's bad rows).
    #[error("{message}")]
    Invalid {
        /// For people.
        message: String,
        /// What is wrong, item by item.
        details: serde_json::Value,
    },
    /// 507: storage is full; reads still work.
    #[error("the relay's storage is full; try again when space has been freed")]
    StorageFull,
    /// 500: logged, never detailed to the caller.
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => AppError::StorageFull,
            StoreError::Conflict(m) => AppError::Conflict(m),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<HubError> for AppError {
    fn from(e: HubError) -> Self {
        match e {
            HubError::Store(s) => s.into(),
            HubError::Unavailable(id) => {
                AppError::NotFound(format!("document {id} is not available to you"))
            }
            HubError::Refused(m) => AppError::Refused(m),
            HubError::Interrupted => AppError::Internal("validation was interrupted".into()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid"),
            AppError::Auth(AuthError::BadLogin) => (StatusCode::UNAUTHORIZED, "bad_login"),
            AppError::Auth(AuthError::Expired) => (StatusCode::UNAUTHORIZED, "token_expired"),
            AppError::Auth(AuthError::Revoked) => (StatusCode::UNAUTHORIZED, "revoked"),
            AppError::Auth(AuthError::WrongKind(_)) => {
                (StatusCode::UNAUTHORIZED, "wrong_token_kind")
            }
            AppError::Auth(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::Refused(_) => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
            AppError::StorageFull => (StatusCode::INSUFFICIENT_STORAGE, "storage_full"),
            AppError::Csrf => (StatusCode::FORBIDDEN, "csrf"),
            AppError::TooMany { code, .. } => (StatusCode::TOO_MANY_REQUESTS, *code),
            AppError::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let mut body = json!({"error": {"code": code, "message": self.to_string()}});
        if let AppError::Invalid { details, .. } = &self {
            body["error"]["details"] = details.clone();
        }
        let mut r = (status, Json(body)).into_response();
        if let AppError::TooMany { retry_after, .. } = &self {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
        }
        r
    }
}

/// A handler's result.
pub type AppResult<T> = Result<T, AppError>;
