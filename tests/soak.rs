//! The soak: hundreds of phones acting at random against the relay binary
//! for a bounded time, with the front desk working the other end of the
//! lifecycle over REST. Afterwards: no error anywhere, the relay's RSS flat
//! after warm-up, every phone converged, and every change accounted for in
//! the relay's full sync-log export.
//!
//! `PROPSYNC_SOAK_SECS` (30 by default; 600 for the long run) and
//! `PROPSYNC_SOAK_DEVICES` (200 by default) set the size.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, ensure};
use futures_util::StreamExt;
use harness::client_core::{Device, Report};
use harness::server::schema::ticket::{Material, Urgency};
use harness::server::schema::{
    Action, Department, DeviceId, EventData, Fen, Kind, Role, Status, UserId,
};
use harness::{Api, RelayProcess, eventually, server};
use serde_json::{Value, json};

/// Open tickets each engineer starts with; the desk gives a new one for each it takes back.
const PER_ENGINEER: usize = 2;
/// One phone in this many is a patroller (security or cleaning) reporting finds.
const PATROLLER_EVERY: usize = 5;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A phone of the soak and what it did.
struct Phone {
    device: Device,
    user: UserId,
    engineer: bool,
    /// Changes made on the phone (actions, notes, reports): each must reach the ledger once.
    changes: AtomicU64,
    /// The longest sync during the soak, in ms.
    slowest_sync_ms: AtomicU64,
}

/// The relay's resident set size, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Makes the demo property plus the soak's users and phones with the relay's
/// library, before the relay process starts on `data`. Returns the desk's and
/// the manager's passwords and each phone's (user, engineer?, token).
async fn seed(data: &Path, phones: usize) -> Result<(String, String, Vec<(UserId, bool, String)>)> {
    let relay = server::open(server::Config::new(data.to_owned(), "127.0.0.1:0".parse()?)).await?;
    let creds = server::demo::seed(&relay)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .context("the data directory was not fresh")?;
    let password =
        |u: &str| -> Result<String> { Ok(creds.get(u).context("a demo user")?.password.clone()) };
    let mut made = futures_util::stream::iter((0..phones).map(|i| {
        let relay = relay.clone();
        async move {
            let engineer = i % PATROLLER_EVERY != 0;
            let (name, role, department) = if engineer {
                (format!("soak-eng-{i}"), Role::Engineer, None)
            } else if i % (2 * PATROLLER_EVERY) == 0 {
                (
                    format!("soak-sec-{i}"),
                    Role::DepartmentStaff,
                    Some(Department::Security),
                )
            } else {
                (
                    format!("soak-cln-{i}"),
                    Role::DepartmentStaff,
                    Some(Department::Cleaning),
                )
            };
            let user = UserId::new(&name)?;
            let secret = format!("{:032x}", rand::random::<u128>());
            server::admin::create_user(&relay, &user, &name, &secret, role, department)
                .await
                .map_err(|e| anyhow!("creating {name}: {e}"))?;
            let token = server::admin::enroll_device(
                &relay,
                &user,
                &DeviceId::new(format!("{name}-phone"))?,
                "soak",
            )
            .await
            .map_err(|e| anyhow!("enrolling {name}: {e}"))?;
            anyhow::Ok((user, engineer, token))
        }
    }))
    .buffered(8);
    let mut out = Vec::with_capacity(phones);
    while let Some(r) = made.next().await {
        out.push(r?);
    }
    Ok((password("frontdesk")?, password("manager")?, out))
}

/// Records a repair for `engineer` and assigns it, as the front desk.
async fn give_work(desk: &Api, engineer: &UserId, n: u64) -> Result<()> {
    let (status, t) = desk
        .post(
            "/api/v1/tickets",
            &json!({"kind": "repair", "title": format!("Soak order {n}"),
                    "location": format!("B{}-{}", n % 5 + 1, n % 300 + 101),
                    "category": "plumbing", "channel": "phone"}),
        )
        .await?;
    ensure!(status == 201, "recording a ticket: HTTP {status}: {t}");
    let id = t["id"].as_str().context("id")?;
    let outcome = desk
        .act(id, "assign", json!({"assignee": engineer}))
        .await?;
    ensure!(outcome == "accepted", "assigning {id}: {outcome}");
    Ok(())
}

