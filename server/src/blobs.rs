//! Photos and files: content-addressed, resumable uploads
//! (`PUT /api/v1/blobs/{sha256}` with `X-Blob-Size` and `X-Blob-Offset`),
//! size-capped and hash-checked before they count as received.
//!
//! Bytes arrive into `DATA/blobs/<sha256>.part`; when the last byte is in and
//! the SHA-256 matches the name, the file is renamed to `DATA/blobs/<sha256>`.
//! The name is checked to be 64 lowercase hex digits before any path is made,
//! so no request can name a file outside the blob directory.

use std::io::Write;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::api::Authed;
use crate::error::{AppError, AppResult};
use crate::state::Relay;
use crate::store::records;

pub(crate) fn router(max: u64) -> Router<Relay> {
    Router::new()
        .route(
            "/api/v1/blobs/{sha256}",
            put(put_blob).head(head_blob).get(get_blob),
        )
        .layer(DefaultBodyLimit::max(
            usize::try_from(max)
                .unwrap_or(usize::MAX)
                .saturating_add(1024),
        ))
}

fn checked(sha: &str) -> AppResult<&str> {
    if schema::judge::is_sha256_hex(sha) {
        Ok(sha)
    } else {
        Err(AppError::BadRequest(
            "a blob is named by its SHA-256: 64 lowercase hex digits".into(),
        ))
    }
}

fn header_u64(h: &HeaderMap, name: &str) -> AppResult<Option<u64>> {
    h.get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| AppError::BadRequest(format!("{name} must be a whole number")))
        })
        .transpose()
}

async fn put_blob(
    State(relay): State<Relay>,
    Authed(p): Authed,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> AppResult<Response> {
    let sha = checked(&sha)?.to_owned();
    let size = header_u64(&headers, "x-blob-size")?
        .ok_or_else(|| AppError::BadRequest("X-Blob-Size is required".into()))?;
    if size > relay.config.max_blob_bytes {
        return Err(AppError::TooLarge(format!(
            "blobs are at most {} bytes",
            relay.config.max_blob_bytes
        )));
    }
    let offset = header_u64(&headers, "x-blob-offset")?.unwrap_or(0);
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|m| m.len() < 100)
        .unwrap_or("application/octet-stream")
        .to_owned();
    let dir = relay.config.blob_dir();
    let (done, part) = (dir.join(&sha), dir.join(format!("{sha}.part")));
    let sha2 = sha.clone();
    let result = tokio::task::spawn_blocking(move || -> AppResult<Result<(u64, bool), u64>> {
        if done.exists() {
            return Ok(Ok((size, true)));
        }
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if offset != have {
            return Ok(Err(have));
        }
        let len = body.len() as u64;
        if offset + len > size {
            return Err(AppError::BadRequest("more bytes than X-Blob-Size".into()));
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&part)
            .map_err(|e| io_error(&e))?;
        f.write_all(&body).map_err(|e| io_error(&e))?;
        f.sync_all().map_err(|e| io_error(&e))?;
        let received = offset + len;
        if received < size {
            return Ok(Ok((received, false)));
        }
        let bytes = std::fs::read(&part).map_err(|e| io_error(&e))?;
        if hex::encode(Sha256::digest(&bytes)) != sha2 {
            let _ = std::fs::remove_file(&part);
            return Err(AppError::Refused(
                "the bytes do not hash to the blob's name; upload discarded".into(),
            ));
        }
        std::fs::rename(&part, &done).map_err(|e| io_error(&e))?;
        Ok(Ok((received, true)))
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))??;
    match result {
        Err(have) => Ok((
            StatusCode::CONFLICT,
            Json(json!({
                "error": {"code": "offset_mismatch", "message": format!("the relay has {have} bytes; resume from there")},
                "received": have,
            })),
        )
            .into_response()),
        Ok((received, complete)) => {
            let (s, m, by, now) = (sha.clone(), mime, p.user.to_string(), relay.hub.now());
            relay
                .db
                .write(move |tx| records::upsert_blob(tx, &s, size, &m, received, complete, &by, now))
                .await?;
            Ok(Json(json!({"sha256": sha, "received": received, "complete": complete})).into_response())
        }
    }
}

fn io_error(e: &std::io::Error) -> AppError {
    if e.raw_os_error() == Some(28) {
        AppError::StorageFull
    } else {
        AppError::Internal(format!("blob storage: {e}"))
    }
}

async fn head_blob(
    State(relay): State<Relay>,
    Authed(_): Authed,
    Path(sha): Path<String>,
) -> AppResult<Response> {
    let sha = checked(&sha)?;
    let dir = relay.config.blob_dir();
    let received = match std::fs::metadata(dir.join(sha)) {
        Ok(m) => m.len(),
        Err(_) => match std::fs::metadata(dir.join(format!("{sha}.part"))) {
            Ok(m) => m.len(),
            Err(_) => return Ok(StatusCode::NOT_FOUND.into_response()),
        },
    };
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert("x-blob-received", HeaderValue::from(received));
    Ok(r)
}

async fn get_blob(
    State(relay): State<Relay>,
    Authed(_): Authed,
    Path(sha): Path<String>,
) -> AppResult<Response> {
    let sha = checked(&sha)?.to_owned();
    let path = relay.config.blob_dir().join(&sha);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| AppError::NotFound(format!("no blob {sha}")))?;
    let s = sha.clone();
    let mime = relay
        .db
        .read(move |c| records::blob_mime(c, &s))
        .await?
        .unwrap_or_else(|| "application/octet-stream".into());
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}
