//! Operating the relay: a backup taken during a storm of syncs restores to a
//! relay that answers and verifies, and phones that synced after the backup
//! converge with it and lose nothing; `verify` finds a corrupted chunk, a
//! missing blob and a serial gap planted in copies of a data directory;
//! a restore refuses a non-empty target and a tampered archive; an upgrade
//! from the schema-version-1 fixture keeps every ticket, serial and ledger
//! row, and a directory from a newer relay is refused.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::client_core::{Backoff, Device, Report, SyncConfig};
use harness::server::ops;
use harness::server::schema::Kind;
use harness::server::schema::ticket::Urgency;
use harness::{Api, TestRelay, eventually, server};

const USERS: [&str; 4] = ["eng1", "eng2", "security1", "cleaning1"];

fn quick() -> SyncConfig {
    SyncConfig {
        max_attempts: 2,
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        settle: Duration::from_millis(200),
        stall: Duration::from_secs(5),
        ..SyncConfig::default()
    }
}

fn report(n: usize, round: usize) -> Report {
    Report {
        kind: Kind::Repair,
        household: None,
        location: format!("B{} floor {round}", n % 2 + 1),
        title: format!("Patrol find {n}-{round}"),
        description: String::new(),
        category: Some("general".into()),
        urgency: Urgency::Normal,
    }
}

fn quiet() -> impl FnMut(ops::Progress<'_>) {
    |_| {}
}

/// The relay's data directory inside a test relay's directory.
fn data_of(relay: &TestRelay) -> PathBuf {
    relay.dir().join("relay")
}

/// Syncs `d` until nothing is pending (the relay took or judged everything).
async fn flush(d: &Arc<Device>) -> Result<()> {
    eventually("the device to flush", Duration::from_secs(60), || {
        let d = d.clone();
        async move {
            let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
            d.pending().ok().filter(Vec::is_empty).map(|_| ())
        }
    })
    .await
}

/// Serves an existing data directory on `addr`; the returned sender stops it.
async fn serve_on(
    data: &Path,
    addr: std::net::SocketAddr,
) -> Result<(server::Relay, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let mut config = server::Config::new(data.to_owned(), addr);
    config.limits = server::Limits::off();
    let relay = server::open(config).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let r = relay.clone();
    tokio::spawn(async move {
        let _ = server::serve(listener, r, async move {
            let _ = stopped.await;
        })
        .await;
    });
    Ok((relay, stop))
}

