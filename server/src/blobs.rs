//! Photos and files: content-addressed, resumable uploads
//! (`PUT /api/v1/blobs/{sha256}` with `X-Blob-Size` and `X-Blob-Offset`),
//! size-capped and hash-checked before they count as received.
//!
//! Bytes arrive into `DATA/blobs/<sha256>.part`, fsynced per piece; when the
//! last byte is in and the SHA-256 matches the name, the file is renamed to
//! `DATA/blobs/<sha256>` and the directory is fsynced, so a blob acknowledged
//! complete survives a power cut. The name is checked to be 64 lowercase hex
//! digits before any path is made, so no request can name a file outside the
//! blob directory. A `.part` nobody touched for
//! [`Config::blob_part_max_age`](crate::Config) is deleted ([`sweep_parts`]).
//!
//! Who may read a blob (`GET`, and `HEAD`, which tells whether it exists):
//! someone who sent its whole bytes (the phone uploads before it syncs the
//! ticket that names it), or someone who may sync a ticket that references
//! it (an attachment's `sha256` or an event's `photos`; `blob_refs`, written
//! with the ticket's register row). Anyone else gets the same 404 as for a
//! blob that does not exist. Content addressing must not let a hash stand in
//! for the bytes: an upload of a blob the relay already has counts only once
//! its bytes are sent and hash to the name. Each device may send at most
//! [`Config::blob_quota_per_day`](crate::Config) bytes per UTC day (429).
//!
//! Blobs are served from the dashboard's own origin, so an upload must never
//! become a page there: only the photo types of [`INLINE`] are served as
//! themselves; anything else (PDF, HTML, SVG, whatever an uploader claims) is
//! accepted and kept, but served as `application/octet-stream` with
//! `Content-Disposition: attachment`. Every blob response says `nosniff` and
//! carries a sandboxing `Content-Security-Policy`.

use std::io::Write;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::extract::body_refused;
use crate::session::Caller;
use crate::state::Relay;
use crate::store::{edges, records};

/// The media types served inline: photos, in the formats phones take them.
/// Not SVG: it is a document that can carry script.
pub(crate) const INLINE: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/heic",
    "image/heif",
];

/// The policy of every blob response: no script, no plugin, no form, no
/// same-origin access even if a browser renders the bytes as a document.
/// Inline styles only, so a browser's own image viewer still lays out.
pub(crate) const BLOB_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; sandbox";

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
        .layer(map_response(harden))
}

/// Every blob answer, errors included: the browser must take the declared
/// type as it is, and a rendered blob runs sandboxed with nothing allowed.
async fn harden(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(BLOB_CSP),
    );
    r
}

