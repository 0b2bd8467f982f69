//! What an operator watches: the relay's Prometheus metrics, served on their
//! own address (`serve --metrics-listen 127.0.0.1:9464`) so that the public
//! port behind the TLS proxy never exposes them.
//!
//! The names (all `propsync_`):
//! - `connections` (gauge): open sync connections;
//! - `sync_sessions_total`: sync connections opened;
//! - `changes_total{outcome}`: changes judged, by outcome (`accepted`,
//!   `conflict`, `rejected`, `hard_rejected`);
//! - `judge_seconds`, `commit_seconds` (histograms): judging one batch off
//!   the async threads; one document commit (one write transaction);
//! - `documents_in_memory` (gauge): documents loaded in the hub;
//! - `inbox_queue` (gauge): tickets waiting for their inboxes to be written;
//! - `rate_limited_total{kind}`: refusals by the edge's limits (`address`,
//!   `login`, `messages`);
//! - `http_requests_total{status}`: REST and page requests by status class.
//!
//! One recorder serves the process (the `metrics` crate's global): relays
//! started side by side in one test process share it.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets in seconds: 100 µs to 10 s.
const SECONDS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the recorder once per process; `None` if another recorder was
/// installed first (the metrics then go there).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .ok()?;
            let handle = builder.install_recorder().ok()?;
            describe();
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_gauge!("propsync_connections", "Open sync connections.");
    metrics::describe_counter!("propsync_sync_sessions_total", "Sync connections opened.");
    metrics::describe_counter!("propsync_changes_total", "Changes judged, by outcome.");
    metrics::describe_histogram!(
        "propsync_judge_seconds",
        metrics::Unit::Seconds,
        "Judging one batch of changes."
    );
    metrics::describe_histogram!(
        "propsync_commit_seconds",
        metrics::Unit::Seconds,
        "One document commit (one write transaction)."
    );
    metrics::describe_gauge!(
        "propsync_documents_in_memory",
        "Documents loaded in the hub."
    );
    metrics::describe_gauge!(
        "propsync_inbox_queue",
        "Tickets waiting for their inboxes to be written."
    );
    metrics::describe_counter!(
        "propsync_rate_limited_total",
        "Refusals by the relay's rate limits, by kind."
    );
    metrics::describe_counter!(
        "propsync_http_requests_total",
        "REST and page requests answered, by status class."
    );
}

/// The text Prometheus scrapes.
pub fn render() -> String {
    handle().map(PrometheusHandle::render).unwrap_or_default()
}

/// The router of the metrics address: `GET /metrics`. The gauges (open
/// connections, documents in memory, the inbox queue) are read from the
/// relay at each scrape; counters and histograms are kept as things happen.
pub fn router(relay: crate::Relay) -> axum::Router {
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(
                |axum::extract::State(relay): axum::extract::State<crate::Relay>| async move {
                    gauges(&relay);
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        render(),
                    )
                },
            ),
        )
        .with_state(relay)
}

#[allow(clippy::cast_precision_loss, reason = "gauges of counts")]
fn gauges(relay: &crate::Relay) {
    metrics::gauge!("propsync_connections").set(relay.hub.connection_count() as f64);
    metrics::gauge!("propsync_documents_in_memory").set(relay.hub.loaded_count() as f64);
    metrics::gauge!("propsync_inbox_queue").set(relay.hub.inbox_queue_len() as f64);
}

/// Serves [`router`] on `listener` until the process ends.
///
/// # Errors
/// When the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, relay: crate::Relay) -> std::io::Result<()> {
    handle();
    axum::serve(listener, router(relay)).await
}

/// Counts a judged change.
pub(crate) fn change(outcome: &'static str) {
    metrics::counter!("propsync_changes_total", "outcome" => outcome).increment(1);
}

/// Counts a refusal by a rate limit (`address`, `login`, `messages`).
pub(crate) fn rate_limited(kind: &'static str) {
    metrics::counter!("propsync_rate_limited_total", "kind" => kind).increment(1);
}

/// Records how long something took, in seconds, in histogram `name`.
pub(crate) fn seconds(name: &'static str, since: std::time::Instant) {
    metrics::histogram!(name).record(since.elapsed().as_secs_f64());
}
