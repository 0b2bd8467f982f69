//! `kill -9` the relay at random moments during a storm of syncs, restart
//! it each time, and check that nothing it acknowledged is lost: every
//! device's actions are there, the number ledger has no gap, every device
//! converges. `PROPSYNC_CRASH_KILLS` sets how many kills (5 by default).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::client_core::{Backoff, Device, Report, SyncConfig};
use harness::server::schema::Kind;
use harness::server::schema::ticket::Urgency;
use harness::{Api, RelayProcess, eventually};

const USERS: [&str; 5] = ["eng1", "eng2", "eng3", "security1", "cleaning1"];

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn quick() -> SyncConfig {
    SyncConfig {
        max_attempts: 2,
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        settle: Duration::from_millis(200),
        stall: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_killed_mid_storm_loses_nothing_it_acknowledged() -> Result<()> {
    let kills: usize = std::env::var("PROPSYNC_CRASH_KILLS")
        .ok()
        .and_then(|k| k.parse().ok())
        .unwrap_or(5);
    let rounds = 6;
    let bin = env!("CARGO_BIN_EXE_propsync-test-relay");
    let dir = tempfile::Builder::new()
        .prefix("propsync-crash-")
        .tempdir()?;
    let data = dir.path().join("relay");
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut relay = RelayProcess::start(bin, &data, &listen)?;
    let creds = relay.creds()?;
    let url = relay.url.clone();

    let mut devices = Vec::new();
    for user in USERS {
        let d = Device::open(&dir.path().join(format!("{user}.db")))?;
        d.enroll(
            &url,
            creds["users"][user]["device_token"]
                .as_str()
                .context("token")?,
        )
        .await?;
        devices.push(Arc::new(d));
    }
    let storming = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for (n, d) in devices.iter().enumerate() {
        let (d, storming) = (d.clone(), storming.clone());
        tasks.push(tokio::spawn(async move {
            let mut reported = 0;
            for round in 0..rounds {
                d.report(&Report {
                    kind: Kind::Repair,
                    household: None,
                    location: format!("B{} floor {round}", n % 2 + 1),
                    title: format!("Patrol find {n}-{round}"),
                    description: String::new(),
                    category: Some("general".into()),
                    urgency: Urgency::Normal,
                })?;
                reported += 1;
                // The relay may be down at any moment: a failed sync is expected.
                let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
            }
            while storming.load(Ordering::Relaxed) {
                let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
            }
            anyhow::Ok(reported)
        }));
    }
    for k in 0..kills {
        // Fault injection: kill at a random moment of the storm.
        tokio::time::sleep(Duration::from_millis(150 + rand::random::<u64>() % 500)).await;
        relay.kill();
        relay = RelayProcess::start(bin, &data, &listen).with_context(|| format!("restart {k}"))?;
    }
    storming.store(false, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    // Every device converges: nothing pending, every action acknowledged.
    for d in &devices {
        eventually("the device to flush", Duration::from_secs(60), || {
            let d = d.clone();
            async move {
                let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
                d.pending().ok().filter(Vec::is_empty).map(|_| ())
            }
        })
        .await?;
    }
    let manager = Api::login(
        &url,
        "manager",
        creds["users"]["manager"]["password"]
            .as_str()
            .context("password")?,
    )
    .await?;
    let (_, list) = manager.get("/api/v1/tickets?kind=repair").await?;
    let tickets = list["tickets"].as_array().context("tickets")?;
    assert_eq!(
        tickets.len(),
        total,
        "every reported ticket is on the relay"
    );
    assert!(
        tickets
            .iter()
            .all(|t| t["serial"].is_string() && t["status"] == "ISSUED"),
        "{tickets:?}"
    );
    let year = harness::property_year();
    let (_, c) = manager
        .get(&format!(
            "/api/v1/reports/serial-continuity?series=RO&year={year}"
        ))
        .await?;
    ensure!(
        c["continuous"] == true && c["issued"] == total,
        "the number ledger has no gap: {c}"
    );
    let (_, log) = manager
        .get("/api/v1/sync-log?verdict=hard_rejected")
        .await?;
    assert_eq!(
        log["changes"].as_array().map(Vec::len),
        Some(0),
        "nothing was refused"
    );
    Ok(())
}
