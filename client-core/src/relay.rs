//! The relay's HTTP face, as the device uses it: `GET /api/v1/me` (enrolment)
//! and the resumable blob upload (`HEAD`/`PUT /api/v1/blobs/{sha256}`).
//! The answers' types are shared; the reqwest [`Client`] is native (in the
//! browser the field app calls the same endpoints with `fetch`).

use schema::{Department, DeviceId, DocUrl, Role, UserId};
use serde::Deserialize;

/// Why talking to the relay failed.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The relay URL is not `http://…` or `https://…`.
    #[error("not a relay url: {0:?}")]
    BadUrl(String),
    /// The request could not be made or its answer read.
    #[cfg(not(target_family = "wasm"))]
    #[error("http: {0}")]
    Http(#[from] reqwest::Error),
    /// The relay answered with an error.
    #[error("relay answered {status} {code}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The error code from the JSON body.
        code: String,
        /// The message from the JSON body.
        message: String,
    },
    /// The WebSocket failed.
    #[cfg(not(target_family = "wasm"))]
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// The relay broke the protocol.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The relay sent `error` and closed.
    #[error("the relay closed the session: {0}")]
    Closed(String),
    /// Nothing arrived for too long while documents were still out of sync.
    #[error("the sync stalled: {0} documents still out of sync")]
    Stalled(usize),
}

/// `GET /api/v1/me`.
#[derive(Clone, Debug, Deserialize)]
pub struct Me {
    /// The user.
    pub user: UserId,
    /// The user's role.
    pub role: Role,
    /// The user's department.
    pub department: Department,
    /// The device the token belongs to.
    pub device: DeviceId,
    /// The user's inbox document.
    pub inbox: DocUrl,
    /// The relay's peer id.
    #[serde(default)]
    pub relay_peer_id: Option<String>,
}

#[cfg(not(target_family = "wasm"))]
#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
    #[serde(default)]
    received: Option<u64>,
}

#[cfg(not(target_family = "wasm"))]
#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[cfg(not(target_family = "wasm"))]
#[derive(Debug, Deserialize)]
struct PutBody {
    received: u64,
    complete: bool,
}

#[cfg(not(target_family = "wasm"))]
/// How a blob `PUT` ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upload {
    /// The relay has this many bytes; `true` when that is all of them.
    Received(u64, bool),
    /// The offset was wrong; the relay has this many bytes.
    Resume(u64),
}

#[cfg(not(target_family = "wasm"))]
/// An HTTP client for one relay and one device token.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

#[cfg(not(target_family = "wasm"))]
impl Client {
    /// A client for the relay at `base` (`http://host:port`).
    ///
    /// # Errors
    /// When `base` is not an http(s) URL or the HTTP client cannot be built.
    pub fn new(base: &str, token: &str) -> Result<Self, RelayError> {
        let base = base.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(RelayError::BadUrl(base));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(10))
            .timeout(std::time::Duration::from_secs(120))
            .build()?;
        Ok(Self {
            http,
            base,
            token: token.to_owned(),
        })
    }

    /// The WebSocket URL of the relay's sync endpoint, token included.
    pub fn sync_url(&self) -> String {
        let ws = if let Some(rest) = self.base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", self.base.trim_start_matches("http://"))
        };
        format!("{ws}/sync?token={}", self.token)
    }

    /// The device token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Who the token belongs to.
    ///
    /// # Errors
    /// When the relay cannot be reached or refuses the token (401).
    pub async fn me(&self) -> Result<Me, RelayError> {
        let resp = self
            .http
            .get(format!("{}/api/v1/me", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(error_of(resp).await.0);
        }
        Ok(resp.json().await?)
    }

    /// How many bytes of a blob the relay has (`None`: none).
    ///
    /// # Errors
    /// When the relay cannot be reached or answers an error other than 404.
    pub async fn blob_received(&self, sha256: &str) -> Result<Option<u64>, RelayError> {
        let resp = self
            .http
            .head(format!("{}/api/v1/blobs/{sha256}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(error_of(resp).await.0);
        }
        let n = resp
            .headers()
            .get("x-blob-received")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(Some(n))
    }

    /// Sends a blob's bytes from `offset`.
    ///
    /// # Errors
    /// When the relay cannot be reached or refuses the upload.
    pub async fn put_blob(
        &self,
        sha256: &str,
        mime: &str,
        bytes: &[u8],
        offset: u64,
    ) -> Result<Upload, RelayError> {
        let start = usize::try_from(offset).map_err(|_| RelayError::Protocol("offset".into()))?;
        let body = bytes.get(start..).unwrap_or_default().to_vec();
        let resp = self
            .http
            .put(format!("{}/api/v1/blobs/{sha256}", self.base))
            .bearer_auth(&self.token)
            .header("x-blob-size", bytes.len().to_string())
            .header("x-blob-offset", offset.to_string())
            .header(reqwest::header::CONTENT_TYPE, mime)
            .body(body)
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::CONFLICT {
            let (err, received) = error_of(resp).await;
            return match received {
                Some(n) => Ok(Upload::Resume(n)),
                None => Err(err),
            };
        }
        if !resp.status().is_success() {
            return Err(error_of(resp).await.0);
        }
        let b: PutBody = resp.json().await?;
        Ok(Upload::Received(b.received, b.complete))
    }
}

#[cfg(not(target_family = "wasm"))]
async fn error_of(resp: reqwest::Response) -> (RelayError, Option<u64>) {
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => (
            RelayError::Status {
                status,
                code: b.error.code,
                message: b.error.message,
            },
            b.received,
        ),
        Err(_) => (
            RelayError::Status {
                status,
                code: String::new(),
                message: text.chars().take(200).collect(),
            },
            None,
        ),
    }
}
