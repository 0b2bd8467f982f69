//! A power cut: phones report tickets and upload photos, the relay
//! acknowledges them, then the relay is killed and every file in its data
//! directory is rolled back to what the disk would hold after losing power:
//! each file's content as of its last `fsync`/`fdatasync`, and only the
//! creations and renames whose directory was fsynced after them. The relay
//! restarts on what is left; everything the phones saw acknowledged must be
//! there (change ledger, document chunks, number ledger, photo bytes) and
//! the database must pass `PRAGMA integrity_check`.
//!
//! The rollback is driven by `powercut/shim.c`, an `LD_PRELOAD` library
//! compiled here with the machine's C compiler, which journals every sync,
//! creation, rename and unlink under the data directory (with a copy of the
//! file at each sync). This exercises `synchronous=FULL` (the WAL is fsynced
//! at each commit) and the blob store's directory fsync after its rename;
//! RELIABILITY.md records that the test fails without either.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use harness::RelayProcess;
use harness::client_core::{Device, Report};
use harness::server::schema::Kind;
use harness::server::schema::ticket::Urgency;

use crate::crash::{Seen, check_store};

/// Builds the shim into `dir`.
fn build_shim(dir: &Path) -> Result<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("powercut/shim.c");
    let out = dir.join("powercut-shim.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-O1", "-w", "-o"])
        .arg(&out)
        .arg(&src)
        .args(["-ldl", "-lpthread"])
        .status()
        .with_context(|| format!("running {cc} (a C compiler is needed: apt-get install gcc)"))?;
    ensure!(status.success(), "compiling {}: {status}", src.display());
    Ok(out)
}

/// The relay binary under the shim.
struct Shimmed {
    child: Child,
    url: String,
}

impl Shimmed {
    fn start(bin: &str, data: &Path, shim: &Path, journal: &Path) -> Result<Self> {
        let mut child = Command::new(bin)
            .args(["serve", "--data"])
            .arg(data)
            .args(["--listen", "127.0.0.1:0", "--no-limits"])
            .env("RUST_LOG", "warn")
            .env("LD_PRELOAD", shim)
            .env("PC_ROOT", data)
            .env("PC_JOURNAL", journal)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()?;
        let stderr = child.stderr.take().context("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = loop {
            let Some(line) = lines.next() else {
                bail!("the shimmed relay exited before listening")
            };
            if let Some(rest) = line?.split("listening on ").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            ensure!(Instant::now() < deadline, "the shimmed relay did not start");
        };
        std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
        Ok(Self { child, url })
    }

    /// The power cut's first half: the process dies at once.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Shimmed {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every regular file under `dir`, by path.
fn files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let t = e.file_type()?;
        if t.is_dir() {
            files(&e.path(), out)?;
        } else if t.is_file() {
            out.push(e.path());
        }
    }
    Ok(())
}

/// What the rollback did, for the report.
#[derive(Debug, Default)]
struct Rollback {
    files_kept: usize,
    files_rolled_back: usize,
    names_undone: usize,
    journal_lines: usize,
}