/// One step of an engineer's work on one of their tickets, chosen at random
/// among what the ticket's state allows; `None` when nothing is to be done.
fn engineer_step(phone: &Phone) -> Result<Option<&'static str>> {
    let mine: Vec<_> = phone
        .device
        .inbox()?
        .into_iter()
        .filter(|r| r.kind.as_deref() == Some("ticket") && !r.read_only)
        .collect();
    let mut open = Vec::new();
    for row in &mine {
        let id = row.id.to_string();
        let view = phone.device.show(&id)?;
        let status = view.with_pending.status;
        if view.with_pending.assignee.as_ref() == Some(&phone.user)
            && matches!(
                status,
                Status::Assigned | Status::Accepted | Status::InProgress | Status::OnHold
            )
        {
            open.push((id, status));
        }
    }
    let Some((id, status)) = open.get(rand::random_range(0..open.len().max(1))) else {
        // Nothing open: a remark on one of the tickets the phone holds.
        return note_on_any(phone);
    };
    let roll = rand::random::<u8>() % 100;
    let d = &phone.device;
    let what = match status {
        Status::Assigned => {
            d.act(id, Action::Accept, EventData::default())?;
            "accept"
        }
        Status::Accepted => {
            d.act(id, Action::Start, EventData::default())?;
            "start"
        }
        Status::InProgress if roll < 40 => {
            d.note(id, &format!("checked the riser, reading {roll}"))?;
            "note"
        }
        Status::InProgress if roll < 55 => {
            let reason = Some("waiting for a part".to_owned());
            d.act(
                id,
                Action::Hold,
                EventData {
                    reason,
                    ..EventData::default()
                },
            )?;
            "hold"
        }
        Status::InProgress => {
            d.act(
                id,
                Action::Complete,
                EventData {
                    result: Some("replaced the washer".into()),
                    labour_min: Some(i64::from(roll) + 10),
                    materials: Some(vec![Material {
                        name: "washer".into(),
                        qty: 2,
                        unit_fen: Fen::new(150),
                    }]),
                    ..EventData::default()
                },
            )?;
            "complete"
        }
        _ => {
            d.act(id, Action::Resume, EventData::default())?;
            "resume"
        }
    };
    Ok(Some(what))
}

/// A note on a random ticket the phone may write to; `None` when it holds none.
fn note_on_any(phone: &Phone) -> Result<Option<&'static str>> {
    let writable: Vec<_> = phone
        .device
        .inbox()?
        .into_iter()
        .filter(|r| r.kind.as_deref() == Some("ticket") && !r.read_only)
        .collect();
    let Some(row) = writable.get(rand::random_range(0..writable.len().max(1))) else {
        return Ok(None);
    };
    phone
        .device
        .note(&row.id.to_string(), "passed by again; all in order")?;
    Ok(Some("note"))
}

