//! What an operator watches: the Prometheus text on the metrics address
//! after a phone synced and the desk used the REST API.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::TestRelay;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_address_shows_sessions_changes_latencies_and_requests() -> Result<()> {
    let relay = TestRelay::start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(harness::server::metrics::serve(
        listener,
        relay.relay.clone(),
    ));
    let desk = relay.api("frontdesk").await?;
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "Lift stuck", "location": "B3 lobby", "category": "lift"}),
        )
        .await?;
    ensure!(status == 201, "{t}");
    let id = t["id"].as_str().context("id")?.to_owned();
    ensure!(desk.act(&id, "assign", json!({"assignee": "eng1"})).await? == "accepted");
    let phone = relay.device("eng1").await?;
    phone.sync_once().await?;
    phone.act(
        &id,
        harness::server::schema::Action::Accept,
        harness::server::schema::EventData::default(),
    )?;
    phone.sync_once().await?;

    let body = reqwest::Client::new()
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(10))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let value = |line_start: &str| -> Option<f64> {
        body.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    for (metric, what) in [
        ("propsync_sync_sessions_total", "sync sessions"),
        (
            "propsync_changes_total{outcome=\"accepted\"}",
            "accepted changes",
        ),
        ("propsync_commit_seconds_count", "commits timed"),
        ("propsync_judge_seconds_count", "batches judged"),
        (
            "propsync_http_requests_total{status=\"2xx\"}",
            "answered requests",
        ),
    ] {
        let v = value(metric).with_context(|| format!("no {metric} in\n{body}"))?;
        ensure!(v >= 1.0, "{what}: {metric} = {v}");
    }
    for gauge in [
        "propsync_connections",
        "propsync_documents_in_memory",
        "propsync_inbox_queue",
    ] {
        ensure!(value(gauge).is_some(), "no {gauge} in\n{body}");
    }
    ensure!(
        value("propsync_documents_in_memory").unwrap_or_default() >= 1.0,
        "the ticket is in memory"
    );
    Ok(())
}