/// The type a blob is served as, from the type its uploader declared: one of
/// [`INLINE`] (parameters and case ignored), or `None` for "download only".
pub(crate) fn inline_type(declared: &str) -> Option<&'static str> {
    let essence = declared.split(';').next().unwrap_or_default().trim();
    INLINE
        .iter()
        .copied()
        .find(|t| t.eq_ignore_ascii_case(essence))
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
    Caller(p): Caller,
    Path(sha): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> AppResult<Response> {
    let sha = checked(&sha)?.to_owned();
    let size = header_u64(&headers, "x-blob-size")?
        .ok_or_else(|| AppError::BadRequest("X-Blob-Size is required".into()))?;
    let too_large = || {
        AppError::TooLarge(format!(
            "blobs are at most {} bytes",
            relay.config.max_blob_bytes
        ))
    };
    if size > relay.config.max_blob_bytes {
        return Err(too_large());
    }
    // A body over the route's limit is a 413 like any other, in JSON.
    let body = body.map_err(|r| match body_refused(r.status(), r.body_text()) {
        AppError::TooLarge(_) => too_large(),
        other => other,
    })?;
    let offset = header_u64(&headers, "x-blob-offset")?.unwrap_or(0);
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|m| m.len() < 100)
        .unwrap_or("application/octet-stream")
        .to_owned();
    let now = relay.hub.now();
    let day = now.format("%Y-%m-%d").to_string();
    let (s, u, d, dv) = (
        sha.clone(),
        p.user.to_string(),
        day.clone(),
        p.device.to_string(),
    );
    let (uploader, used) = relay
        .db
        .read(move |c| {
            Ok((
                edges::is_uploader(c, &s, &u)?,
                edges::blob_usage(c, &dv, &d)?,
            ))
        })
        .await?;
    let quota = relay.config.blob_quota_per_day;
    if used.saturating_add(body.len() as u64) > quota {
        let midnight = (now.date_naive() + chrono::Days::new(1))
            .and_hms_opt(0, 0, 0)
            .map_or(now, |t| t.and_utc());
        return Err(AppError::TooMany {
            code: "quota_exceeded",
            message: format!(
                "this device has sent {used} bytes of photos today; the limit is {quota} bytes a day"
            ),
            retry_after: u64::try_from((midnight - now).num_seconds())
                .unwrap_or(1)
                .max(1),
        });
    }
    let dir = relay.config.blob_dir();
    let (done, part) = (dir.join(&sha), dir.join(format!("{sha}.part")));
    let sha2 = sha.clone();
    let sent = body.len() as u64;
    let result = tokio::task::spawn_blocking(move || -> AppResult<Result<(u64, bool), u64>> {
        if done.exists() && uploader {
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
        if done.exists() {
            // The same bytes again, from someone who now proved they hold them.
            std::fs::remove_file(&part).map_err(|e| io_error(&e))?;
        } else {
            std::fs::rename(&part, &done).map_err(|e| io_error(&e))?;
            // The rename is durable only once the directory is.
            sync_dir(&dir)?;
        }
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
            let (s, m, by, dev) = (sha.clone(), mime, p.user.to_string(), p.device.to_string());
            relay
                .db
                .write(move |tx| {
                    records::upsert_blob(tx, &s, size, &m, received, complete, &by, now)?;
                    edges::add_blob_usage(tx, &dev, &day, sent)?;
                    if complete {
                        edges::add_uploader(tx, &s, &by)?;
                    }
                    Ok(())
                })
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

/// Fsyncs a directory, so the names made in it (a rename) are durable.
fn sync_dir(dir: &std::path::Path) -> AppResult<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(&e))
}

/// Whether `p` may read blob `sha`: they sent its bytes, or they may sync a
/// ticket that references it.
async fn may_read(relay: &Relay, p: &schema::Principal, sha: &str) -> AppResult<bool> {
    let (s, u) = (sha.to_owned(), p.user.to_string());
    let (uploader, docs) = relay
        .db
        .read(move |c| Ok((edges::is_uploader(c, &s, &u)?, edges::blob_refs(c, &s)?)))
        .await?;
    if uploader {
        return Ok(true);
    }
    for doc in docs {
        if relay.hub.may_sync(p, doc).await? {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn head_blob(
    State(relay): State<Relay>,
    Caller(p): Caller,
    Path(sha): Path<String>,
) -> AppResult<Response> {
    let sha = checked(&sha)?;
    let dir = relay.config.blob_dir();
    // The whole blob is reported only to those who may read it; anyone else
    // sees their own upload's progress (a `.part`), or nothing.
    let whole = if may_read(&relay, &p, sha).await? {
        std::fs::metadata(dir.join(sha)).ok()
    } else {
        None
    };
    let received = match whole {
        Some(m) => m.len(),
        None => match std::fs::metadata(dir.join(format!("{sha}.part"))) {
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
    Caller(p): Caller,
    Path(sha): Path<String>,
) -> AppResult<Response> {
    let sha = checked(&sha)?.to_owned();
    if !may_read(&relay, &p, &sha).await? {
        return Err(AppError::NotFound(format!("no blob {sha}")));
    }
    let path = relay.config.blob_dir().join(&sha);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| AppError::NotFound(format!("no blob {sha}")))?;
    let s = sha.clone();
    let declared = relay.db.read(move |c| records::blob_mime(c, &s)).await?;
    let (mime, disposition) = match declared.as_deref().and_then(inline_type) {
        Some(t) => (t, "inline".to_owned()),
        None => (
            "application/octet-stream",
            format!("attachment; filename=\"{sha}\""),
        ),
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}

/// Deletes unfinished uploads (`*.part`) last written more than `max_age`
/// ago; returns how many.
pub(crate) fn sweep_parts(dir: &std::path::Path, max_age: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "part") {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > max_age);
        if old && std::fs::remove_file(&path).is_ok() {
            n += 1;
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::inline_type;

    #[test]
    fn only_photo_types_are_served_inline() {
        for (declared, served) in [
            ("image/jpeg", Some("image/jpeg")),
            ("IMAGE/PNG", Some("image/png")),
            ("image/webp; q=1", Some("image/webp")),
            (" image/gif ", Some("image/gif")),
            ("image/heic", Some("image/heic")),
            ("text/html", None),
            ("text/html; charset=utf-8", None),
            ("image/svg+xml", None),
            ("application/pdf", None),
            ("application/xhtml+xml", None),
            ("image/jpeg, text/html", None),
            ("", None),
        ] {
            assert_eq!(inline_type(declared), served, "{declared:?}");
        }
    }
}
