//! The property's time zone: an admin setting (refused for an unknown zone,
//! read by a running relay at once), the serial number's year and the
//! reports' "today" in local time.

use std::sync::atomic::AtomicI64;

use anyhow::{Context, Result, ensure};
use chrono::{DateTime, Utc};
use harness::{Api, RelayProcess, TestClock, TestRelay};
use serde_json::{Value, json};

static NEW_YEAR: AtomicI64 = AtomicI64::new(0);

fn utc(s: &str) -> Result<DateTime<Utc>> {
    Ok(s.parse()?)
}

async fn repair(desk: &Api, title: &str) -> Result<Value> {
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": title, "location": "B1 lobby", "category": "doors"}),
        )
        .await?;
    ensure!(status == 201, "{title}: HTTP {status}: {t}");
    Ok(t)
}

/// 00:30 on 1 January in Shanghai is 16:30 UTC on 31 December: the order is
/// numbered in the new year, and today's register starts at local midnight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_serial_year_and_the_day_are_the_propertys() -> Result<()> {
    let clock = TestClock::new(&NEW_YEAR);
    let relay = TestRelay::start_at(clock, utc("2026-12-31T16:30:00Z")?, |_| {}).await?;
    let desk = relay.api("frontdesk").await?;
    let t = repair(&desk, "Gate stuck after the fireworks").await?;
    assert_eq!(t["serial"], "RO-2027-000001");
    let manager = relay.api("manager").await?;
    let (_, today) = manager.get("/api/v1/reports/daily-register").await?;
    assert_eq!(today["from"], "2026-12-31T16:00:00.000Z", "local midnight");
    assert_eq!(today["time_zone"], "Asia/Shanghai");
    assert_eq!(
        today["summary"][0],
        json!({"label": "received", "zh": "受理", "value": 1})
    );
    // A date in a query is the property's day too.
    let (_, by_date) = manager
        .get("/api/v1/tickets?from=2027-01-01&to=2027-01-01T23:59")
        .await?;
    assert_eq!(
        by_date["tickets"].as_array().map(Vec::len),
        Some(1),
        "{by_date}"
    );
    let (_, new_years_eve) = manager
        .get("/api/v1/tickets?from=2026-12-31&to=2026-12-31T23:59")
        .await?;
    assert_eq!(
        new_years_eve["tickets"].as_array().map(Vec::len),
        Some(0),
        "{new_years_eve}"
    );

    // In UTC it is still 2026: the same moment numbers in the old year.
    server_set(&relay, "UTC").await?;
    let (_, me) = desk.get("/api/v1/me").await?;
    assert_eq!(me["time_zone"], "UTC");
    let t = repair(&desk, "Second gate stuck").await?;
    assert_eq!(t["serial"], "RO-2026-000001");
    let (_, today) = manager.get("/api/v1/reports/daily-register").await?;
    assert_eq!(today["from"], "2026-12-31T00:00:00.000Z");
    Ok(())
}

async fn server_set(relay: &TestRelay, zone: &str) -> Result<()> {
    harness::server::settings::set_time_zone(&relay.relay, zone)
        .await
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `propsync-server admin set-time-zone` while the relay runs: an unknown
/// zone is refused and changes nothing; a known one is what the dashboard
/// is told at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_command_sets_the_time_zone_and_refuses_unknown_ones() -> Result<()> {
    let bin = env!("CARGO_BIN_EXE_propsync-test-relay");
    let dir = tempfile::Builder::new().prefix("propsync-tz-").tempdir()?;
    let data = dir.path().join("relay");
    let relay = RelayProcess::start(bin, &data, "127.0.0.1:0")?;
    let creds = relay.creds()?;
    let password = creds["users"]["supervisor"]["password"]
        .as_str()
        .context("password")?;
    let zone = |api: Api| async move {
        let (_, me) = api.get("/api/v1/me").await?;
        anyhow::Ok(me["time_zone"].clone())
    };
    let sup = Api::login(&relay.url, "supervisor", password).await?;
    assert_eq!(zone(sup.clone()).await?, "Asia/Shanghai", "the default");
    let refused = RelayProcess::admin(bin, &data, &["set-time-zone", "Asia/Beijing"]);
    let why = refused.expect_err("an unknown zone is refused").to_string();
    ensure!(why.contains("not an IANA time zone"), "{why}");
    assert_eq!(zone(sup.clone()).await?, "Asia/Shanghai", "nothing changed");
    RelayProcess::admin(bin, &data, &["set-time-zone", "Asia/Urumqi"])?;
    assert_eq!(zone(sup.clone()).await?, "Asia/Urumqi");
    let (status, login) = sup
        .post_raw(
            "/api/v1/login",
            &json!({"username": "supervisor", "password": password}).to_string(),
            false,
        )
        .await?;
    assert_eq!(status, 200);
    assert_eq!(
        login["time_zone"], "Asia/Urumqi",
        "the login tells the dashboard"
    );
    Ok(())
}
