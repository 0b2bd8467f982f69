//! Interop: unmodified `@automerge/automerge-repo` 2.5.x with
//! `@automerge/automerge-repo-network-websocket` on Node, installed from npm
//! (`tests/js/package-lock.json`), syncs with the relay over `/sync`.
//!
//! `tests/js/append_event.mjs` is an engineer's phone: it finds its assigned
//! ticket, appends an `accept` event and waits for the relay's verdict.
//! `tests/js/unauthorised.mjs` is a device that may not see the ticket: its
//! `repo.find` must end as unavailable because the relay said
//! `doc-unavailable`. Node and npm are required: without them these tests
//! fail, saying so. A missing or stale `tests/js/node_modules` is installed
//! with `npm ci` first.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use harness::{Api, TestRelay, eventually};
use serde_json::{Value, json};
use tokio::process::Command;
use tokio::sync::OnceCell;

/// How long one script may run, end to end, before the test kills it (the
/// script's own deadline, `INTEROP_TIMEOUT_MS`, is shorter).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
/// The script's own deadline, in milliseconds.
const SCRIPT_DEADLINE_MS: &str = "45000";
/// How long `npm ci` may take.
const NPM_TIMEOUT: Duration = Duration::from_secs(600);

/// `tests/js`.
fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// Whether every dependency pinned in `package.json` is installed at its
/// pinned version.
fn installed(dir: &Path) -> Result<bool> {
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("package.json"))?)?;
    let deps = manifest["dependencies"]
        .as_object()
        .context("package.json has no dependencies")?;
    for (name, version) in deps {
        let path = dir.join("node_modules").join(name).join("package.json");
        let Ok(bytes) = std::fs::read(&path) else {
            return Ok(false);
        };
        let found: Value = serde_json::from_slice(&bytes)?;
        if found["version"] != *version {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs a tool, with a deadline, and returns its output; a tool that is not
/// installed is an error that says so.
async fn run(mut cmd: Command, what: &str, timeout: Duration) -> Result<std::process::Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let program = cmd.as_std().get_program().to_string_lossy().into_owned();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!(
            "{what}: `{program}` is not on PATH. The interop tests need Node.js 20+ and npm \
             (`apt-get install -y nodejs npm`; .ci/run installs them)"
        ),
        Err(e) => return Err(e).context(what.to_owned()),
    };
    tokio::time::timeout(timeout, child.wait_with_output())
        .await
        .with_context(|| format!("{what}: still running after {timeout:?}; killed"))?
        .with_context(|| format!("{what}: waiting for it failed"))
}