/// A phone's loop until `until`: act (or report, for a patroller), then
/// sync more often than not, at a human-ish pace. Returns the errors seen.
async fn phone_loop(phone: Arc<Phone>, warm: Instant, until: Instant, n: usize) -> Vec<String> {
    let mut errors = Vec::new();
    let mut round = 0u64;
    while Instant::now() < until {
        // Pacing: a person between two taps, not a wait for state.
        tokio::time::sleep(Duration::from_millis(300 + rand::random::<u64>() % 1_700)).await;
        round += 1;
        let acted = if phone.engineer {
            engineer_step(&phone).map(|s| s.is_some())
        } else if Instant::now() >= warm {
            note_on_any(&phone).map(|s| s.is_some())
        } else if round.is_multiple_of(4) {
            phone
                .device
                .report(&Report {
                    kind: Kind::Repair,
                    household: None,
                    location: format!("B{} stair {round}", n % 5 + 1),
                    title: format!("Patrol find {n}-{round}"),
                    description: "loose handrail".into(),
                    category: Some("general".into()),
                    urgency: Urgency::Normal,
                })
                .map(|_| true)
                .map_err(Into::into)
        } else {
            Ok(false)
        };
        match acted {
            Ok(true) => {
                phone.changes.fetch_add(1, Ordering::Relaxed);
            }
            Ok(false) => {}
            Err(e) => errors.push(format!("{}: acting: {e:#}", phone.user)),
        }
        if rand::random::<u8>() % 10 < 6 {
            let t = Instant::now();
            match phone.device.sync_once().await {
                Err(e) => errors.push(format!("{}: syncing: {e:#}", phone.user)),
                // No faults here: a connection that had to be retried is an error too.
                Ok(s) if !s.problems.is_empty() => errors.push(format!(
                    "{}: syncing took {:?} and a retry: {:?}",
                    phone.user,
                    t.elapsed(),
                    s.problems
                )),
                Ok(_) => {}
            }
            let ms = u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX);
            phone.slowest_sync_ms.fetch_max(ms, Ordering::Relaxed);
        }
    }
    errors
}

/// The front desk until `until`: assigns what patrollers found, takes
/// completed orders back, calls the resident, closes, and (until `warm`)
/// gives the engineer new work for each order taken back. Returns the errors
/// seen and how many orders it closed.
async fn desk_loop(
    desk: Api,
    engineers: Vec<UserId>,
    warm: Instant,
    until: Instant,
) -> (Vec<String>, u64) {
    let mut errors = Vec::new();
    let mut closed = 0;
    let mut made = 0u64;
    while Instant::now() < until {
        // Pacing: the desk looks at its queues twice a second.
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (status, action, data) in [
            ("ISSUED", "assign", Value::Null),
            ("COMPLETED", "return", json!({"copy_received": true})),
            (
                "RETURNED",
                "return_visit",
                json!({"contact_result": "reached", "satisfaction": "satisfied"}),
            ),
            ("RETURN_VISITED", "close", json!({})),
        ] {
            let list = desk
                .get(&format!(
                    "/api/v1/tickets?kind=repair&status={status}&limit=40"
                ))
                .await;
            let rows = match list {
                Ok((200, v)) => v["tickets"].as_array().cloned().unwrap_or_default(),
                Ok((code, v)) => {
                    errors.push(format!("desk: listing {status}: HTTP {code}: {v}"));
                    continue;
                }
                Err(e) => {
                    errors.push(format!("desk: listing {status}: {e:#}"));
                    continue;
                }
            };
            let mut work = Vec::new();
            for t in &rows {
                if let Some(id) = t["id"].as_str() {
                    work.push((id.to_owned(), t["assignee"].as_str().map(str::to_owned)));
                }
            }
            let results: Vec<_> =
                futures_util::stream::iter(work.into_iter().map(|(id, engineer)| {
                    let desk = desk.clone();
                    let data = if action == "assign" {
                        let to = &engineers[rand::random_range(0..engineers.len())];
                        json!({"assignee": to})
                    } else {
                        data.clone()
                    };
                    async move {
                        let outcome = desk.act(&id, action, data).await?;
                        ensure!(outcome == "accepted", "{action} {id}: {outcome}");
                        anyhow::Ok(engineer)
                    }
                }))
                .buffer_unordered(4)
                .collect()
                .await;
            for r in results {
                match r {
                    Ok(engineer) if action == "return" && Instant::now() < warm => {
                        made += 1;
                        let given = match engineer.map(UserId::new) {
                            Some(Ok(e)) => give_work(&desk, &e, made).await,
                            _ => Err(anyhow!("a completed order without its engineer")),
                        };
                        if let Err(e) = given {
                            errors.push(format!("desk: new work: {e:#}"));
                        }
                    }
                    Ok(_) if action == "close" => closed += 1,
                    Ok(_) => {}
                    Err(e) => errors.push(format!("desk: {e:#}")),
                }
            }
        }
    }
    (errors, closed)
}

