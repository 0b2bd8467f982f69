//! The dashboard in real headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from `tests/browser/run.mjs`): the front desk logs in and
//! records a repair whose serial shows at once; the engineer's phone (the
//! harness device) completes it offline and syncs while the register, never
//! reloaded, shows it complete; the supervisor resolves a review-queue item;
//! the printable order shows its three copies. Screenshots of every page go to
//! `target/screenshots/` (with `UPDATE_DOCS=1`, the register's also to
//! `docs/register.png`).
//!
//! The script and this test hand over through marker files in a temporary
//! folder, each side waiting on the other's with a deadline.
//!
//! [`day_one`] is a property's first day on an empty relay: set-up, import,
//! billing, collection and the collection report.

mod day_one;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use harness::server::schema::ticket::Material;
use harness::server::schema::{Action, EventData, Fen};
use harness::{Api, TestRelay};
use serde_json::{Value, json};

pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace root")
        .to_owned()
}

/// Installs the pinned `playwright-core` if `node_modules` is missing.
pub(crate) fn npm_ci(dir: &Path) -> Result<()> {
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
        .context("running npm ci in tests/browser (is Node.js installed?)")?;
    ensure!(
        status.success(),
        "npm ci in {} failed: {status}",
        dir.display()
    );
    Ok(())
}

/// Waits for the script's marker file, failing early if the script exits.
pub(crate) async fn wait_for(
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
                "the browser script exited ({status}) before writing {}",
                file.display()
            );
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {}", file.display());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn completion() -> EventData {
    EventData {
        result: Some("replaced the tap cartridge".into()),
        labour_min: Some(40),
        materials: Some(vec![Material {
            name: "tap cartridge".into(),
            qty: 1,
            unit_fen: Fen::new(2_800),
        }]),
        ..EventData::default()
    }
}

async fn accepted(api: &Api, id: &str, action: &str, data: Value) -> Result<()> {
    let outcome = api.act(id, action, data).await?;
    ensure!(outcome == "accepted", "{action} on {id}: {outcome}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_chromium() -> Result<()> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    ensure!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium}: the browser tests need Debian's `chromium` \
         package (`apt-get install -y chromium`; .ci/run installs it), or CHROMIUM=/path/to/chromium"
    );
    let root = root();
    let dir = root.join("tests/browser");
    npm_ci(&dir)?;
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots)?;
    let signals = tempfile::tempdir()?;

    let relay = TestRelay::start().await?;
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
        .env("SHOTS", &shots)
        .env("SIGNALS", signals.path())
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting node (is Node.js installed?)")?;

    // The front desk recorded a repair and watches the register.
    let created = wait_for(
        &signals.path().join("created"),
        &mut child,
        Duration::from_secs(120),
    )
    .await?;
    let id = created["id"].as_str().context("the ticket id")?.to_owned();
    let desk = relay.api("frontdesk").await?;
    let engsup = relay.api("engsup").await?;
    let t = desk.ticket(&id).await?;
    ensure!(
        t["serial"] == created["serial"],
        "the page showed the relay's serial: {t}"
    );
    accepted(&desk, &id, "assign", json!({"assignee": "eng1"})).await?;

    // A second order, for the review queue: eng1 starts it online, then
    // completes it offline while the engineering supervisor transfers it.
    let (status, other) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "Corridor light out", "location": "B2 floor 3",
                    "category": "electrical", "urgency": "normal"}),
        )
        .await?;
    ensure!(status == 201, "second order: HTTP {status}: {other}");
    let other = other["id"].as_str().context("id")?.to_owned();
    accepted(&desk, &other, "assign", json!({"assignee": "eng1"})).await?;

    let eng1 = relay.device("eng1").await?;
    eng1.sync_once().await?;
    eng1.act(&other, Action::Accept, EventData::default())?;
    eng1.act(&other, Action::Start, EventData::default())?;
    eng1.sync_once().await?;
    accepted(
        &engsup,
        &other,
        "transfer",
        json!({"assignee": "eng2", "reason": "eng1 is needed elsewhere"}),
    )
    .await?;

    // Offline: the browser's order, accepted, started and completed; the
    // transferred one completed too.
    eng1.act(&id, Action::Accept, EventData::default())?;
    eng1.act(&id, Action::Start, EventData::default())?;
    eng1.act(&id, Action::Complete, completion())?;
    eng1.act(&other, Action::Complete, completion())?;
    ensure!(
        desk.ticket(&id).await?["status"] == "ASSIGNED",
        "nothing synced yet"
    );
    let up = eng1.sync_once().await?;
    ensure!(
        up.verdicts >= 4,
        "the offline work reached the relay: {up:?}"
    );
    let t = desk.ticket(&id).await?;
    ensure!(t["status"] == "COMPLETED", "{}", t["status"]);
    let (_, queue) = engsup
        .get(&format!("/api/v1/review-queue?open=true&document={other}"))
        .await?;
    ensure!(
        queue["items"]
            .as_array()
            .is_some_and(|i| i.len() == 1 && i[0]["action"] == "complete"),
        "one conflict to review: {queue}"
    );
    std::fs::write(signals.path().join("synced"), "{}")?;

    let status = tokio::time::timeout(Duration::from_secs(400), child.wait())
        .await
        .context("the browser script did not finish in time")??;
    ensure!(
        status.success(),
        "the browser script failed ({status}); see its output above"
    );

    // The supervisor's override went through the real API.
    let (_, queue) = engsup
        .get(&format!("/api/v1/review-queue?open=true&document={other}"))
        .await?;
    ensure!(
        queue["items"].as_array().is_some_and(Vec::is_empty),
        "the review item is resolved: {queue}"
    );
    for name in [
        "01-login",
        "02-record-a-contact",
        "register",
        "04-ticket",
        "05-print",
        "08-review-queue",
    ] {
        ensure!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name}"
        );
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(root.join("docs"))?;
        std::fs::copy(shots.join("register.png"), root.join("docs/register.png"))?;
    }
    Ok(())
}
