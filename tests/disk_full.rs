//! The relay's storage fills up: its SQLite is given a small page limit
//! (`Config::max_db_pages`, `PRAGMA max_page_count`), a phone and the front
//! desk write until the relay refuses, and then: the refusal is a clear error
//! (the phone's sync fails naming full storage, REST answers 507
//! `storage_full`), reads go on, nothing acknowledged is lost, and after a
//! restart with room everything waiting syncs.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::client_core::{Backoff, Device, Report, SyncConfig};
use harness::server::schema::Kind;
use harness::server::schema::ticket::Urgency;
use harness::server::store::Db;
use harness::{Api, TestRelay};
use serde_json::json;

/// How many pages of room the full relay gets beyond what the demo uses.
const ROOM_PAGES: u32 = 48;

/// A relay serving `data` on `addr` in this process, until the sender fires.
struct Served {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    async fn start(data: &Path, addr: SocketAddr, max_db_pages: Option<u32>) -> Result<Self> {
        let mut config = harness::server::Config::new(data.to_owned(), addr);
        config.max_db_pages = max_db_pages;
        let relay = harness::server::open(config).await?;
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = harness::server::serve(listener, relay, async move {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Self { stop, task })
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn quick() -> SyncConfig {
    SyncConfig {
        max_attempts: 1,
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(100)),
        settle: Duration::from_millis(200),
        stall: Duration::from_secs(5),
        ..SyncConfig::default()
    }
}

/// A report with a few kilobytes of text that does not compress away.
fn bulky(n: usize) -> Report {
    let noise: String = (0..3_000)
        .map(|_| char::from(b'a' + rand::random::<u8>() % 26))
        .collect();
    Report {
        kind: Kind::Repair,
        household: None,
        location: format!("B1 floor {n}"),
        title: format!("Leak {n}"),
        description: noise,
        category: Some("plumbing".into()),
        urgency: Urgency::Normal,
    }
}

fn page_count(db: &Path) -> Result<u32> {
    let db = Db::open(db)?;
    let pages = db
        .read_blocking(|c| Ok(c.pragma_query_value(None, "page_count", |r| r.get::<_, u32>(0))?))?;
    Ok(pages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_reads_and_loses_nothing() -> Result<()> {
    let mut seeded = TestRelay::start().await?;
    let eng1 = seeded.device("eng1").await?;
    let creds = seeded.creds.clone();
    let addr: SocketAddr = seeded.url.trim_start_matches("http://").parse()?;
    seeded.stop().await;
    let data = seeded.dir().join("relay");
    let limit = page_count(&data.join("propsync.sqlite3"))? + ROOM_PAGES;
    let full = Served::start(&data, addr, Some(limit)).await?;
    let url = format!("http://{addr}");
    let login = |user: &'static str| Api::login(&url, user, &creds[user].password);
    let desk = login("frontdesk").await?;

    // The phone reports and syncs until the relay refuses to store.
    let mut acknowledged = Vec::new();
    let mut waiting = Vec::new();
    let mut refusal = None;
    for n in 0..400 {
        let (doc, _) = eng1.report(&bulky(n))?;
        match eng1.sync_with(&quick(), &mut |_, _| {}).await {
            Ok(_) if eng1.pending()?.is_empty() => acknowledged.push(doc.id().to_string()),
            Ok(s) => anyhow::bail!("a sync that left work pending without an error: {s:?}"),
            Err(e) => {
                waiting.push(doc.id().to_string());
                refusal = Some(e.to_string());
                break;
            }
        }
    }
    let refusal = refusal.context("the relay never filled up")?;
    ensure!(
        refusal.contains("storage is full"),
        "the phone is told why: {refusal}"
    );
    // The front desk gets 507 storage_full (its own writes, then the relay's
    // room has gone for everyone).
    let mut desk_acknowledged = Vec::new();
    let mut desk_refused = None;
    for n in 0..200 {
        let (status, body) = desk
            .post(
                "/api/v1/tickets",
                &json!({"kind": "repair", "title": format!("Desk call {n}"), "location": "B2-101",
                        "category": "general", "description": "x".repeat(2_000)}),
            )
            .await?;
        match status {
            201 => desk_acknowledged.push(body["id"].as_str().context("id")?.to_owned()),
            507 => {
                desk_refused = Some(body);
                break;
            }
            other => anyhow::bail!("unexpected {other}: {body}"),
        }
    }
    let body = desk_refused.context("the desk was never refused")?;
    ensure!(body["error"]["code"] == "storage_full", "{body}");
    // A phone's next sync is still refused; nothing it holds is lost.
    ensure!(eng1.sync_with(&quick(), &mut |_, _| {}).await.is_err());
    ensure!(
        eng1.pending()?.len() == 1,
        "the refused report waits on the phone"
    );

    // Reads go on: every acknowledged ticket is there, and a phone that only
    // reads syncs its inbox.
    let manager = login("manager").await?;
    for id in acknowledged.iter().chain(&desk_acknowledged) {
        let t = manager.ticket(id).await?;
        ensure!(
            t["status"] == "ISSUED" || t["status"] == "REGISTERED",
            "{t}"
        );
    }
    let (status, _) = manager.get("/api/v1/sync-log").await?;
    ensure!(status == 200);
    let reader = Device::open(&seeded.dir().join("engsup-reader.db"))?;
    reader.enroll(&url, &creds["engsup"].device_token).await?;
    reader.sync_with(&quick(), &mut |_, _| {}).await?;
    ensure!(
        !reader.inbox()?.is_empty(),
        "a reading phone gets its inbox"
    );
    full.stop().await;

    // Space returns: everything waiting syncs and nothing is missing.
    let roomy = Served::start(&data, addr, None).await?;
    eng1.sync_with(&quick(), &mut |_, _| {}).await?;
    ensure!(eng1.pending()?.is_empty(), "the phone flushed");
    let manager = login("manager").await?;
    for id in acknowledged
        .iter()
        .chain(&desk_acknowledged)
        .chain(&waiting)
    {
        let t = manager.ticket(id).await?;
        ensure!(t["serial"].is_string(), "numbered: {t}");
    }
    let year = harness::property_year();
    let (_, c) = manager
        .get(&format!(
            "/api/v1/reports/serial-continuity?series=RO&year={year}"
        ))
        .await?;
    ensure!(c["continuous"] == true, "no gap in the numbers: {c}");
    let (status, _) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "After", "location": "B2-101", "category": "general"}),
        )
        .await?;
    ensure!(status == 201, "writes work again");
    eprintln!(
        "disk full: limit {limit} pages; acknowledged {} phone + {} desk; refused 1 phone + 1 desk; lost 0",
        acknowledged.len(),
        desk_acknowledged.len()
    );
    roomy.stop().await;
    Ok(())
}