/// The ids of the repair tickets a relay holds, with their serials.
async fn tickets(api: &Api) -> Result<Vec<(String, Option<String>)>> {
    let (_, list) = api.get("/api/v1/tickets?kind=repair").await?;
    Ok(list["tickets"]
        .as_array()
        .context("tickets")?
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap_or_default().to_owned(),
                t["serial"].as_str().map(str::to_owned),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_during_a_storm_restores_and_phones_that_synced_later_lose_nothing() -> Result<()>
{
    let mut relay = TestRelay::start().await?;
    let addr: std::net::SocketAddr = relay.url.trim_start_matches("http://").parse()?;
    let data = data_of(&relay);
    let mut devices = Vec::new();
    for user in USERS {
        devices.push(Arc::new(relay.device(user).await?));
    }
    // The storm: every phone reports and syncs without pause, with a photo
    // now and then, until told to stop.
    let storming = Arc::new(AtomicBool::new(true));
    let mut tasks = Vec::new();
    for (n, d) in devices.iter().enumerate() {
        let (d, storming) = (d.clone(), storming.clone());
        tasks.push(tokio::spawn(async move {
            let mut reported = 0_usize;
            while storming.load(Ordering::Relaxed) || reported < 3 {
                let photos = if reported.is_multiple_of(3) {
                    let bytes = format!("photo {n}-{reported} {}", rand::random::<u64>());
                    vec![d.add_photo(bytes.as_bytes(), "image/jpeg")?]
                } else {
                    Vec::new()
                };
                d.report_with_photos(&report(n, reported), &photos)?;
                reported += 1;
                let _ = d.sync_with(&quick(), &mut |_, _| {}).await;
            }
            anyhow::Ok(reported)
        }));
    }
    // Back up while the storm goes on: wait until some tickets are in first.
    let manager = relay.api("manager").await?;
    eventually("tickets to arrive", Duration::from_secs(60), || async {
        tickets(&manager)
            .await
            .ok()
            .filter(|t| t.len() >= 8)
            .map(|_| ())
    })
    .await?;
    let backups = tempfile::Builder::new()
        .prefix("propsync-backup-")
        .tempdir()?;
    let archive = backups.path().join("storm.tar.gz");
    let (d2, a2) = (data.clone(), archive.clone());
    let manifest =
        tokio::task::spawn_blocking(move || ops::backup(&d2, &a2, &mut quiet())).await??;
    ensure!(manifest.counts.tickets >= 8, "{manifest:?}");
    // The storm goes on after the backup: these tickets only the phones keep.
    let after = manifest.counts.tickets;
    eventually(
        "tickets after the backup",
        Duration::from_secs(60),
        || async {
            tickets(&manager)
                .await
                .ok()
                .filter(|t| t.len() as u64 >= after + 8)
                .map(|_| ())
        },
    )
    .await?;
    storming.store(false, Ordering::Relaxed);
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    for d in &devices {
        flush(d).await?;
    }
    let before = tickets(&manager).await?;
    ensure!(before.len() == total, "{} of {total}", before.len());
    let made: BTreeSet<String> = before.iter().map(|(id, _)| id.clone()).collect();
    relay.stop().await;

    // The disk is lost; the backup is restored on a spare machine.
    let spare = tempfile::Builder::new()
        .prefix("propsync-spare-")
        .tempdir()?;
    let restored = spare.path().join("relay");
    let (a3, r3) = (archive.clone(), restored.clone());
    let r = tokio::task::spawn_blocking(move || ops::restore(&a3, &r3, &mut quiet())).await??;
    ensure!(r.verify.ok(), "{:?}", r.verify.problems);
    ensure!(r.manifest.counts == manifest.counts);
    ensure!(
        r.manifest.storage_epoch != Some(r.epoch.clone()),
        "a new epoch"
    );
    let (restored_relay, stop) = serve_on(&restored, addr).await?;
    let manager = Api::login(
        &relay.url,
        "manager",
        &relay.creds.get("manager").context("manager")?.password,
    )
    .await?;
    let (status, _) = manager.get("/api/v1/health").await?;
    ensure!(status == 200, "the restored relay answers");
    let lost_by_relay = made.len() - tickets(&manager).await?.len();
    ensure!(lost_by_relay > 0, "the backup predates some tickets");

    // The phones sync with the restored relay: their newer tickets flow back up.
    for d in &devices {
        flush(d).await?;
    }
    let after_restore = tickets(&manager).await?;
    let back: BTreeSet<String> = after_restore.iter().map(|(id, _)| id.clone()).collect();
    let missing: Vec<&String> = made.difference(&back).collect();
    ensure!(
        missing.is_empty(),
        "{} tickets the phones had did not come back: {missing:?}",
        missing.len()
    );
    ensure!(
        after_restore.iter().all(|(_, s)| s.is_some()),
        "every ticket has a serial again: {after_restore:?}"
    );
    for d in &devices {
        let q = d.quarantine()?;
        ensure!(q.is_empty(), "a phone quarantined its own work: {q:?}");
    }
    let year = harness::property_year();
    let (_, c) = manager
        .get(&format!(
            "/api/v1/reports/serial-continuity?series=RO&year={year}"
        ))
        .await?;
    ensure!(
        c["continuous"] == true && c["issued"] == total,
        "the restored series continues without gap or repeat: {c}"
    );
    drop(stop);
    drop(restored_relay);
    let v = tokio::task::spawn_blocking(move || ops::verify(&restored, &mut |_| {})).await??;
    ensure!(v.ok(), "{:?}", v.problems);
    eprintln!(
        "backup of {} tickets during the storm; {lost_by_relay} tickets made after it came back from the phones; {total} in all",
        manifest.counts.tickets
    );
    Ok(())
}

/// A small property with tickets (two or more serials), a photo and some
/// stored chunks, stopped; returns the relay (its directory lives as long).
async fn small_property() -> Result<TestRelay> {
    let mut relay = TestRelay::start().await?;
    let d = Arc::new(relay.device("eng1").await?);
    for n in 0..4 {
        let photos = if n == 0 {
            vec![d.add_photo(b"a photo of a burst pipe", "image/jpeg")?]
        } else {
            Vec::new()
        };
        d.report_with_photos(&report(n, n), &photos)?;
    }
    flush(&d).await?;
    relay.stop().await;
    Ok(relay)
}

/// A copy of a data directory, made the supported way: backup, restore.
fn copy_of(data: &Path, into: &Path) -> Result<PathBuf> {
    let archive = into.join("copy.tar.gz");
    ops::backup(data, &archive, &mut quiet())?;
    let to = into.join(format!("copy-{}", rand::random::<u32>()));
    ops::restore(&archive, &to, &mut quiet())?;
    std::fs::remove_file(&archive)?;
    Ok(to)
}

fn db(dir: &Path) -> Result<rusqlite::Connection> {
    Ok(rusqlite::Connection::open(dir.join(ops::DB_FILE))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_corrupted_chunk_a_missing_blob_and_a_serial_gap() -> Result<()> {
    let relay = small_property().await?;
    let data = data_of(&relay);
    let work = tempfile::Builder::new()
        .prefix("propsync-verify-")
        .tempdir()?;
    let sound = ops::verify(&data, &mut quiet())?;
    ensure!(
        sound.ok(),
        "the property itself is sound: {:?}",
        sound.problems
    );
    ensure!(
        sound.blobs_hashed >= 1 && sound.serials_checked >= 2,
        "{sound:?}"
    );

    // A damaged chunk (one byte flipped in the middle of a document's bytes).
    let copy = copy_of(&data, work.path())?;
    {
        let c = db(&copy)?;
        let (table, key, bytes): (&str, String, Vec<u8>) = match c.query_row(
            "SELECT id, data FROM chunks ORDER BY length(data) DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
        ) {
            Ok((id, data)) => ("chunks", id.to_string(), data),
            Err(_) => {
                let (id, data): (String, Vec<u8>) = c.query_row(
                    "SELECT doc_id, snapshot FROM documents WHERE snapshot IS NOT NULL ORDER BY length(snapshot) DESC LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?;
                ("documents", id, data)
            }
        };
        let mut bad = bytes.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0x5a;
        if table == "chunks" {
            c.execute(
                "UPDATE chunks SET data = ?1 WHERE id = ?2",
                rusqlite::params![bad, key],
            )?;
        } else {
            c.execute(
                "UPDATE documents SET snapshot = ?1 WHERE doc_id = ?2",
                rusqlite::params![bad, key],
            )?;
        }
    }
    let found = ops::verify(&copy, &mut quiet())?;
    ensure!(
        found.problems.len() == 1 && found.problems[0].contains("does not load"),
        "the damaged chunk: {:?}",
        found.problems
    );

    // A blob gone from the disk.
    let copy = copy_of(&data, work.path())?;
    let sha: String = db(&copy)?.query_row(
        "SELECT sha256 FROM blobs WHERE complete = 1 LIMIT 1",
        [],
        |r| r.get(0),
    )?;
    std::fs::remove_file(copy.join("blobs").join(&sha))?;
    let found = ops::verify(&copy, &mut quiet())?;
    ensure!(
        found.problems.len() == 1
            && found.problems[0].contains(&sha)
            && found.problems[0].contains("missing"),
        "the missing blob: {:?}",
        found.problems
    );

    // A serial number taken out of the middle of its series.
    let copy = copy_of(&data, work.path())?;
    db(&copy)?.execute("DELETE FROM number_ledger WHERE number = 1", [])?;
    let found = ops::verify(&copy, &mut quiet())?;
    ensure!(
        found
            .problems
            .iter()
            .any(|p| p.contains("number 1 is missing")),
        "the serial gap: {:?}",
        found.problems
    );

    // A ticket whose reports' read model says something else, and one
    // without any.
    let copy = copy_of(&data, work.path())?;
    let c = db(&copy)?;
    c.execute(
        "UPDATE ticket_models SET body = replace(body, '\"title\":\"', '\"title\":\"(edited) ')
         WHERE rowid = (SELECT min(rowid) FROM ticket_models)",
        [],
    )?;
    c.execute(
        "DELETE FROM ticket_models WHERE rowid = (SELECT max(rowid) FROM ticket_models)",
        [],
    )?;
    drop(c);
    let found = ops::verify(&copy, &mut quiet())?;
    ensure!(
        found.problems.len() == 2
            && found
                .problems
                .iter()
                .any(|p| p.contains("read model differs"))
            && found
                .problems
                .iter()
                .any(|p| p.contains("has no read model")),
        "the read model: {:?}",
        found.problems
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_refuses_a_non_empty_target_and_a_tampered_archive() -> Result<()> {
    let relay = small_property().await?;
    let data = data_of(&relay);
    let work = tempfile::Builder::new()
        .prefix("propsync-restore-")
        .tempdir()?;
    let archive = work.path().join("b.tar.gz");
    ops::backup(&data, &archive, &mut quiet())?;
    // Into the live directory: refused, nothing touched.
    let before = std::fs::read(data.join(ops::DB_FILE))?;
    let e = ops::restore(&archive, &data, &mut quiet()).expect_err("a non-empty target");
    ensure!(e.to_string().contains("not empty"), "{e}");
    ensure!(std::fs::read(data.join(ops::DB_FILE))? == before);
    // An archive whose database was swapped for another one: refused.
    let other = work.path().join("other");
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir_all(&unpacked)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(&archive)?));
    tar.unpack(&unpacked)?;
    let c = db(&unpacked)?;
    c.execute("DELETE FROM number_ledger WHERE number = 1", [])?;
    drop(c);
    let tampered = work.path().join("t.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tampered)?,
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        b.append_path_with_name(unpacked.join(ops::DB_FILE), ops::DB_FILE)?;
        for f in std::fs::read_dir(unpacked.join("blobs"))? {
            let f = f?;
            b.append_path_with_name(
                f.path(),
                format!("blobs/{}", f.file_name().to_string_lossy()),
            )?;
        }
        b.append_path_with_name(unpacked.join(ops::MANIFEST), ops::MANIFEST)?;
        b.into_inner()?.finish()?;
    }
    let e = ops::restore(&tampered, &other, &mut quiet()).expect_err("a tampered archive");
    ensure!(e.to_string().contains("does not match its manifest"), "{e}");
    ensure!(!other.exists(), "nothing restored");
    // The untouched archive restores and verifies.
    let ok = ops::restore(&archive, &other, &mut quiet())?;
    ensure!(ok.verify.ok(), "{:?}", ok.verify.problems);
    Ok(())
}

/// The upgrade fixture: a data directory at schema version 1 (migration 001
/// only, the oldest layout the relay ever stored), holding the demo property
/// with a few reported tickets, their serials and ledgers, and a photo. The
/// repository has no release tags; this stands for "a property installed
/// with the first release". `credentials.json` holds the manager's password.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema-v1")
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()))?;
        } else {
            std::fs::copy(e.path(), to.join(e.file_name()))?;
        }
    }
    Ok(())
}

