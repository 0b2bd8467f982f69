//! `propsync-bench`: how the relay holds up when a whole property's phones
//! reconnect at once, and what validation costs against a plain
//! automerge-repo sync server, measured side by side in one run.
//!
//! It starts the relay's release binary on a fresh data directory, seeds a
//! property (engineers with phones), writes `--history` tickets of a year's
//! history with the relay's library, records and assigns repair orders, and
//! drives `--devices` simulated phones (each `client_core`'s sync engine
//! behind its own WebSocket on loopback). Then:
//!
//! - the year (`bench/year.rs`): ticket creation over REST on the empty
//!   relay and after the history; cold start on the history, time until it
//!   answers and RSS; every report and the register's filters, p50/p99; the
//!   front desk's tablet syncing its inbox, first and again;
//! - storm: every phone made `--events` offline steps on each of its
//!   `--tickets` orders; all reconnect at once; time until every phone and
//!   the server have converged (and, on the relay, every verdict is back);
//! - live: with every phone connected and idle, one phone's note reaching
//!   another, samples 5 ms apart and again spaced beyond automerge-repo's
//!   100 ms sync throttle (`--spaced-ms`);
//! - the same storm and live test against the JavaScript automerge-repo sync
//!   server (`tests/bench/server.mjs`, no tokens: it has no auth);
//! - the raw limit: the same changes applied to in-memory documents.
//!
//! The table goes to stdout and, with the command that made it, to `--out`
//! (`BENCHMARKS.md` at the workspace root by default).
//!
//! ```text
//! cargo build --release -p propsync-server -p propsync-tests --bins
//! (cd tests/bench && npm ci)
//! target/release/propsync-bench            # the defaults: about five minutes
//! target/release/propsync-bench --devices 1000 --live-samples 1000 --history 100000   # BENCHMARKS.md's run
//! ```

#![allow(
    clippy::print_stdout,
    reason = "a benchmark binary: its table goes to stdout"
)]
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss,
    reason = "figures for a report: counts and durations as floating point and back"
)]

#[path = "bench/fleet.rs"]
mod fleet;
#[path = "bench/procs.rs"]
mod procs;
#[path = "bench/report.rs"]
mod report;
#[path = "bench/seed.rs"]
mod seed;
#[path = "bench/year.rs"]
mod year;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use automerge::transaction::CommitOptions;
use automerge::{Automerge, Change, ReadDoc};
use harness::Api;
use harness::server::schema::ticket::Note;
use harness::server::schema::{DeviceId, DocId, EventId, UserId};

use fleet::{Conn, Held, Identity, StormDevice, StormResult, Target, Wire};
use procs::Server;
use report::{Figures, Live, Storm};

/// The sizes of a run.
#[derive(Clone, Debug, clap::Parser)]
#[command(
    name = "propsync-bench",
    about = "The reconnect storm, live latency and cold start, against the JS peer"
)]
struct Args {
    /// Simulated phones (N). The defaults run in about five minutes on two
    /// cores, most of it the JS peer; `BENCHMARKS.md` names the sizes of its run.
    #[arg(long, default_value_t = 500)]
    devices: usize,
    /// Assigned tickets per phone (T).
    #[arg(long, default_value_t = 5)]
    tickets: usize,
    /// Offline steps per ticket (E).
    #[arg(long, default_value_t = 10)]
    events: usize,
    /// Live-latency samples.
    #[arg(long, default_value_t = 500)]
    live_samples: usize,
    /// Live-latency samples spaced beyond automerge-repo's 100 ms sync
    /// throttle (the second live test on each server).
    #[arg(long, default_value_t = 200)]
    spaced_samples: usize,
    /// How far apart the spaced live samples are, ms.
    #[arg(long, default_value_t = 150)]
    spaced_ms: u64,
    /// Tickets of history (a year of a property: received over 365 days,
    /// most closed), written with the relay's library before it starts;
    /// stored for the cold start, the reports and the register.
    #[arg(long, default_value_t = 20_000)]
    history: usize,
    /// Tickets created through REST on the empty relay and again after the
    /// history, for the creation rate.
    #[arg(long, default_value_t = 500)]
    create_samples: usize,
    /// Times each report and register query is asked.
    #[arg(long, default_value_t = 20)]
    report_samples: usize,
    /// Seconds after which a report or query is asked no more (at least once).
    #[arg(long, default_value_t = 60)]
    report_budget_secs: u64,
    /// Where the table goes.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../BENCHMARKS.md"))]
    out: PathBuf,
    /// Skip the JavaScript peer.
    #[arg(long)]
    skip_peer: bool,
}

