//! The propsync relay: it authenticates devices, speaks the automerge-repo sync
//! protocol, judges every incoming change with [`schema::judge`](fn@schema::judge),
//! assigns serial numbers and keeps everything in SQLite. See `ARCHITECTURE.md`
//! for the code map.
//!
//! - [`open`] builds the relay's [`Relay`] state from a [`Config`];
//! - [`app`] is the axum router (REST API, `/sync` WebSocket);
//! - [`serve`] runs it on a listener until a shutdown signal;
//! - [`admin`] and [`demo`] are the commands behind `propsync-server`;
//! - [`property`] sets a property up and keeps its household files; the
//!   fee ledger (`fees.rs`) bills and collects;
//! - [`settings`] holds the property's settings (its time zone) and calendar.

pub mod admin;
mod api;
mod app_shell;
pub mod auth;
mod blobs;
pub mod cli;
pub mod config;
mod csvout;
mod dashboard;
pub mod demo;
mod enrol;
pub mod error;
mod extract;
mod fees;
pub mod history;
mod hub;
mod limits;
pub mod metrics;
pub mod ops;
pub mod property;
mod reports;
mod seclog;
mod session;
pub mod settings;
mod state;
pub mod store;
mod ws;

#[doc(hidden)]
pub mod fuzzing;

pub use config::{Config, Limits, TimeSource};
pub use hub::Clock;
pub use schema;
pub use state::{Relay, open};
/// The relay binaries' global allocator (jemalloc): it returns the memory of
/// documents that went idle to the system, which glibc's malloc does not.
pub use tikv_jemallocator::Jemalloc as Allocator;

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// The relay's router. Every request passes the per-address rate limit
/// first (see `limits.rs`).
pub fn app(relay: Relay) -> Router {
    let max_blob = relay.config.max_blob_bytes;
    api::router()
        .merge(session::router())
        .merge(blobs::router(max_blob))
        .merge(ws::router())
        .merge(dashboard::router())
        .merge(enrol::router())
        .merge(app_shell::router())
        .merge(property::http::router())
        .merge(fees::http::router())
        .layer(axum::middleware::from_fn_with_state(
            relay.clone(),
            limits::per_address,
        ))
        // One `info` line per request (method, path without its query,
        // status, time) and the request counter by status class. The query
        // is left out: automerge-repo's JavaScript clients put the device
        // token in `/sync?token=`.
        .layer(
            tower_http::trace::TraceLayer::new_for_http()
                .make_span_with(|req: &axum::http::Request<axum::body::Body>| {
                    tracing::info_span!("request", method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(
                    |res: &axum::http::Response<axum::body::Body>,
                     latency: std::time::Duration,
                     _: &tracing::Span| {
                        let class = match res.status().as_u16() {
                            100..=199 => "1xx",
                            200..=299 => "2xx",
                            300..=399 => "3xx",
                            400..=499 => "4xx",
                            _ => "5xx",
                        };
                        ::metrics::counter!("propsync_http_requests_total", "status" => class)
                            .increment(1);
                        tracing::info!(
                            status = res.status().as_u16(),
                            ms = latency.as_millis(),
                            "answered"
                        );
                    },
                ),
        )
        .with_state(relay)
}

/// Serves `relay` on `listener` until `shutdown` resolves, then closes
/// connections gracefully.
///
/// # Errors
/// When the listener fails.
pub async fn serve(
    listener: TcpListener,
    relay: Relay,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // The background tasks live in a set: they end when `serve` returns,
    // and also when its future is dropped (a caller that aborts it must not
    // leave a keeper writing with a relay's memory nobody else sees).
    let mut background = tokio::task::JoinSet::new();
    let sweeper = relay.clone();
    background.spawn(async move {
        // Idle documents leave memory between `doc_idle` and 1.5 × `doc_idle`
        // after their last use.
        let idle = sweeper.config.doc_idle;
        let mut tick = tokio::time::interval((idle / 2).max(std::time::Duration::from_millis(100)));
        loop {
            tick.tick().await;
            sweeper.hub.evict_idle(idle).await;
        }
    });
    let keeper = relay.hub.clone();
    background.spawn(async move {
        // Inboxes left behind by a crash or a failed write: repaired at
        // start (with a full audit), then anything still queued every 2 s.
        let mut audit = true;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            if let Err(e) = keeper.recover_inboxes(audit).await {
                tracing::warn!(error = %e, "inbox repair failed; retrying");
                continue;
            }
            audit = false;
        }
    });
    let edges = relay.clone();
    background.spawn(async move {
        // Abandoned uploads (at start-up, then every `blob_sweep_every`) and
        // the limiters' memory.
        let every = edges
            .config
            .blob_sweep_every
            .max(std::time::Duration::from_millis(50));
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let (dir, age) = (edges.config.blob_dir(), edges.config.blob_part_max_age);
            let swept = tokio::task::spawn_blocking(move || blobs::sweep_parts(&dir, age))
                .await
                .unwrap_or(0);
            if swept > 0 {
                tracing::info!(swept, "abandoned uploads deleted");
            }
            edges.edge.prune();
        }
    });
    let seclog = relay.seclog.clone();
    let hub = relay.hub.clone();
    let last = relay.clone();
    let stopping = async move {
        shutdown.await;
        hub.stop();
    };
    // Sync messages are small and latency-bound: no Nagle delay.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(
        listener,
        app(relay).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(stopping)
    .await;
    // Nothing this relay started may write after `serve` returns (another
    // relay may open the same directory next): the background tasks end,
    // the open sync sessions finish the message in hand, and every write
    // already handed to the store is done.
    background.abort_all();
    while background.join_next().await.is_some() {}
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while last.hub.connection_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    seclog.flush().await;
    if let Err(e) = last.db.flush().await {
        tracing::warn!(error = %e, "the store could not be flushed at shutdown");
    }
    result
}