/// `npm ci` in `tests/js`, once per test binary, if the pinned packages are
/// not installed.
async fn npm_ready() -> Result<()> {
    static READY: OnceCell<std::result::Result<(), String>> = OnceCell::const_new();
    READY
        .get_or_init(|| async {
            let dir = js_dir();
            if installed(&dir).map_err(|e| format!("{e:#}"))? {
                return Ok(());
            }
            let mut cmd = Command::new("npm");
            cmd.args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&dir);
            let out = run(cmd, "npm ci", NPM_TIMEOUT)
                .await
                .map_err(|e| format!("{e:#}"))?;
            if !out.status.success() {
                return Err(format!(
                    "npm ci in {} failed ({}):\n{}\n{}",
                    dir.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            match installed(&dir) {
                Ok(true) => Ok(()),
                Ok(false) => {
                    Err("npm ci succeeded but the pinned packages are not in node_modules".into())
                }
                Err(e) => Err(format!("{e:#}")),
            }
        })
        .await
        .clone()
        .map_err(anyhow::Error::msg)
}

/// Runs `node tests/js/<script> <args>` and returns the JSON object of its
/// last stdout line; a non-zero exit is an error carrying stdout and stderr.
async fn node(script: &str, args: &[&str]) -> Result<Value> {
    npm_ready().await?;
    let mut cmd = Command::new("node");
    cmd.arg(script)
        .args(args)
        .current_dir(js_dir())
        .env("INTEROP_TIMEOUT_MS", SCRIPT_DEADLINE_MS);
    let out = run(cmd, &format!("node {script}"), SCRIPT_TIMEOUT).await?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    ensure!(
        out.status.success(),
        "node {script} {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        out.status
    );
    let last = stdout
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or_default();
    serde_json::from_str(last)
        .with_context(|| format!("node {script}: the last stdout line is not JSON\n--- stdout\n{stdout}\n--- stderr\n{stderr}"))
}

/// A repair created by the front desk through REST and assigned to eng1:
/// `(front desk client, ticket id, automerge URL)`.
async fn repair_assigned_to_eng1(relay: &TestRelay) -> Result<(Api, String, String)> {
    let desk = relay.api("frontdesk").await?;
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": "Kitchen tap dripping", "location": "B2-304 kitchen", "category": "plumbing"}),
        )
        .await?;
    ensure!(status == 201, "creating a repair: HTTP {status}: {t}");
    let id = t["id"].as_str().context("no id")?.to_owned();
    let url = t["url"].as_str().context("no url")?.to_owned();
    ensure!(url == format!("automerge:{id}"), "url {url} for id {id}");
    assert_eq!(
        desk.act(&id, "assign", json!({"assignee": "eng1"})).await?,
        "accepted"
    );
    assert_eq!(desk.ticket(&id).await?["status"], "ASSIGNED");
    Ok((desk, id, url))
}

fn events(t: &Value) -> Result<&Vec<Value>> {
    t["events"]
        .as_array()
        .with_context(|| format!("no events in {t}"))
}

/// GET that must answer 200.
async fn get(api: &Api, path: &str) -> Result<Value> {
    let (status, body) = api.get(path).await?;
    ensure!(status == 200, "GET {path}: HTTP {status}: {body}");
    Ok(body)
}

/// The device's one sync session, once the relay has recorded its end (the
/// counters are written when the connection closes).
async fn ended_session(manager: &Api, user: &str, device: &str) -> Result<Value> {
    let path = format!("/api/v1/sync-log?user={user}&device={device}");
    eventually(
        &format!("{device}'s sync session to end"),
        Duration::from_secs(15),
        || async {
            let log = get(manager, &path).await.ok()?;
            let sessions = log["sessions"].as_array()?;
            (sessions.len() == 1 && !sessions[0]["ended_at"].is_null()).then(|| sessions[0].clone())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_repo_engineer_accepts_assigned_ticket_and_sees_the_verdict() -> Result<()> {
    let relay = TestRelay::start().await?;
    let (desk, id, url) = repair_assigned_to_eng1(&relay).await?;
    let eng1 = relay.creds.get("eng1").context("no eng1")?;

    let out = node("append_event.mjs", &[&relay.url, &eng1.device_token, &url]).await?;
    let event_id = out["event_id"]
        .as_str()
        .with_context(|| format!("no event_id in {out}"))?;
    assert_eq!(
        out["verdict"]["outcome"], "accepted",
        "the verdict the JS client saw: {out}"
    );
    ensure!(
        out["verdict"]["seq"].as_u64().is_some(),
        "the verdict has a seq: {out}"
    );

    // The relay's own view: the event is there as the JS client wrote it,
    // accepted, and the ticket moved on.
    let t = desk.ticket(&id).await?;
    let all = events(&t)?;
    let e = all
        .iter()
        .find(|e| e["id"] == event_id)
        .with_context(|| format!("event {event_id} not in {t}"))?;
    assert_eq!(e["action"], "accept");
    assert_eq!(e["by"], "eng1");
    assert_eq!(e["device"], eng1.device.as_str());
    assert_eq!(e["verdict"]["outcome"], "accepted", "{e}");
    assert_eq!(
        e["verdict"]["seq"], out["verdict"]["seq"],
        "the JS client saw the relay's verdict: {e} vs {out}"
    );
    assert_eq!(all.len(), 3, "issue, assign, accept: {all:?}");
    assert_eq!(t["status"], "ACCEPTED", "{t}");
    assert_eq!(t["assignee"], "eng1");

    // The ledger has the JS change under eng1's phone, accepted; nothing
    // was refused or sent for review.
    let manager = relay.api("manager").await?;
    let log = get(
        &manager,
        &format!("/api/v1/sync-log?document={id}&device={}", eng1.device),
    )
    .await?;
    let changes = log["changes"]
        .as_array()
        .context("no changes in the sync log")?;
    ensure!(
        !changes.is_empty()
            && changes
                .iter()
                .all(|c| c["outcome"] == "accepted" && c["username"] == "eng1"),
        "eng1's changes in the ledger: {changes:?}"
    );
    // The JS client writes a change's time in seconds: it is read as such,
    // not as a moment in January 1970.
    let now = chrono::Utc::now();
    for c in changes {
        let at: chrono::DateTime<chrono::Utc> =
            c["authored_at"].as_str().context("authored_at")?.parse()?;
        ensure!(
            (now - at).num_hours().abs() < 24,
            "a JS change authored at {at}, not today"
        );
    }
    let queue = get(&manager, &format!("/api/v1/review-queue?document={id}")).await?;
    assert_eq!(queue["items"], json!([]), "nothing to review");
    let security = get(&manager, "/api/v1/security-log").await?;
    let eng1_rows: Vec<&Value> = security["items"]
        .as_array()
        .context("no security items")?
        .iter()
        .filter(|r| r["username"] == "eng1")
        .collect();
    assert!(
        eng1_rows.is_empty(),
        "the JS client broke no rule: {eng1_rows:?}"
    );
    let session = ended_session(&manager, "eng1", eng1.device.as_str()).await?;
    assert_eq!(session["accepted"], 1, "{session}");
    assert_eq!(session["hard_rejected"], 0, "{session}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_repo_on_an_unauthorised_device_gets_doc_unavailable() -> Result<()> {
    let relay = TestRelay::start().await?;
    let (desk, id, url) = repair_assigned_to_eng1(&relay).await?;
    let before = desk.ticket(&id).await?;
    let eng3 = relay.creds.get("eng3").context("no eng3")?;

    let out = node("unauthorised.mjs", &[&relay.url, &eng3.device_token, &url]).await?;
    assert_eq!(out["unavailable"], true, "{out}");
    assert_eq!(out["user"], "eng3", "{out}");

    // The ticket is as it was, and eng3's device left no trace on it.
    let after = desk.ticket(&id).await?;
    assert_eq!(events(&after)?, events(&before)?, "no event added");
    assert_eq!(after["status"], "ASSIGNED");
    assert_eq!(after["updated_at"], before["updated_at"]);
    let manager = relay.api("manager").await?;
    let log = get(
        &manager,
        &format!("/api/v1/sync-log?document={id}&user=eng3"),
    )
    .await?;
    assert_eq!(
        log["changes"],
        json!([]),
        "no change of eng3's reached the ledger: {log}"
    );
    let queue = get(&manager, &format!("/api/v1/review-queue?document={id}")).await?;
    assert_eq!(queue["items"], json!([]), "nothing to review");
    let security = get(&manager, "/api/v1/security-log").await?;
    let refused: Vec<&Value> = security["items"]
        .as_array()
        .context("no security items")?
        .iter()
        .filter(|r| r["username"] == "eng3" && r["kind"] == "hard_rejected")
        .collect();
    assert!(refused.is_empty(), "eng3 sent no change: {refused:?}");
    // The relay saw eng3's device connect, and synced no document with it.
    let session = ended_session(&manager, "eng3", eng3.device.as_str()).await?;
    assert_eq!(session["documents"], 0, "{session}");
    assert_eq!(session["changes_received"], 0, "{session}");
    Ok(())
}
