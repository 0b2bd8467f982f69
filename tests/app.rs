//! The field app (client-core compiled to WebAssembly, served at `/app/`) on
//! a phone-sized, touch-enabled headless Chromium (Debian's `chromium`,
//! driven by `playwright-core` from `tests/app/run.mjs`). The supervisor makes
//! an enrolment code on the dashboard; the phone enrols from the QR code's
//! link, syncs, goes offline, reloads and still sees every ticket, accepts,
//! starts, has a refused action explained, is closed mid-way and reopened
//! with nothing lost, completes with a photo and the resident's signature,
//! adds a note this relay refuses; back online the verdicts arrive, the front
//! desk's register shows COMPLETED without a reload, the refused note is in
//! the quarantine; the same engineer's CLI device converges with it; a find
//! is reported with a photo. Screenshots of every screen go to
//! `target/screenshots/` (with `UPDATE_DOCS=1`, the work list also to
//! `docs/field-app.png`).
//!
//! The app is built by `client-core/web/build.sh` (into `target/field-app`, where
//! the relay serves it from) before the browser starts.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use harness::TestRelay;
use serde_json::{Value, json};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// The newest modification time of the files under `path`.
fn newest(path: &Path) -> Option<std::time::SystemTime> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        return meta.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| newest(&e.path()))
        .max()
}

/// Whether `target/field-app` was built after every source it is made from.
fn app_is_fresh(root: &Path) -> bool {
    let Some(built) = newest(&root.join("target/field-app/index.html")) else {
        return false;
    };
    let sources = [
        "Cargo.lock",
        "Cargo.toml",
        ".cargo",
        "schema/src",
        "schema/Cargo.toml",
        "client-core/src",
        "client-core/Cargo.toml",
        "client-core/web",
    ];
    sources
        .iter()
        .filter_map(|s| newest(&root.join(s)))
        .all(|t| t <= built)
}

/// Builds the field app into `target/field-app` unless it is already built
/// from these sources (`.ci/run` builds it just before the tests; even with
/// nothing to compile, `wasm-bindgen` and the gzip copies take a while).
fn build_app(root: &Path) -> Result<()> {
    if app_is_fresh(root) {
        return Ok(());
    }
    let status = std::process::Command::new("bash")
        .arg(root.join("client-core/web/build.sh"))
        .current_dir(root)
        .status()
        .context("running client-core/web/build.sh")?;
    ensure!(status.success(), "building the field app failed: {status}");
    Ok(())
}

/// Installs the pinned `playwright-core` if `node_modules` is missing.
fn npm_ci(dir: &Path) -> Result<()> {
    if dir
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        return Ok(());
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .context("running npm ci in tests/app (is Node.js installed?)")?;
    ensure!(
        status.success(),
        "npm ci in {} failed: {status}",
        dir.display()
    );
    Ok(())
}