/// Rolls `data` back to its durable state: `baseline` holds the files as
/// they were before the shimmed run (all durable), the journal what happened since.
fn roll_back(data: &Path, baseline: &Path, journal: &Path) -> Result<Rollback> {
    // Content ids: a file's durable content is a path to read it from.
    let mut content: Vec<Option<PathBuf>> = Vec::new();
    let mut volatile: BTreeMap<PathBuf, usize> = BTreeMap::new();
    let mut before = Vec::new();
    files(baseline, &mut before)?;
    for b in before {
        let rel = b.strip_prefix(baseline)?.to_owned();
        content.push(Some(b));
        volatile.insert(data.join(rel), content.len() - 1);
    }
    let mut durable = volatile.clone();
    let text = std::fs::read_to_string(journal.join("journal")).unwrap_or_default();
    let mut report = Rollback {
        journal_lines: text.lines().count(),
        ..Rollback::default()
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (kind, a, b) = (parts.next(), parts.next().map(PathBuf::from), parts.next());
        match (kind, a) {
            (Some("C"), Some(p)) => {
                content.push(None);
                volatile.insert(p, content.len() - 1);
            }
            (Some("S"), Some(p)) => {
                let n = b.context("a copy number")?;
                let copy = journal.join("copies").join(n);
                match volatile.get(&p) {
                    Some(&id) => content[id] = Some(copy),
                    None => {
                        content.push(Some(copy));
                        volatile.insert(p, content.len() - 1);
                    }
                }
            }
            (Some("R"), Some(old)) => {
                let new = PathBuf::from(b.context("a rename target")?);
                if let Some(id) = volatile.remove(&old) {
                    volatile.insert(new, id);
                }
            }
            (Some("U"), Some(p)) => {
                volatile.remove(&p);
            }
            (Some("D"), Some(dir)) => {
                durable.retain(|p, _| p.parent() != Some(dir.as_path()));
                for (p, id) in &volatile {
                    if p.parent() == Some(dir.as_path()) {
                        durable.insert(p.clone(), *id);
                    }
                }
            }
            _ => bail!("a journal line the test does not know: {line:?}"),
        }
    }
    // The disk after the cut: only durable names, each with its durable content.
    let mut now = Vec::new();
    files(data, &mut now)?;
    for p in &now {
        if !durable.contains_key(p) {
            report.names_undone += 1;
        }
        std::fs::remove_file(p)?;
    }
    for (p, id) in &durable {
        // The WAL index is SQLite's shared memory, rebuilt on open after a crash.
        if p.to_string_lossy().ends_with("-shm") {
            continue;
        }
        match &content[*id] {
            Some(src) => {
                std::fs::copy(src, p)?;
                report.files_kept += 1;
            }
            None => {
                std::fs::write(p, b"")?;
                report.files_rolled_back += 1;
            }
        }
    }
    Ok(report)
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    let mut all = Vec::new();
    files(from, &mut all)?;
    for f in all {
        let dest = to.join(f.strip_prefix(from)?);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&f, &dest)?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_power_cut_loses_nothing_the_relay_acknowledged() -> Result<()> {
    let bin = env!("CARGO_BIN_EXE_propsync-test-relay");
    let dir = tempfile::Builder::new()
        .prefix("propsync-powercut-")
        .tempdir()?;
    let shim = build_shim(dir.path())?;
    let data = dir.path().join("relay");
    // Seed the property on the real file system, then stop: the baseline.
    let mut seed = RelayProcess::start(bin, &data, "127.0.0.1:0")?;
    let creds = seed.creds()?;
    seed.kill();
    let baseline = dir.path().join("baseline");
    copy_tree(&data, &baseline)?;
    let journal = dir.path().join("journal");
    std::fs::create_dir_all(journal.join("copies"))?;

    let mut relay = Shimmed::start(bin, &data, &shim, &journal)?;
    let mut seen = Seen::default();
    let mut photos: Vec<(String, Vec<u8>)> = Vec::new();
    let mut phones = Vec::new();
    for (n, user) in ["eng1", "security1", "cleaning1"].into_iter().enumerate() {
        let d = Device::open(&dir.path().join(format!("{user}.db")))?;
        d.enroll(
            &relay.url,
            creds["users"][user]["device_token"]
                .as_str()
                .context("token")?,
        )
        .await?;
        for round in 0..3 {
            d.report(&Report {
                kind: Kind::Repair,
                household: None,
                location: format!("B{} floor {round}", n + 1),
                title: format!("Find {n}-{round}"),
                description: String::new(),
                category: Some("general".into()),
                urgency: Urgency::Normal,
            })?;
            let bytes =
                format!("\u{ff}\u{d8} photo {n}-{round} {}", rand::random::<u64>()).into_bytes();
            let sha = d.add_photo(&bytes, "image/jpeg")?;
            photos.push((sha, bytes));
            seen.observe(&d)?;
            d.sync_once().await?;
            seen.observe(&d)?;
        }
        phones.push((user, d));
    }
    let uploaded: Vec<&(String, Vec<u8>)> = photos
        .iter()
        .filter(|(sha, _)| {
            phones
                .iter()
                .any(|(_, d)| d.photo(sha).ok().flatten().is_some_and(|b| b.complete))
        })
        .collect();
    ensure!(
        !seen.acked.is_empty() && !uploaded.is_empty(),
        "something was acknowledged"
    );

    // The cut.
    relay.kill();
    let rolled = roll_back(&data, &baseline, &journal)?;
    eprintln!(
        "power cut: {} journal lines; {} files kept at their last fsync, {} emptied, {} names undone",
        rolled.journal_lines, rolled.files_kept, rolled.files_rolled_back, rolled.names_undone
    );

    // Restart on what the disk kept; check it before any phone reconnects.
    let restarted = RelayProcess::start(bin, &data, "127.0.0.1:0")?;
    let (changes, serials) = check_store(&data.join("propsync.sqlite3"), &seen)?;
    let mut missing = Vec::new();
    for (sha, bytes) in &uploaded {
        match std::fs::read(data.join("blobs").join(sha)) {
            Ok(kept) if kept == *bytes => {}
            Ok(_) => missing.push(format!("{sha}: different bytes")),
            Err(e) => missing.push(format!("{sha}: {e}")),
        }
    }
    ensure!(
        missing.is_empty(),
        "photos acknowledged complete but lost: {missing:#?}"
    );
    eprintln!(
        "after the cut: {changes} acknowledged changes, {serials} serials and {} photos all kept; integrity_check ok",
        uploaded.len()
    );
    drop(restarted);
    Ok(())
}