/// Reads the relay's full sync-log export (ledger and sessions) and checks
/// that every change is accounted for: one ledger row per change hash, every
/// one accepted; each session's changes received = accepted + conflict +
/// rejected + hard-rejected = its ledger rows. Returns the ledger rows per
/// user (phone changes arrive in sessions; the desk's REST actions do not)
/// and the number of sessions.
fn accounting(bin: &str, data: &Path) -> Result<(BTreeMap<String, u64>, usize)> {
    let ledger_csv = data.join("soak-ledger.csv");
    let sessions_csv = data.join("soak-sessions.csv");
    RelayProcess::admin(
        bin,
        data,
        &[
            "export-sync-log",
            "--out",
            &ledger_csv.to_string_lossy(),
            "--sessions",
            &sessions_csv.to_string_lossy(),
        ],
    )?;
    let ledger = std::fs::read_to_string(&ledger_csv)?;
    let mut hashes = BTreeSet::new();
    let mut per_session: BTreeMap<String, u64> = BTreeMap::new();
    let mut per_user: BTreeMap<String, u64> = BTreeMap::new();
    for line in ledger.lines().skip(1).filter(|l| !l.is_empty()) {
        // hash,doc_id,actor,username,device_id,session_id,bytes,authored_at,received_at,outcome,…
        let cols: Vec<&str> = line.splitn(11, ',').collect();
        ensure!(cols.len() == 11, "a short ledger row: {line}");
        ensure!(
            hashes.insert(cols[0].to_owned()),
            "a change in the ledger twice: {line}"
        );
        ensure!(cols[9] == "accepted", "a change not accepted: {line}");
        *per_user.entry(cols[3].to_owned()).or_default() += 1;
        if !cols[5].is_empty() {
            *per_session.entry(cols[5].to_owned()).or_default() += 1;
        }
    }
    let sessions = std::fs::read_to_string(&sessions_csv)?;
    let mut count = 0;
    for line in sessions.lines().skip(1).filter(|l| !l.is_empty()) {
        let id = line.split(',').next().unwrap_or_default();
        // The last ten columns are counters: bytes in/out, messages in/out,
        // documents, changes received, accepted, conflict, rejected, hard-rejected.
        let n: Vec<u64> = line
            .rsplitn(11, ',')
            .take(10)
            .map(str::parse)
            .collect::<Result<_, _>>()
            .with_context(|| format!("session counters: {line}"))?;
        let (hard, rejected, conflict, accepted, received) = (n[0], n[1], n[2], n[3], n[4]);
        ensure!(
            received == accepted + conflict + rejected + hard,
            "session {id} received {received} changes but judged {}",
            accepted + conflict + rejected + hard
        );
        ensure!(
            conflict + rejected + hard == 0,
            "session {id} had refusals: {line}"
        );
        let rows = per_session.get(id).copied().unwrap_or(0);
        ensure!(
            rows == received,
            "session {id}: {rows} ledger rows, {received} counted"
        );
        count += 1;
    }
    ensure!(
        per_session.values().sum::<u64>() <= hashes.len() as u64,
        "ledger rows without a session row"
    );
    Ok((per_user, count))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_phones_acting_at_random_lose_nothing_and_stay_flat() -> Result<()> {
    let secs = env_or("PROPSYNC_SOAK_SECS", 30);
    let count = usize::try_from(env_or("PROPSYNC_SOAK_DEVICES", 200))?;
    let bin = env!("CARGO_BIN_EXE_propsync-test-relay");
    let dir = tempfile::Builder::new()
        .prefix("propsync-soak-")
        .tempdir()?;
    let data = dir.path().join("relay");
    let t0 = Instant::now();
    let (desk_password, manager_password, seeded) = seed(&data, count).await?;
    eprintln!("soak: seeded {count} users in {:?}", t0.elapsed());
    // Documents leave the relay's memory 5 s after their last use (60 s by
    // default), so a 30 s soak reaches the steady state a long run has:
    // closed orders unloaded, open ones in memory.
    // 200 phones and the desk from one address: the rate limits are off, as
    // in the bench (the edge's limits have their own tests in edge.rs).
    let relay = RelayProcess::start_with(
        bin,
        &data,
        "127.0.0.1:0",
        &["--doc-idle-secs", "5", "--no-limits"],
    )?;
    let desk = Api::login(&relay.url, "frontdesk", &desk_password).await?;
    let engineers: Vec<UserId> = seeded
        .iter()
        .filter(|(_, e, _)| *e)
        .map(|(u, _, _)| u.clone())
        .collect();
    let mut work = futures_util::stream::iter(
        engineers
            .iter()
            .flat_map(|e| std::iter::repeat_n(e, PER_ENGINEER))
            .enumerate()
            .map(|(n, e)| give_work(&desk, e, 1_000_000 + n as u64)),
    )
    .buffer_unordered(16);
    while let Some(r) = work.next().await {
        r?;
    }
    drop(work);
    eprintln!("soak: work given at {:?}", t0.elapsed());
    let mut phones = Vec::new();
    for (user, engineer, token) in seeded {
        let device = Device::open(&dir.path().join(format!("{user}.db")))?;
        device.enroll(&relay.url, &token).await?;
        phones.push(Arc::new(Phone {
            device,
            user,
            engineer,
            changes: AtomicU64::new(0),
            slowest_sync_ms: AtomicU64::new(0),
        }));
    }
    let mut first = futures_util::stream::iter(phones.iter().map(|p| p.device.sync_once()))
        .buffer_unordered(16);
    while let Some(r) = first.next().await {
        r.context("a phone's first sync")?;
    }
    drop(first);
    eprintln!("soak: phones synced at {:?}", t0.elapsed());

    // The soak, with the relay's RSS sampled every 250 ms.
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let pid = relay.pid();
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < until {
            if let Some(kib) = rss_kib(pid) {
                samples.push((started.elapsed(), kib));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        samples
    });
    // Warm-up: the first third. New tickets (the desk's new work, the
    // patrollers' finds) come only then: engineers keep tickets they were
    // assigned (DESIGN.md §3) and sync them all, so new tickets would grow
    // the working set for as long as the soak runs. After it the set of
    // documents is fixed and the phones keep acting on it (steps, holds,
    // completions, notes; the desk's returns, visits and closes), so a
    // growing RSS can only be a leak.
    let warm = started + Duration::from_secs(secs) / 3;
    let desk_task = tokio::spawn(desk_loop(desk.clone(), engineers.clone(), warm, until));
    let tasks: Vec<_> = phones
        .iter()
        .enumerate()
        .map(|(n, p)| tokio::spawn(phone_loop(Arc::clone(p), warm, until, n)))
        .collect();
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await?);
    }
    let (desk_errors, closed) = desk_task.await?;
    errors.extend(desk_errors);
    let samples = sampler.await?;
    let slowest = phones
        .iter()
        .map(|p| p.slowest_sync_ms.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    ensure!(
        errors.is_empty(),
        "{} errors: {:#?}",
        errors.len(),
        &errors[..errors.len().min(20)]
    );

    // Every phone flushes and converges with the relay.
    eprintln!("soak: soak done at {:?}", t0.elapsed());
    let manager = Api::login(&relay.url, "manager", &manager_password).await?;
    let mut flushes = futures_util::stream::iter(phones.iter().map(|p| {
        let p = Arc::clone(p);
        async move {
            eventually("the phone to flush", Duration::from_secs(60), || {
                let p = Arc::clone(&p);
                async move {
                    p.device.sync_once().await.ok()?;
                    p.device.pending().ok().filter(Vec::is_empty).map(|_| ())
                }
            })
            .await
            .with_context(|| format!("{} still pending", p.user))
        }
    }))
    .buffer_unordered(16);
    while let Some(flushed) = flushes.next().await {
        flushed?;
    }
    // Every phone has flushed, so the tickets no longer change: one more
    // sync each, and every phone holds what the relay holds. (Compared while
    // others were still flushing, a phone could be behind a shared ticket
    // another phone changed after its last sync.)
    let mut checks = futures_util::stream::iter(phones.iter().map(|p| {
        let (p, manager) = (Arc::clone(p), manager.clone());
        async move {
            p.device
                .sync_once()
                .await
                .with_context(|| format!("{}'s last sync", p.user))?;
            ensure!(
                p.device.quarantine()?.is_empty(),
                "{} quarantined a change",
                p.user
            );
            let mut converged = 0;
            for row in p.device.inbox()? {
                if row.kind.as_deref() != Some("ticket") {
                    continue;
                }
                let t = manager.ticket(&row.id.to_string()).await?;
                let theirs: BTreeSet<String> = t["heads"]
                    .as_array()
                    .context("heads")?
                    .iter()
                    .filter_map(|h| h.as_str().map(str::to_owned))
                    .collect();
                let (doc, _) = p.device.load(row.id)?;
                let mine: BTreeSet<String> =
                    doc.get_heads().iter().map(ToString::to_string).collect();
                ensure!(mine == theirs, "{} has not converged on {}", p.user, row.id);
                converged += 1;
            }
            anyhow::Ok(converged)
        }
    }))
    .buffer_unordered(16);
    let mut converged = 0;
    while let Some(n) = checks.next().await {
        converged += n?;
    }
    drop(checks);

    // Every change made on a phone is in the ledger once, accepted.
    eprintln!("soak: converged at {:?}", t0.elapsed());
    let (per_user, sessions) = accounting(bin, &data)?;
    let mut made = 0;
    for p in &phones {
        let n = p.changes.load(Ordering::Relaxed);
        let logged = per_user.get(p.user.as_str()).copied().unwrap_or(0);
        ensure!(
            logged == n,
            "{} made {n} changes, the ledger holds {logged}",
            p.user
        );
        made += n;
    }

    // RSS flat after warm-up: in the first third tickets are still being
    // made and loaded; after that it may not keep climbing.
    let third = Duration::from_secs(secs) / 3;
    let phase = |from: Duration, to: Duration| {
        samples
            .iter()
            .filter(|(t, _)| *t >= from && *t < to)
            .map(|(_, k)| *k)
            .max()
            .unwrap_or(0)
    };
    let (first, middle, last) = (
        phase(Duration::ZERO, third),
        phase(third, 2 * third),
        phase(2 * third, Duration::MAX),
    );
    eprintln!(
        "soak: {count} phones for {secs} s: {made} phone changes in {sessions} sessions, all \
         accepted and accounted; {closed} orders closed by the desk; {converged} tickets \
         converged; slowest sync {slowest} ms; relay RSS max {} / {} / {} MiB in each third \
         ({} samples)",
        first / 1024,
        middle / 1024,
        last / 1024,
        samples.len()
    );
    ensure!(made > 0 && closed > 0, "the soak did no work");
    // Flat: the last third may not exceed the middle third by more than 10 %
    // (allocator noise, the SQLite page cache); a leak per sync, per
    // connection or per change grows with every third.
    ensure!(
        last <= middle + middle / 10,
        "the relay's RSS kept growing: {middle} KiB in the middle third, {last} KiB in the last"
    );
    Ok(())
}
