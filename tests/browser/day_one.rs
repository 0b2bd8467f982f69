//! A property's first day, in Chromium, on a relay started with `serve` on
//! an empty data directory (not the demo), as the README tells a new user:
//! `admin create-user` makes the administrator (a manager) and a cashier;
//! the administrator sets the property up in the dashboard (the login lands
//! on the set-up form), imports households from a CSV (one bad row first:
//! refused whole with the row named; then fixed: committed with a progress
//! bar), keeps a household file (an edit made on a stale version is
//! refused; made again, it shows in the history) and adds the property-fee
//! item; the cashier runs the month's bills (a repeat bills nothing), takes
//! a payment and records a reminder; the manager reads the collection report
//! (report 16) with its rates, formulas and chart. Script:
//! `tests/browser/day_one.mjs`; screenshots `target/screenshots/2*.png`.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use harness::{Api, RelayProcess};
use serde_json::{Value, json};

use super::{npm_ci, root};

const ADMIN_PASSWORD: &str = "first-day admin password";
const CASHIER_PASSWORD: &str = "first-day cashier password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_property_on_day_one_in_chromium() -> Result<()> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    ensure!(
        Path::new(&chromium).exists(),
        "Chromium is not installed at {chromium} (see tests/browser.rs)"
    );
    let root = root();
    let dir = root.join("tests/browser");
    npm_ci(&dir)?;
    let shots = root.join("target/screenshots");
    std::fs::create_dir_all(&shots)?;

    // An empty data directory: the administrator and a cashier from the
    // admin command line, then `serve` (which says the property is missing).
    let bin = env!("CARGO_BIN_EXE_propsync-test-relay");
    let tmp = tempfile::Builder::new()
        .prefix("propsync-day-one-")
        .tempdir()?;
    let data = tmp.path().join("relay");
    for (user, password, role) in [
        ("admin", ADMIN_PASSWORD, "manager"),
        ("cashier1", CASHIER_PASSWORD, "cashier"),
    ] {
        RelayProcess::admin(
            bin,
            &data,
            &[
                "create-user",
                "--username",
                user,
                "--password",
                password,
                "--role",
                role,
            ],
        )?;
    }
    let relay = RelayProcess::start(bin, &data, "127.0.0.1:0")?;
    ensure!(
        !data.join("demo-credentials.json").exists(),
        "the relay started with `serve`, not the demo"
    );
    let admin = Api::login(&relay.url, "admin", ADMIN_PASSWORD).await?;
    let (_, p) = admin.get("/api/v1/property").await?;
    ensure!(p["property"].is_null(), "no property yet: {p}");
    let (_, files) = admin.get("/api/v1/households?q=").await?;
    ensure!(
        files["households"].as_array().is_some_and(Vec::is_empty),
        "no household yet: {files}"
    );

    let mut child = tokio::process::Command::new("node")
        .arg("day_one.mjs")
        .current_dir(&dir)
        .env("RELAY_URL", &relay.url)
        .env(
            "PASSWORDS",
            json!({"admin": ADMIN_PASSWORD, "cashier1": CASHIER_PASSWORD}).to_string(),
        )
        .env("SHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("starting node (is Node.js installed?)")?;
    let status = tokio::time::timeout(Duration::from_secs(180), child.wait())
        .await
        .context("the browser script did not finish in time")??;
    ensure!(
        status.success(),
        "the browser script failed ({status}); see its output above"
    );

    // What the pages did is in the relay, through the API.
    let (_, p) = admin.get("/api/v1/property").await?;
    ensure!(
        p["property"]["time_zone"] == "Asia/Shanghai"
            && p["property"]["buildings"][1]["units"] == 2,
        "the property as set up in the page: {p}"
    );
    let (_, files) = admin.get("/api/v1/household-files").await?;
    let files = files["households"].as_array().cloned().unwrap_or_default();
    ensure!(files.len() == 4, "four households imported: {files:?}");
    let edited: Vec<&Value> = files.iter().filter(|f| f["version"] != 1).collect();
    ensure!(
        edited.len() == 1
            && edited[0]["version"] == 3
            && edited[0]["notes"] == "养狗，敲门前先打电话",
        "one file edited twice (once beside the page, whose stale edit was refused): {edited:?}"
    );
    let (status, report) = admin.get("/api/v1/reports/fee-collection").await?;
    ensure!(status == 200, "report: HTTP {status}: {report}");
    let figure = |label: &str| -> Value {
        report["summary"]
            .as_array()
            .and_then(|s| s.iter().find(|x| x["label"] == label))
            .map(|x| x["value"].clone())
            .unwrap_or_default()
    };
    ensure!(
        figure("billed_households") == 4
            && figure("households_in_arrears") == 3
            && figure("household_collection_rate") == "25.00%"
            && figure("collection_rate") == "20.00%",
        "one household of four paid 250.00 of 1,250.00: {}",
        report["summary"]
    );
    for name in [
        "20-property-setup",
        "21-import-refused",
        "22-import-committed",
        "23-household-file",
        "25-bill-run",
        "26-payment",
        "27-fee-collection",
    ] {
        ensure!(
            shots.join(format!("{name}.png")).exists(),
            "screenshot {name}"
        );
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::create_dir_all(root.join("docs"))?;
        std::fs::copy(
            shots.join("27-fee-collection.png"),
            root.join("docs/fee-collection.png"),
        )?;
    }
    Ok(())
}
