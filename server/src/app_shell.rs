//! `/app/`: the field app, served from the directory `client-core/web/build.sh`
//! writes (`Config::app_dir`, this checkout's `target/field-app` by default). The
//! files are read at request time, so a rebuilt app is served without
//! restarting the relay, and nothing generated is compiled into the binary.
//! A browser that accepts gzip gets the build's pre-compressed copy.

use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::state::Relay;

pub(crate) fn router() -> Router<Relay> {
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(index))
        .route("/app/{*path}", get(file))
}

/// The app's content security policy: its own scripts and the WebAssembly
/// module, photos from the phone's camera (blob:), the relay's API and sync.
const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    worker-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
    connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("webmanifest") => "application/manifest+json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

/// `rel` under `root`, or `None` if it tries to leave it.
fn resolve(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

async fn index(State(relay): State<Relay>, headers: HeaderMap) -> Response {
    serve(&relay.config.app_dir, "index.html", &headers).await
}

async fn file(
    State(relay): State<Relay>,
    UrlPath(path): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    serve(&relay.config.app_dir, &path, &headers).await
}

async fn serve(root: &Path, rel: &str, headers: &HeaderMap) -> Response {
    let Some(path) = resolve(root, rel) else {
        return not_found();
    };
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut gz = path.clone().into_os_string();
    gz.push(".gz");
    let (body, encoded) = match (gzip, tokio::fs::read(&gz).await) {
        (true, Ok(b)) => (b, true),
        _ => match tokio::fs::read(&path).await {
            Ok(b) => (b, false),
            Err(_) if rel == "index.html" => return not_built(root),
            Err(_) => return not_found(),
        },
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    // The service worker keeps the app for offline use; the network copy is
    // always revalidated so a new build reaches phones on their next start.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("content-security-policy", HeaderValue::from_static(CSP));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    if encoded {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    resp
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

fn not_built(root: &Path) -> Response {
    tracing::warn!(dir = %root.display(), "the field app is not built");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(
            "The field app is not built here ({}). Run client-core/web/build.sh, or start the relay with --app-dir.\n\
             外勤应用尚未构建：请运行 client-core/web/build.sh。\n",
            root.display()
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests;
