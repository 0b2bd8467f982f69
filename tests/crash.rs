//! `kill -9` the relay at random moments during a storm of syncs, restart
//! it each time, and check that nothing it acknowledged is lost. Each phone
//! records every change hash the relay acknowledged to it and every serial
//! number it was given; after the last kill the relay restarts and its store
//! is read (SQLite, read-only) **before any phone reconnects**, so a lost
//! acknowledgement cannot hide behind a phone sending the change again: every
//! acknowledged change is in the change ledger and in the document's stored
//! chunks, every serial a phone saw is in the number ledger for the same
//! ticket. Then the phones converge, the number ledger has no gap.
//! `PROPSYNC_CRASH_KILLS` sets how many kills (5 by default).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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

/// What one phone saw the relay acknowledge.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    /// Every change the phone made (hash → document), from its pending rows.
    made: BTreeMap<String, String>,
    /// The changes the relay acknowledged (the phone marked them acked, or
    /// they left its pending list without being quarantined).
    pub(crate) acked: BTreeSet<(String, String)>,
    /// Serial numbers the phone was given, by ticket.
    pub(crate) serials: BTreeMap<String, String>,
}

impl Seen {
    /// Reads the phone's store: pending rows, quarantine, inbox.
    pub(crate) fn observe(&mut self, d: &Device) -> Result<()> {
        let pending = d.pending()?;
        let quarantined: BTreeSet<String> =
            d.quarantine()?.into_iter().map(|q| q.change_hash).collect();
        let still: BTreeSet<&str> = pending
            .iter()
            .filter(|p| !p.acked)
            .map(|p| p.change_hash.as_str())
            .collect();
        for p in &pending {
            self.made.insert(p.change_hash.clone(), p.doc.clone());
        }
        for (hash, doc) in &self.made {
            if !still.contains(hash.as_str()) && !quarantined.contains(hash) {
                self.acked.insert((doc.clone(), hash.clone()));
            }
        }
        for row in d.inbox()? {
            if let Some(serial) = row.serial {
                self.serials.insert(row.id.to_string(), serial);
            }
        }
        Ok(())
    }

    pub(crate) fn merge(&mut self, other: Seen) {
        self.made.extend(other.made);
        self.acked.extend(other.acked);
        self.serials.extend(other.serials);
    }
}

/// Checks the relay's database (read-only, relay idle, no phone connected)
/// against what the phones saw acknowledged; returns (changes, serials) checked.
pub(crate) fn check_store(db: &Path, seen: &Seen) -> Result<(usize, usize)> {
    use automerge::{Automerge, ReadDoc};
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    ensure!(ok == "ok", "integrity_check: {ok}");
    let mut docs: BTreeMap<String, Automerge> = BTreeMap::new();
    let mut lost = Vec::new();
    for (doc, hash) in &seen.acked {
        let in_ledger = conn
            .query_row(
                "SELECT 1 FROM change_ledger WHERE hash = ?1 AND doc_id = ?2",
                [hash, doc],
                |_| Ok(()),
            )
            .is_ok();
        if !docs.contains_key(doc) {
            let snapshot: Option<Vec<u8>> = conn
                .query_row(
                    "SELECT snapshot FROM documents WHERE doc_id = ?1",
                    [doc],
                    |r| r.get(0),
                )
                .unwrap_or(None);
            let mut am = match snapshot {
                Some(s) => Automerge::load(&s)?,
                None => Automerge::new(),
            };
            let mut stmt = conn.prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
            for chunk in stmt.query_map([doc], |r| r.get::<_, Vec<u8>>(0))? {
                am.load_incremental(&chunk?)?;
            }
            docs.insert(doc.clone(), am);
        }
        let h: automerge::ChangeHash = hash.parse()?;
        let in_chunks = docs
            .get(doc)
            .is_some_and(|d| d.get_change_by_hash(&h).is_some());
        if !(in_ledger && in_chunks) {
            lost.push(format!(
                "{doc} {hash}: ledger {in_ledger}, chunks {in_chunks}"
            ));
        }
    }
    for (doc, serial) in &seen.serials {
        let stored: Option<(String, u32, u32)> = conn
            .query_row(
                "SELECT series, year, number FROM number_ledger WHERE doc_id = ?1",
                [doc],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .ok();
        let matches = stored
            .as_ref()
            .is_some_and(|(s, y, n)| format!("{s}-{y}-{n:06}") == *serial);
        if !matches {
            lost.push(format!(
                "{doc}: the phone saw {serial}, the number ledger has {stored:?}"
            ));
        }
    }
    ensure!(
        lost.is_empty(),
        "acknowledged but not in the store: {lost:#?}"
    );
    Ok((seen.acked.len(), seen.serials.len()))
}

fn quick() -> SyncConfig {
    SyncConfig {
        max_attempts: 2,
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        settle: Duration::from_millis(200),
        stall: Duration::from_secs(5),
        ..SyncConfig::default()
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
            let mut seen = Seen::default();
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
                seen.observe(&d)?;
                // The relay may be down at any moment: a failed sync is expected.
                let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
                seen.observe(&d)?;
            }
            while storming.load(Ordering::Relaxed) {
                let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
                seen.observe(&d)?;
            }
            seen.observe(&d)?;
            anyhow::Ok((reported, seen))
        }));
    }
    for k in 0..kills {
        // Fault injection: kill at a random moment of the storm.
        tokio::time::sleep(Duration::from_millis(150 + rand::random::<u64>() % 500)).await;
        relay.kill();
        if k + 1 < kills {
            relay =
                RelayProcess::start(bin, &data, &listen).with_context(|| format!("restart {k}"))?;
        }
    }
    // The relay is down after the last kill: the phones stop, then it restarts
    // and its store is checked before any of them reconnects.
    storming.store(false, Ordering::Relaxed);
    let mut total = 0;
    let mut seen = Seen::default();
    for t in tasks {
        let (reported, s) = t.await??;
        total += reported;
        seen.merge(s);
    }
    let _relay = RelayProcess::start(bin, &data, &listen).context("the last restart")?;
    let (changes, serials) = check_store(&data.join("propsync.sqlite3"), &seen)?;
    eprintln!(
        "before any phone reconnected: {changes} acknowledged changes and {serials} serials all in the store"
    );
    ensure!(changes > 0, "the phones saw something acknowledged");
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