impl Args {
    fn parse() -> Result<Self> {
        let a = <Self as clap::Parser>::parse();
        ensure!(
            a.devices >= 1 && a.tickets >= 1 && a.events >= 1,
            "sizes must be positive"
        );
        ensure!(a.live_samples >= 2, "--live-samples must be at least 2");
        Ok(a)
    }
}

/// The progress line on stderr, overwritten in place.
#[derive(Debug)]
struct Progress {
    start: Instant,
    last: Mutex<Instant>,
}

impl Progress {
    fn new() -> Self {
        let start = Instant::now();
        Self {
            start,
            last: Mutex::new(start),
        }
    }

    /// Shows `msg` (at most ten times a second).
    fn show(&self, msg: &str) {
        if let Ok(mut last) = self.last.lock() {
            if last.elapsed() < Duration::from_millis(100) {
                return;
            }
            *last = Instant::now();
        }
        self.force(msg);
    }

    /// Shows `msg` now.
    fn force(&self, msg: &str) {
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[K[{:>6.1}s] {msg}",
            self.start.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }

    /// Ends a phase with a line that stays.
    fn done(&self, msg: &str) {
        self.force(msg);
        eprintln!();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse()?;
    let progress = Progress::new();
    let needed = 2 * args.devices as u64 + 256;
    if let Some(limit) = procs::open_files_limit()
        && limit < needed
    {
        bail!(
            "{} devices need {needed} open files; the limit is {limit}: run `ulimit -n {needed}` first",
            args.devices
        );
    }
    let relay_bin =
        procs::sibling("propsync-test-relay").or_else(|_| procs::sibling("propsync-server"))?;
    let bench_js = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench");
    if !args.skip_peer && !bench_js.join("node_modules").is_dir() {
        bail!(
            "the JS peer is not installed: run `npm ci` in {}",
            bench_js.display()
        );
    }
    let work = tempfile::Builder::new()
        .prefix("propsync-bench-")
        .tempdir()?;
    let data = work.path().join("relay");

    // The demo property, and tickets created on the empty relay.
    let demo = seed::demo(&data).await?;
    let demo_password = |name: &str| -> Result<String> {
        Ok(demo
            .get(name)
            .with_context(|| format!("no demo user {name}"))?
            .password
            .clone())
    };
    let desk_password = demo_password("frontdesk")?;
    let mut relay = Server::relay(&relay_bin, &data)?;
    let desk = Api::login(&relay.url, "frontdesk", &desk_password).await?;
    let create_start = year::create(&desk, args.create_samples, &progress).await?;
    progress.done(&format!(
        "created {} tickets over REST on the empty relay: {:.0}/s",
        create_start.count,
        create_start.per_second()
    ));
    relay.stop();

    // A year of history, through the relay's library (the relay stopped).
    let seeded = year::seed(&data, args.history, &progress).await?;
    progress.done(&format!(
        "history: {} tickets, {} steps in {:.1} s ({:.0} tickets/s, {:.0} steps/s); {} open",
        seeded.tickets,
        seeded.steps,
        seeded.took.as_secs_f64(),
        seeded.tickets as f64 / seeded.took.as_secs_f64().max(1e-9),
        seeded.steps as f64 / seeded.took.as_secs_f64().max(1e-9),
        seeded.open
    ));
    let stored = seeded.tickets + create_start.count;

    // The storm's engineers and phones (after the history: it dispatches
    // to the demo property's three engineers).
    let property = seed::property(&data, args.devices, &progress).await?;
    progress.done(&format!("enrolled {} engineers", args.devices));

    // Cold start: the relay started on everything stored.
    let relay = Server::relay(&relay_bin, &data)?;
    let answered = wait_answering(&relay.url).await?;
    let cold = report::Cold {
        tickets: stored,
        took: answered.duration_since(relay.spawned),
        rss: relay.memory()?.rss,
    };
    progress.done(&format!(
        "cold start with {} tickets: {:.3} s",
        cold.tickets,
        cold.took.as_secs_f64()
    ));

    // Reports, the register, creation and the desk's tablet at that size.
    let desk = Api::login(&relay.url, "frontdesk", &desk_password).await?;
    let sup = Api::login(&relay.url, "supervisor", &demo_password("supervisor")?).await?;
    let mut readers = Vec::new();
    for name in ["manager", "supervisor", "cashier", "engsup"] {
        readers.push(Api::login(&relay.url, name, &demo_password(name)?).await?);
    }
    let budget = Duration::from_secs(args.report_budget_secs);
    let reports = year::reports(&readers, args.report_samples, budget, &progress).await?;
    let register = year::register(&sup, args.report_samples, budget, &progress).await?;
    let serials = year::serials(&sup).await?;
    let create_end = year::create(&desk, args.create_samples, &progress).await?;
    progress.done(&format!(
        "created {} tickets over REST after the history: {:.0}/s",
        create_end.count,
        create_end.per_second()
    ));
    let desk_token = demo
        .get("frontdesk")
        .context("no front desk")?
        .device_token
        .clone();
    let desk_sync = year::desk_sync(&relay.url, &desk_token, &progress).await?;
    progress.done(&format!(
        "the desk's tablet: first sync of {} documents {:.1} s, again with nothing new {:.2} s",
        desk_sync.listed,
        desk_sync.first.as_secs_f64(),
        desk_sync.again.as_secs_f64()
    ));
    let year = year::Year {
        seeded,
        create_start,
        create_end,
        reports,
        register,
        desk: desk_sync,
        serials,
    };

    // The storm's orders, assigned, and each phone's first sync.
    let users: Vec<UserId> = property.engineers.iter().map(|(u, _)| u.clone()).collect();
    let assigned = args.devices * args.tickets;
    let live_user = property.live.0.clone();
    let (t, u) = (args.tickets, users.clone());
    seed::tickets(
        &desk,
        assigned + 1,
        move |i| {
            Some(if i < u.len() * t {
                u[i / t].clone()
            } else {
                live_user.clone()
            })
        },
        &progress,
        "recording and assigning orders",
    )
    .await?;
    progress.done(&format!("recorded and assigned {} orders", assigned + 1));
    let phones: Vec<Identity> = property.engineers.iter().map(|(_, i)| i.clone()).collect();
    let fetched = seed::first_sync(&relay.url, phones, args.tickets, &progress).await?;
    let live_fetched = seed::first_sync(
        &relay.url,
        vec![property.live.1.clone(), property.live.2.clone()],
        1,
        &progress,
    )
    .await?;
    progress.done(&format!("{} phones fetched their orders", fetched.len()));

    // The offline work, made once: the same changes go to both servers.
    let mut work_per_phone = Vec::with_capacity(fetched.len());
    let mut raw_inputs: Vec<(Automerge, Vec<Change>)> = Vec::new();
    let mut changes_total = 0usize;
    for ((identity, held), (user, _)) in fetched.iter().zip(&property.engineers) {
        let mut after = BTreeMap::new();
        let mut per_doc = BTreeMap::new();
        for (id, h) in held {
            if Some(*id) == identity.inbox {
                continue;
            }
            let mut doc = h.doc.clone();
            let w = seed::offline_work(&mut doc, user, &identity.name, args.events)?;
            changes_total += w.changes.len();
            raw_inputs.push((h.doc.clone(), w.changes.clone()));
            after.insert(*id, doc);
            per_doc.insert(*id, w);
        }
        work_per_phone.push((after, per_doc));
    }
    progress.done(&format!(
        "{changes_total} offline changes made on {} orders",
        raw_inputs.len()
    ));

    // propsync.
    let relay_target = Target {
        base: relay.url.clone(),
        path: "/sync",
        tokens: true,
        verdicts: true,
    };
    let devices = storm_devices(&fetched, &work_per_phone, None);
    let (storm_relay, live_relay) = run_target(
        "propsync",
        &relay,
        &relay_target,
        devices,
        &live_fetched,
        &args,
        &progress,
    )
    .await?;
    drop(relay);

    // The JS peer.
    let peer_figures = if args.skip_peer {
        None
    } else {
        let peer_data = work.path().join("peer");
        std::fs::create_dir_all(&peer_data)?;
        let mut peer = Server::peer(&bench_js, &peer_data)?;
        let target = Target {
            base: peer.url.clone(),
            path: "/",
            tokens: false,
            verdicts: false,
        };
        // The documents must exist there first: each phone pushes what it fetched.
        let mut pushed = Vec::with_capacity(fetched.len());
        let mut seeding = futures_util::stream::iter(fetched.iter().map(|(id, held)| {
            let tickets: BTreeMap<DocId, Held> = held
                .iter()
                .filter(|(d, _)| Some(**d) != id.inbox)
                .map(|(d, h)| (*d, h.clone()))
                .collect();
            let target = target.clone();
            async move { seed::push(&target, id, tickets).await }
        }))
        .buffered(32);
        use futures_util::StreamExt;
        while let Some(r) = seeding.next().await {
            pushed.push(r?);
            progress.show(&format!(
                "seeding the peer {}/{}",
                pushed.len(),
                fetched.len()
            ));
        }
        drop(seeding);
        let mut live_pushed = Vec::new();
        for (id, held) in &live_fetched {
            let tickets = held
                .iter()
                .filter(|(d, _)| Some(**d) != id.inbox)
                .map(|(d, h)| (*d, h.clone()))
                .collect();
            live_pushed.push((id.clone(), seed::push(&target, id, tickets).await?));
        }
        progress.done("seeded the peer");
        // A fresh process for the measurements, like the relay's.
        peer.stop();
        let peer = Server::peer(&bench_js, &peer_data)?;
        let target = Target {
            base: peer.url.clone(),
            ..target
        };
        let pushed: Vec<(Identity, BTreeMap<DocId, Held>)> = fetched
            .iter()
            .map(|(id, _)| id.clone())
            .zip(pushed)
            .collect();
        let devices = storm_devices(&pushed, &work_per_phone, Some(()));
        let figures = run_target(
            "JS peer",
            &peer,
            &target,
            devices,
            &live_pushed,
            &args,
            &progress,
        )
        .await?;
        Some(figures)
    };

    // The raw limit.
    let raw = raw_limit(raw_inputs)?;
    progress.done(&format!("raw limit: {:.3} s", raw.as_secs_f64()));

    let figures = Figures {
        devices: args.devices,
        tickets: args.tickets,
        events: args.events,
        changes: changes_total,
        live_samples: args.live_samples,
        spaced_samples: args.spaced_samples,
        spaced_ms: args.spaced_ms,
        propsync: (storm_relay, live_relay),
        peer: peer_figures,
        cold,
        raw,
        year,
    };
    let command = command_line();
    let text = report::render(&figures, &command, &procs::machine());
    println!("{}", report::table(&figures));
    std::fs::write(&args.out, text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("written to {}", args.out.display());
    Ok(())
}

/// One phone's documents after its offline work, and that work per document.
type PhoneWork = (BTreeMap<DocId, Automerge>, BTreeMap<DocId, seed::Work>);

/// The storm's devices: each phone's documents after its offline work, with
/// the sync states it saved with this server.
fn storm_devices(
    held: &[(Identity, BTreeMap<DocId, Held>)],
    work: &[PhoneWork],
    peer: Option<()>,
) -> Vec<StormDevice> {
    held.iter()
        .zip(work)
        .map(|((id, docs), (after, per_doc))| {
            let docs = docs
                .iter()
                .filter(|(d, _)| peer.is_none() || Some(**d) != id.inbox)
                .map(|(d, h)| {
                    let doc = after.get(d).cloned().unwrap_or_else(|| h.doc.clone());
                    (
                        *d,
                        Held {
                            doc,
                            state: h.state.clone(),
                        },
                    )
                })
                .collect();
            StormDevice {
                id: id.clone(),
                docs,
                unacked: per_doc.iter().map(|(d, w)| (*d, w.hashes())).collect(),
                events: per_doc
                    .iter()
                    .map(|(d, w)| (*d, w.events.clone()))
                    .collect(),
            }
        })
        .collect()
}

/// Storm, then the live test with the storm's devices still connected.
async fn run_target(
    name: &str,
    server: &Server,
    target: &Target,
    devices: Vec<StormDevice>,
    live_pair: &[(Identity, BTreeMap<DocId, Held>)],
    args: &Args,
    progress: &Progress,
) -> Result<(Storm, Live)> {
    let n = devices.len();
    let wire = Arc::new(Wire::default());
    let (start_tx, start_rx) = tokio::sync::watch::channel(None);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (report_tx, mut report_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::with_capacity(n);
    for dev in devices {
        tasks.push(tokio::spawn(fleet::storm_device(
            target.clone(),
            dev,
            Arc::clone(&wire),
            start_rx.clone(),
            report_tx.clone(),
            stop_rx.clone(),
        )));
    }
    drop(report_tx);
    let cpu_before = server.cpu_secs()?;
    let t0 = Instant::now();
    start_tx.send(Some(t0))?;
    let mut results: Vec<StormResult> = Vec::with_capacity(n);
    while results.len() < n {
        let Some(r) = report_rx.recv().await else {
            bail!("{name}: devices stopped reporting");
        };
        results.push(r.with_context(|| format!("{name} storm"))?);
        progress.show(&format!(
            "{name} storm: {}/{n} devices converged",
            results.len()
        ));
    }
    let took = t0.elapsed();
    let cpu = server.cpu_secs()? - cpu_before;
    let memory = server.memory()?;
    let storm = Storm {
        took,
        acked: results.iter().map(|r| r.acked).sum(),
        accepted: results.iter().map(|r| r.accepted).sum(),
        conflicts: results.iter().map(|r| r.conflicts).sum(),
        rejected: results.iter().map(|r| r.rejected).sum(),
        resets: results.iter().map(|r| r.resets).sum(),
        cpu_secs: cpu,
        peak_rss: memory.peak,
        wire_bytes: wire.total(),
    };
    progress.done(&format!(
        "{name} storm: {n} devices converged in {:.2} s",
        took.as_secs_f64()
    ));

    let samples = live(
        target,
        live_pair,
        args.live_samples,
        Duration::from_millis(5),
        progress,
        name,
    )
    .await?;
    let spaced = live(
        target,
        live_pair,
        args.spaced_samples,
        Duration::from_millis(args.spaced_ms),
        progress,
        &format!("{name} (spaced)"),
    )
    .await?;
    let rss_connected = idle_rss(server, target, progress, name).await?;
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    progress.done(&format!(
        "{name} live: {} samples with {n} devices connected",
        samples.len()
    ));
    Ok((storm, Live::new(samples, spaced, rss_connected)))
}

/// The server's RSS once every device is connected and idle: on the relay,
/// after the documents nobody uses have left memory (`documents_loaded` in
/// `/api/v1/health` back to 0, within a minute); on both, once the RSS has
/// stopped falling (two readings a second apart within 1 MB, within 30 s).
async fn idle_rss(
    server: &Server,
    target: &Target,
    progress: &Progress,
    name: &str,
) -> Result<u64> {
    let t0 = Instant::now();
    if target.verdicts {
        let client = reqwest::Client::new();
        let deadline = t0 + Duration::from_secs(60);
        loop {
            let health: serde_json::Value = client
                .get(format!("{}/api/v1/health", target.base))
                .send()
                .await?
                .json()
                .await?;
            let loaded = health["documents_loaded"].as_u64().unwrap_or(u64::MAX);
            progress.show(&format!("{name}: {loaded} documents still in memory"));
            if loaded == 0 || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last = server.memory()?.rss;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = server.memory()?.rss;
        progress.show(&format!("{name}: RSS {:.1} MB, settling", now as f64 / 1e6));
        if last.abs_diff(now) < 1_000_000 || Instant::now() > deadline {
            progress.done(&format!(
                "{name}: idle RSS {:.1} MB after {:.1} s",
                now as f64 / 1e6,
                t0.elapsed().as_secs_f64()
            ));
            return Ok(now);
        }
        last = now;
    }
}

/// One phone's note reaching another phone of the same engineer, `samples`
/// times, the two taking turns, `pause` apart.
async fn live(
    target: &Target,
    pair: &[(Identity, BTreeMap<DocId, Held>)],
    samples: usize,
    pause: Duration,
    progress: &Progress,
    name: &str,
) -> Result<Vec<Duration>> {
    let [(a_id, a_docs), (b_id, b_docs)] = pair else {
        bail!("the live test needs two phones");
    };
    let ticket = *a_docs
        .keys()
        .find(|d| Some(**d) != a_id.inbox)
        .context("the live phone has no ticket")?;
    let wire = Arc::new(Wire::default());
    let none = BTreeMap::new();
    let mut a = Conn::open(target, a_id, a_docs.clone(), &none, Arc::clone(&wire)).await?;
    let mut b = Conn::open(target, b_id, b_docs.clone(), &none, wire).await?;
    a.until(Duration::from_secs(60), |c| c.engine().is_idle())
        .await?;
    b.until(Duration::from_secs(60), |c| c.engine().is_idle())
        .await?;
    let mut out = Vec::with_capacity(samples);
    for i in 0..samples {
        let (w, r, wid) = if i % 2 == 0 {
            (&mut a, &mut b, a_id)
        } else {
            (&mut b, &mut a, b_id)
        };
        let mut doc = w.engine().doc(ticket).context("live ticket")?.clone();
        let change = note(&mut doc, wid, i)?;
        let hash = change.hash();
        let t0 = Instant::now();
        w.local_change(ticket, change).await?;
        let deadline = t0 + Duration::from_secs(30);
        while r
            .engine()
            .doc(ticket)
            .is_none_or(|d| d.get_change_by_hash(&hash).is_none())
        {
            tokio::select! {
                f = r.recv() => { r.handle(f).await?; }
                f = w.recv() => { w.handle(f).await?; }
                () = tokio::time::sleep_until(deadline.into()) => bail!("{name} live: sample {i} never arrived"),
            }
        }
        out.push(t0.elapsed());
        // A pause, answering both sockets, so the next sample starts from
        // quiet connections (and stays far inside the relay's rate limit).
        let pause = tokio::time::Instant::now() + pause;
        loop {
            tokio::select! {
                f = r.recv() => { r.handle(f).await?; }
                f = w.recv() => { w.handle(f).await?; }
                () = tokio::time::sleep_until(pause) => break,
            }
        }
        progress.show(&format!("{name} live: {}/{samples}", i + 1));
    }
    a.close().await;
    b.close().await;
    Ok(out)
}

/// A note by phone `who` on a copy of the live ticket.
fn note(doc: &mut Automerge, who: &Identity, i: usize) -> Result<Change> {
    let now = chrono::Utc::now();
    let user = who
        .name
        .rsplit_once('-')
        .map_or(who.name.as_str(), |(u, _)| u);
    let n = Note {
        id: EventId::random(),
        by: UserId::new(user)?,
        device: DeviceId::new(&who.name)?,
        at: now,
        text: format!("live sample {i}"),
    };
    let mut tx = doc.transaction();
    harness::server::schema::doc::append_note(&mut tx, &n)?;
    tx.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
    Ok(doc
        .get_last_local_change()
        .context("the note made no change")?
        .clone())
}

/// The same changes applied to in-memory documents, batched per document:
/// no IO, no validation, no network.
fn raw_limit(inputs: Vec<(Automerge, Vec<Change>)>) -> Result<Duration> {
    let mut done = Vec::with_capacity(inputs.len());
    let t0 = Instant::now();
    for (mut doc, changes) in inputs {
        doc.apply_changes(changes)?;
        done.push(doc);
    }
    let took = t0.elapsed();
    std::hint::black_box(&done);
    Ok(took)
}

/// Polls `/api/v1/health` until it answers; returns when it did.
async fn wait_answering(base: &str) -> Result<Instant> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(r) = client.get(format!("{base}/api/v1/health")).send().await
            && r.status().is_success()
        {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("the relay did not answer within two minutes");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn command_line() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "cargo build --release -p propsync-server -p propsync-tests --bins && \
         (cd tests/bench && npm ci) && target/release/propsync-bench {}",
        args.join(" ")
    )
    .trim_end()
    .to_owned()
}