/// What must survive an upgrade, read straight from SQLite.
fn kept_rows(dir: &Path) -> Result<(Vec<String>, Vec<String>, Vec<String>)> {
    let c = db(dir)?;
    let rows = |sql: &str| -> Result<Vec<String>> {
        Ok(c.prepare(sql)?
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<_, _>>()?)
    };
    Ok((
        rows(
            "SELECT doc_id || ' ' || coalesce(serial, '-') || ' ' || status FROM tickets ORDER BY doc_id",
        )?,
        rows(
            "SELECT series || ' ' || year || ' ' || number || ' ' || doc_id || ' ' || assigned_at FROM number_ledger ORDER BY series, year, number",
        )?,
        rows("SELECT hash || ' ' || doc_id || ' ' || outcome FROM change_ledger ORDER BY hash")?,
    ))
}

fn user_version(path: &Path) -> Result<i64> {
    Ok(rusqlite::Connection::open(path)?.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_from_the_schema_v1_fixture_keeps_every_ticket_serial_and_ledger_row()
-> Result<()> {
    let work = tempfile::Builder::new()
        .prefix("propsync-upgrade-")
        .tempdir()?;
    let data = work.path().join("relay");
    copy_dir(&fixture_dir(), &data)?;
    ensure!(
        user_version(&data.join(ops::DB_FILE))? == 1,
        "the fixture is version 1"
    );
    let (tickets_before, serials_before, ledger_before) = kept_rows(&data)?;
    ensure!(
        tickets_before.len() >= 4 && serials_before.len() >= 4,
        "{tickets_before:?}"
    );

    let addr: std::net::SocketAddr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let (relay, stop) = serve_on(&data, addr).await?;
    let known = i64::try_from(server::store::SCHEMA_VERSION)?;
    ensure!(user_version(&data.join(ops::DB_FILE))? == known);
    let copy = data.join(format!("{}.before-v1-to-v{known}", ops::DB_FILE));
    ensure!(user_version(&copy)? == 1, "a copy as it was is kept");
    let (tickets_after, serials_after, ledger_after) = kept_rows(&data)?;
    ensure!(tickets_after == tickets_before, "{tickets_after:?}");
    ensure!(serials_after == serials_before);
    ensure!(ledger_after == ledger_before);
    // The upgraded relay answers with the same register.
    let creds: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture_dir().join("credentials.json"))?)?;
    let manager = Api::login(
        &format!("http://{addr}"),
        "manager",
        creds["manager"].as_str().context("password")?,
    )
    .await?;
    let listed = tickets(&manager).await?;
    ensure!(listed.len() == tickets_before.len(), "{listed:?}");
    // The reports' read model was written for every stored ticket on the
    // first start: the serial register over the whole history lists them.
    let (status, register) = manager
        .get("/api/v1/reports/serial-register?from=2000-01-01T00:00:00Z")
        .await?;
    ensure!(status == 200, "{register}");
    let issued = register["summary"]
        .as_array()
        .and_then(|s| s.iter().find(|f| f["label"] == "issued in the period"))
        .context("the figure")?;
    ensure!(
        issued["value"] == serials_before.len(),
        "{issued} against {} serials",
        serials_before.len()
    );
    drop(stop);
    drop(relay);
    let v = ops::verify(&data, &mut quiet())?;
    ensure!(v.ok(), "{:?}", v.problems);

    // A directory from a newer relay is refused and left as it is.
    let newer = work.path().join("newer");
    copy_dir(&fixture_dir(), &newer)?;
    rusqlite::Connection::open(newer.join(ops::DB_FILE))?.pragma_update(
        None,
        "user_version",
        known + 1,
    )?;
    let e = server::open(server::Config::new(newer.clone(), addr))
        .await
        .expect_err("a newer directory");
    ensure!(e.to_string().contains("newer relay"), "{e}");
    ensure!(user_version(&newer.join(ops::DB_FILE))? == known + 1);
    Ok(())
}