/// Waits for the script's marker file, failing early if the script exits.
async fn wait_for(
    file: &Path,
    child: &mut tokio::process::Child,
    timeout: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(file)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return Ok(v);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "the app script exited ({status}) before writing {}",
                file.display()
            );
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {}", file.display());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A repair assigned to eng1; `household` links it to a household file.
async fn order(desk: &harness::Api, title: &str, household: Option<&str>) -> Result<Value> {
    let mut body = json!({"kind": "repair", "title": title, "location": "B1-101 厨房", "category": "plumbing", "urgency": "normal"});
    if let Some(h) = household {
        body["household"] = json!(h);
    }
    let (status, t) = desk.post("/api/v1/tickets", &body).await?;
    ensure!(status == 201, "a new order: HTTP {status}: {t}");
    let id = t["id"].as_str().context("id")?.to_owned();
    ensure!(desk.act(&id, "assign", json!({"assignee": "eng1"})).await? == "accepted");
    let t = desk.ticket(&id).await?;
    Ok(json!({"id": id, "url": format!("automerge:{id}"), "serial": t["serial"]}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_field_app_on_a_phone() -> Result<()> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    ensure!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: the app tests need Debian's `chromium` \
         package (.ci/run installs it), or CHROMIUM=/path/to/chromium"
    );
    let root = root();
    build_app(&root)?;
    let dir = root.join("tests/app");
    npm_ci(&dir)?;
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    let signals = tempfile::tempdir()?;

    // This relay takes changes of at most 4 KiB; the phone allows 10 KB notes.
    let relay = TestRelay::start_with(|c| c.max_change_bytes = 4 * 1024).await?;
    let desk = relay.api("frontdesk").await?;
    let (_, households) = desk.get("/api/v1/households?q=B1-101").await?;
    let household = households["households"][0]["url"]
        .as_str()
        .context("the demo household B1-101")?
        .to_owned();
    let a = order(
        &desk,
        "厨房水龙头漏水 Kitchen tap leaking",
        Some(&household),
    )
    .await?;
    let b = order(&desk, "走廊灯不亮 Corridor light out", None).await?;
    let passwords: serde_json::Map<String, Value> = ["frontdesk", "supervisor"]
        .iter()
        .map(|u| {
            Ok((
                (*u).to_owned(),
                json!(relay.creds.get(*u).context("a demo user")?.password),
            ))
        })
        .collect::<Result<_>>()?;
    let mut child = tokio::process::Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .env("RELAY_URL", &relay.url)
        .env("PASSWORDS", Value::Object(passwords).to_string())
        .env("TICKETS", json!({"a": a, "b": b}).to_string())
        .env("SHOTS", &shots)
        .env("SIGNALS", signals.path())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting node (is Node.js installed?)")?;
    let phase = Duration::from_secs(240);
    let a_id = a["id"].as_str().context("id")?.to_owned();

    // Enrolled from the QR code: a new device of eng1's, made by the exchange.
    let enrolled = wait_for(&signals.path().join("enrolled"), &mut child, phase).await?;
    let device = enrolled["device"]
        .as_str()
        .context("the app's device")?
        .to_owned();
    let sup = relay.api("supervisor").await?;
    let (_, devices) = sup.get("/api/v1/devices").await?;
    ensure!(
        devices["devices"].as_array().is_some_and(|d| d
            .iter()
            .any(|d| d["device_id"] == device.as_str() && d["username"] == "eng1")),
        "the enrolment made {device} for eng1: {devices}"
    );

    // Offline work stays on the phone until it is online.
    wait_for(&signals.path().join("offline-done"), &mut child, phase).await?;
    let t = desk.ticket(&a_id).await?;
    ensure!(
        t["status"] == "ASSIGNED",
        "nothing reached the relay while offline: {}",
        t["status"]
    );

    // Online: every step accepted, the photo and signature kept, the note refused.
    wait_for(&signals.path().join("synced"), &mut child, phase).await?;
    let t = desk.ticket(&a_id).await?;
    ensure!(t["status"] == "COMPLETED", "{}", t["status"]);
    let complete = t["events"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["action"] == "complete"))
        .context("the completion")?
        .clone();
    ensure!(
        complete["device"] == device.as_str(),
        "made by the app's device: {complete}"
    );
    let photo = complete["data"]["photos"][0]
        .as_str()
        .context("a photo")?
        .to_owned();
    let signature = complete["data"]["signature"]
        .as_str()
        .context("a signature")?
        .to_owned();
    ensure!(
        t["attachments"]
            .as_array()
            .is_some_and(|a| a.iter().any(|a| a["sha256"] == photo.as_str())),
        "the photo is attached: {t}"
    );
    ensure!(
        t["notes"].as_array().is_some_and(Vec::is_empty),
        "the refused note was not stored: {}",
        t["notes"]
    );
    let manager = relay.api("manager").await?;
    let (_, review) = manager
        .get(&format!(
            "/api/v1/review-queue?kind=hard_rejected&document={a_id}"
        ))
        .await?;
    ensure!(
        review["items"][0]["rule"] == "oversized_change",
        "a manager sees the refusal: {review}"
    );
    let http = reqwest::Client::new();
    for sha in [&photo, &signature] {
        let r = http
            .head(format!("{}/api/v1/blobs/{sha}", relay.url))
            .bearer_auth(&desk.token)
            .send()
            .await?;
        ensure!(
            r.status() == 200,
            "blob {sha} uploaded: HTTP {}",
            r.status()
        );
    }

    // The same engineer's CLI device sees the app's work and adds a note the app then shows.
    let cli = relay.device("eng1").await?;
    cli.sync_once().await?;
    let v = cli.show(&a_id)?;
    ensure!(
        v.official.status.to_string() == "COMPLETED",
        "the CLI device converged with the app: {}",
        v.official.status
    );
    cli.note(&a_id, "checked from the CLI")?;
    cli.sync_once().await?;
    std::fs::write(signals.path().join("cli-noted"), "{}")?;

    let done = wait_for(&signals.path().join("done"), &mut child, phase).await?;
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .context("the app script did not finish in time")??;
    ensure!(
        status.success(),
        "the app script failed ({status}); see its output above"
    );

    // The find reported on site reached the relay, numbered, with its photo.
    let reported = done["reported"].as_str().context("the reported ticket")?;
    let id = reported.trim_start_matches("automerge:");
    let t = desk.ticket(id).await?;
    ensure!(
        t["serial"].as_str().is_some_and(|s| s.starts_with("RO-")),
        "numbered: {t}"
    );
    ensure!(
        t["attachments"].as_array().is_some_and(|a| a.len() == 1),
        "with its photo: {t}"
    );
    // Both converge: the CLI device, synced again, holds what the relay holds.
    cli.sync_once().await?;
    let v = cli.show(&a_id)?;
    ensure!(
        v.ticket.notes.len() == 1 && v.pending.is_empty(),
        "{:?}",
        v.ticket.notes
    );

    for name in [
        "app-00-dashboard-enrol",
        "app-01-enrol",
        "app-02-work",
        "app-03-offline",
        "app-04-ticket",
        "app-05-refused",
        "app-06-complete",
        "app-07-pending",
        "app-08-synced",
        "app-09-register-completed",
        "app-10-quarantine",
        "app-11-report",
        "app-12-sync-log",
        "app-13-english",
    ] {
        ensure!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name}"
        );
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(root.join("docs"))?;
        std::fs::copy(
            shots.join("app-02-work.png"),
            root.join("docs/field-app.png"),
        )?;
    }
    Ok(())
}