/// Writes the upgrade fixture (run once, by hand, with
/// `PROPSYNC_WRITE_FIXTURE=1 cargo test -p propsync-tests --test integration
/// ops::write_the_schema_v1_fixture -- --ignored`): a demo property made by
/// this relay, its rows copied into a database made by migration 001 alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes tests/fixtures/schema-v1; run by hand"]
async fn write_the_schema_v1_fixture() -> Result<()> {
    ensure!(
        std::env::var("PROPSYNC_WRITE_FIXTURE").is_ok(),
        "set PROPSYNC_WRITE_FIXTURE=1"
    );
    let relay = small_property().await?;
    let data = data_of(&relay);
    let out = fixture_dir();
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(out.join("blobs"))?;
    let c = rusqlite::Connection::open(out.join(ops::DB_FILE))?;
    c.execute_batch(include_str!("../server/migrations/001_init.sql"))?;
    c.pragma_update(None, "user_version", 1)?;
    c.execute(
        "ATTACH DATABASE ?1 AS src",
        [data.join(ops::DB_FILE).to_string_lossy()],
    )?;
    let tables: Vec<String> = c
        .prepare("SELECT name FROM main.sqlite_master WHERE type = 'table'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in tables {
        let cols: Vec<String> = c
            .prepare(&format!("PRAGMA main.table_info({t})"))?
            .query_map([], |r| r.get(1))?
            .collect::<Result<_, _>>()?;
        let cols = cols.join(", ");
        c.execute(
            &format!("INSERT INTO main.{t} ({cols}) SELECT {cols} FROM src.{t}"),
            [],
        )?;
    }
    c.execute_batch("DETACH DATABASE src; VACUUM;")?;
    drop(c);
    for e in std::fs::read_dir(data.join("blobs"))? {
        let e = e?;
        std::fs::copy(e.path(), out.join("blobs").join(e.file_name()))?;
    }
    let password = &relay.creds.get("manager").context("manager")?.password;
    std::fs::write(
        out.join("credentials.json"),
        serde_json::to_vec_pretty(&serde_json::json!({ "manager": password }))?,
    )?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restore_a_phone_resends_its_work_and_what_only_the_lost_relay_wrote_is_refused()
-> Result<()> {
    use harness::server::schema::{Action, EventData};
    let mut relay = TestRelay::start().await?;
    let addr: std::net::SocketAddr = relay.url.trim_start_matches("http://").parse()?;
    let data = data_of(&relay);
    let desk = relay.api("frontdesk").await?;
    let new_ticket = |title: &'static str| {
        let desk = desk.clone();
        async move {
            let (status, t) = desk
                .post("/api/v1/tickets", &serde_json::json!({"kind": "repair", "title": title, "location": "B2-502", "category": "plumbing"}))
                .await?;
            ensure!(status == 201, "{t}");
            let id = t["id"].as_str().context("id")?.to_owned();
            ensure!(
                desk.act(&id, "assign", serde_json::json!({"assignee": "eng1"}))
                    .await?
                    == "accepted"
            );
            anyhow::Ok(id)
        }
    };
    let before = new_ticket("Before the backup").await?;
    let eng1 = Arc::new(relay.device("eng1").await?);
    flush(&eng1).await?;
    let work = tempfile::Builder::new()
        .prefix("propsync-resend-")
        .tempdir()?;
    let archive = work.path().join("b.tar.gz");
    ops::backup(&data, &archive, &mut quiet())?;
    // After the backup: the desk makes a ticket; the phone accepts both.
    let after = new_ticket("After the backup").await?;
    flush(&eng1).await?;
    eng1.act(&before, Action::Accept, EventData::default())?;
    eng1.act(&after, Action::Accept, EventData::default())?;
    flush(&eng1).await?;
    relay.stop().await;
    let restored = work.path().join("restored");
    ops::restore(&archive, &restored, &mut quiet())?;
    let (_r, _stop) = serve_on(&restored, addr).await?;
    flush(&eng1).await?;
    let _ = eng1.sync_with(&quick(), &mut |_, _| {}).await;
    let manager = Api::login(
        &relay.url,
        "manager",
        &relay.creds.get("manager").context("manager")?.password,
    )
    .await?;
    // The phone's own work on a ticket the backup holds came back up.
    let t = manager.ticket(&before).await?;
    ensure!(t["status"] == "ACCEPTED", "{t}");
    ensure!(
        t["serial"] == "RO-2026-000001" || t["serial"].is_string(),
        "{t}"
    );
    // A ticket only the lost relay wrote (made on the dashboard after the
    // backup) is not taken back from a phone: the relay cannot tell the lost
    // relay's changes from forged ones. The refusals name why.
    let (status, _) = manager.get(&format!("/api/v1/tickets/{after}")).await?;
    ensure!(
        status == 404,
        "the dashboard's ticket after the backup: {status}"
    );
    let (_, log) = manager
        .get("/api/v1/sync-log?verdict=hard_rejected")
        .await?;
    let reasons: Vec<String> = log["changes"]
        .as_array()
        .context("changes")?
        .iter()
        .map(|c| c["reason"].as_str().unwrap_or_default().to_owned())
        .collect();
    ensure!(
        !reasons.is_empty()
            && reasons.iter().all(|r| r.contains("relay.before-restore")
                || r.contains("web-frontdesk")
                || r.contains("depends on refused change")),
        "{reasons:#?}"
    );
    eprintln!(
        "after the restore: the phone's accept of the older ticket came back; {} changes only the lost relay or dashboard wrote were refused; quarantine {:?}",
        reasons.len(),
        eng1.quarantine()?.len()
    );
    // The phone keeps the refused creation in its quarantine (not silently
    // gone); its own accept of that ticket left with its copy of it.
    let q = eng1.quarantine()?;
    ensure!(q.iter().any(|q| q.doc == after), "{q:?}");
    Ok(())
}
