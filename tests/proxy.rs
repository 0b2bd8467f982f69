//! A hostile network between the phones and the relay. A TCP proxy in front
//! of the relay cuts connections at random byte offsets and delays and splits
//! traffic at random offsets; phones keep acting and syncing through it. A
//! bare peer duplicates and reorders whole sync messages (which a TCP proxy
//! cannot do without breaking WebSocket framing). Afterwards every replica
//! converges, no change is applied twice (one verdict per event, one ledger
//! row per change hash), and the sync log accounts for every change: per
//! session, changes received = accepted + conflict + rejected + hard-rejected.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use automerge::Automerge;
use automerge::sync::{ChunkList, Message as SyncMessage, MessageVersion, State};
use harness::client_core::{Backoff, Device, Report, SyncConfig};
use harness::server::schema::doc::{self, read_ticket};
use harness::server::schema::ticket::Urgency;
use harness::server::schema::wire::Message;
use harness::server::schema::{DeviceId, DocId, Event, EventData, EventId, Kind, UserId};
use harness::{Api, RawPeer, TestRelay, eventually};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy did, for the figures.
#[derive(Default)]
struct Faults {
    connections: AtomicU64,
    cuts: AtomicU64,
    delays: AtomicU64,
    splits: AtomicU64,
    bytes: AtomicU64,
}

/// A TCP proxy on `127.0.0.1:0` in front of `upstream`; faults only while `on`.
struct Proxy {
    url: String,
    on: Arc<AtomicBool>,
    faults: Arc<Faults>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let on = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Faults::default());
        let (on2, faults2) = (on.clone(), faults.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (on, faults) = (on2.clone(), faults2.clone());
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(upstream).await {
                        relay_connection(client, server, &on, &faults).await;
                    }
                });
            }
        });
        Ok(Self {
            url,
            on,
            faults,
            task,
        })
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Pumps both directions; a cut in either closes both at once.
async fn relay_connection(client: TcpStream, server: TcpStream, on: &AtomicBool, f: &Faults) {
    f.connections.fetch_add(1, Ordering::Relaxed);
    let faulty = on.load(Ordering::Relaxed);
    // Half the connections are cut somewhere in their first 8 KiB.
    let cut_at =
        (faulty && rand::random::<bool>()).then(|| usize::from(rand::random::<u16>()) % (8 * 1024));
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let sent = Arc::new(AtomicU64::new(0));
    let up = pump(cr, sw, faulty, cut_at, sent.clone(), f);
    let down = pump(sr, cw, faulty, cut_at, sent, f);
    tokio::pin!(up, down);
    tokio::select! {
        cut = &mut up => if !cut { down.await; },
        cut = &mut down => if !cut { up.await; },
    }
}

/// Copies `from` to `to` in pieces split at random offsets with random
/// delays; returns `true` when it cut the connection.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    faulty: bool,
    cut_at: Option<usize>,
    sent: Arc<AtomicU64>,
    f: &Faults,
) -> bool {
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                let _ = to.shutdown().await;
                return false;
            }
            Ok(n) => n,
        };
        let mut chunk = &buf[..n];
        while !chunk.is_empty() {
            let piece = if faulty && chunk.len() > 1 && rand::random::<u8>().is_multiple_of(4) {
                f.splits.fetch_add(1, Ordering::Relaxed);
                1 + usize::from(rand::random::<u16>()) % (chunk.len() - 1)
            } else {
                chunk.len()
            };
            let before = usize::try_from(
                sent.fetch_add(u64::try_from(piece).unwrap_or(u64::MAX), Ordering::Relaxed),
            )
            .unwrap_or(usize::MAX);
            if let Some(at) = cut_at
                && before + piece > at
            {
                // Fault injection: forward up to the cut, then drop the connection.
                let _ = to
                    .write_all(&chunk[..at.saturating_sub(before).min(piece)])
                    .await;
                f.cuts.fetch_add(1, Ordering::Relaxed);
                return true;
            }
            if faulty && rand::random::<u8>().is_multiple_of(8) {
                f.delays.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(u64::from(rand::random::<u8>() % 40)))
                    .await;
            }
            if to.write_all(&chunk[..piece]).await.is_err() {
                return false;
            }
            f.bytes
                .fetch_add(u64::try_from(piece).unwrap_or(0), Ordering::Relaxed);
            chunk = &chunk[piece..];
        }
    }
}

fn quick() -> SyncConfig {
    SyncConfig {
        max_attempts: 2,
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(200)),
        settle: Duration::from_millis(200),
        stall: Duration::from_secs(3),
        ..SyncConfig::default()
    }
}

const USERS: [&str; 5] = ["eng1", "eng2", "eng3", "security1", "cleaning1"];

fn rounds() -> usize {
    std::env::var("PROPSYNC_PROXY_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6)
}

/// Checks the sync log: one ledger row per change hash, and every session's
/// changes received = accepted + conflict + rejected + hard-rejected, with
/// the ledger's rows of that session matching. Returns (sessions, changes).
async fn accounting(manager: &Api) -> Result<(usize, u64)> {
    let log = eventually("every session to end", Duration::from_secs(20), || async {
        let (_, log) = manager.get("/api/v1/sync-log").await.ok()?;
        log["sessions"]
            .as_array()?
            .iter()
            .all(|s| s["ended_at"].is_string())
            .then_some(log)
    })
    .await?;
    let sessions = log["sessions"].as_array().context("sessions")?;
    let changes = log["changes"].as_array().context("changes")?;
    let hashes: BTreeSet<&str> = changes.iter().filter_map(|c| c["hash"].as_str()).collect();
    ensure!(
        hashes.len() == changes.len(),
        "a change is in the ledger twice"
    );
    let mut per_session: BTreeMap<i64, u64> = BTreeMap::new();
    for c in changes {
        if let Some(s) = c["session_id"].as_i64() {
            *per_session.entry(s).or_default() += 1;
        }
    }
    let n = |s: &Value, k: &str| s[k].as_u64().unwrap_or(0);
    let mut received = 0;
    for s in sessions {
        let judged = n(s, "accepted") + n(s, "conflict") + n(s, "rejected") + n(s, "hard_rejected");
        ensure!(
            n(s, "changes_received") == judged,
            "session {} counts {} changes but judged {judged}: {s}",
            s["id"],
            n(s, "changes_received")
        );
        let id = s["id"].as_i64().context("id")?;
        ensure!(
            per_session.get(&id).copied().unwrap_or(0) == n(s, "changes_received"),
            "session {id}: ledger rows {:?} vs counted {}",
            per_session.get(&id),
            n(s, "changes_received")
        );
        received += n(s, "changes_received");
    }
    Ok((sessions.len(), received))
}

/// Each event on the relay appears once and has exactly one verdict.
fn once_each(t: &Value) -> Result<()> {
    let events = t["events"].as_array().context("events")?;
    let ids: BTreeSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    ensure!(ids.len() == events.len(), "an event applied twice: {t}");
    ensure!(
        events.iter().all(|e| e["verdict"]["outcome"].is_string()),
        "an event without its verdict: {t}"
    );
    let seqs: BTreeSet<u64> = events
        .iter()
        .filter_map(|e| e["verdict"]["seq"].as_u64())
        .collect();
    ensure!(seqs.len() == events.len(), "two verdicts share a seq: {t}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cuts_and_delays_at_random_offsets_lose_nothing_and_apply_nothing_twice() -> Result<()> {
    let relay = TestRelay::start().await?;
    let addr: SocketAddr = relay.url.trim_start_matches("http://").parse()?;
    let proxy = Proxy::start(addr).await?;
    let mut devices = Vec::new();
    for user in USERS {
        let d = Device::open(&relay.dir().join(format!("{user}-proxy.db")))?;
        d.enroll(&proxy.url, &relay.creds[user].device_token)
            .await?;
        devices.push(Arc::new(d));
    }
    proxy.on.store(true, Ordering::Relaxed);
    let rounds = rounds();
    let mut tasks = Vec::new();
    for (n, d) in devices.iter().enumerate() {
        let d = d.clone();
        tasks.push(tokio::spawn(async move {
            let mut failed = 0u64;
            for round in 0..rounds {
                d.report(&Report {
                    kind: if n % 2 == 0 { Kind::Repair } else { Kind::Need },
                    household: None,
                    location: format!("B{} floor {round}", n % 3 + 1),
                    title: format!("Found on patrol {n}-{round}"),
                    description: "x".repeat(usize::from(rand::random::<u16>() % 4_000)),
                    category: Some("general".into()),
                    urgency: Urgency::Normal,
                })?;
                // A cut connection fails the sync; the next one resumes.
                if d.sync_with(&quick(), &mut |_, _| {}).await.is_err() {
                    failed += 1;
                }
            }
            anyhow::Ok(failed)
        }));
    }
    let mut failed = 0;
    for t in tasks {
        failed += t.await??;
    }
    proxy.on.store(false, Ordering::Relaxed);
    // Every phone flushes and converges with the relay. (A creation cut
    // half-way is forgotten when its connection ends, so the retry on the
    // next connection starts afresh.)
    let healing = std::time::Instant::now();
    for d in &devices {
        let flushed = eventually("the phone to flush", Duration::from_secs(60), || {
            let d = d.clone();
            async move {
                d.sync_with(&quick(), &mut |_, _| {}).await.ok()?;
                d.pending().ok().filter(Vec::is_empty).map(|_| ())
            }
        })
        .await;
        if let Err(e) = flushed {
            let last = d.sync_with(&quick(), &mut |_, _| {}).await;
            anyhow::bail!(
                "{e}: {} still pending {:?}; last sync {last:?}",
                d.identity()?.principal.device,
                d.pending()?
            );
        }
    }
    let healed = healing.elapsed();
    let manager = relay.api("manager").await?;
    let mut tickets = 0;
    for d in &devices {
        for row in d.inbox()? {
            if row.kind.as_deref() != Some("ticket") {
                continue;
            }
            let t = manager.ticket(&row.id.to_string()).await?;
            once_each(&t)?;
            let relay_heads: BTreeSet<String> = t["heads"]
                .as_array()
                .context("heads")?
                .iter()
                .filter_map(|h| h.as_str().map(str::to_owned))
                .collect();
            let (doc, _) = d.load(row.id)?;
            let mine: BTreeSet<String> = doc.get_heads().iter().map(ToString::to_string).collect();
            ensure!(mine == relay_heads, "{} has not converged", row.id);
            tickets += 1;
        }
    }
    ensure!(
        tickets >= USERS.len() * rounds,
        "{tickets} tickets converged"
    );
    let (sessions, changes) = accounting(&manager).await?;
    let f = &proxy.faults;
    eprintln!(
        "proxy: {} connections, {} cuts, {} delays, {} splits, {} bytes; {failed} failed syncs; \
         {sessions} sessions, {changes} changes accounted; {tickets} tickets converged \
         ({healed:?} to flush after the faults); lost 0",
        f.connections.load(Ordering::Relaxed),
        f.cuts.load(Ordering::Relaxed),
        f.delays.load(Ordering::Relaxed),
        f.splits.load(Ordering::Relaxed),
        f.bytes.load(Ordering::Relaxed),
    );
    ensure!(
        f.cuts.load(Ordering::Relaxed) > 0,
        "the proxy cut something"
    );
    Ok(())
}

fn event(action: &str) -> Event {
    Event {
        id: EventId::random(),
        action: action.into(),
        by: UserId::new("eng1").unwrap_or_else(|_| unreachable!()),
        device: DeviceId::new("eng1-phone").unwrap_or_else(|_| unreachable!()),
        at: chrono::Utc::now(),
        data: EventData::default(),
    }
}

fn sync_message(changes: Vec<Vec<u8>>, heads: Vec<automerge::ChangeHash>) -> Vec<u8> {
    SyncMessage {
        heads,
        need: vec![],
        have: vec![],
        changes: ChunkList::from(changes),
        flags: None,
        version: MessageVersion::V1,
    }
    .encode()
}

/// A repair assigned to eng1, fetched by a bare peer, and three steps taken
/// offline on it (accept, start, hold), each its own change.
struct Offline {
    relay: TestRelay,
    id: String,
    doc_id: DocId,
    peer: RawPeer,
    doc: Automerge,
    state: State,
    steps: [Event; 3],
    changes: Vec<automerge::Change>,
}

impl Offline {
    async fn new() -> Result<Self> {
        Self::new_with(|_| {}).await
    }

    async fn new_with(tune: impl FnOnce(&mut harness::server::Config)) -> Result<Self> {
        let harness::FetchedRepair {
            relay,
            id,
            doc_id,
            peer,
            mut doc,
            state,
        } = harness::FetchedRepair::on(
            TestRelay::start_with(tune).await?,
            "Window stuck",
            "B1-204",
        )
        .await?;
        let mut hold = event("hold");
        hold.data.reason = Some("waiting for a part".into());
        let steps = [event("accept"), event("start"), hold];
        let mut changes = Vec::new();
        for e in &steps {
            let mut tx = doc.transaction();
            doc::append_event(&mut tx, e)?;
            tx.commit();
            changes.push(doc.get_last_local_change().context("a change")?.clone());
        }
        Ok(Self {
            relay,
            id,
            doc_id,
            peer,
            doc,
            state,
            steps,
            changes,
        })
    }

    /// Sends one sync message carrying `changes` (by index), with the peer's heads.
    async fn send(&mut self, changes: &[usize]) -> Result<()> {
        let data = sync_message(
            changes
                .iter()
                .map(|&i| self.changes[i].raw_bytes().to_vec())
                .collect(),
            self.doc.get_heads(),
        );
        self.peer
            .send(&Message::Sync {
                sender_id: self.peer.peer_id.clone(),
                target_id: self.peer.relay_id.clone(),
                document_id: self.doc_id.into(),
                data,
            })
            .await
    }

    /// Syncs normally until the three steps' verdicts are back; then checks
    /// the relay holds each step once, ON_HOLD, with one ledger row per change.
    async fn judged_once_each(&mut self) -> Result<()> {
        let ids: Vec<EventId> = self.steps.iter().map(|e| e.id.clone()).collect();
        let judged = self
            .peer
            .sync_until(
                self.doc_id,
                &mut self.doc,
                &mut self.state,
                false,
                Duration::from_secs(15),
                |d| {
                    read_ticket(d, None)
                        .is_ok_and(|t| ids.iter().all(|i| t.server.verdicts.contains_key(i)))
                },
            )
            .await?;
        ensure!(judged, "the verdicts come back: {:?}", self.peer.errors());
        let manager = self.relay.api("manager").await?;
        let t = manager.ticket(&self.id).await?;
        once_each(&t)?;
        ensure!(t["events"].as_array().map(Vec::len) == Some(5), "{t}");
        ensure!(t["status"] == "ON_HOLD", "{}", t["status"]);
        let (_, log) = manager
            .get(&format!("/api/v1/sync-log?document={}", self.id))
            .await?;
        let from_eng1: Vec<&Value> = log["changes"]
            .as_array()
            .context("changes")?
            .iter()
            .filter(|c| c["username"] == "eng1")
            .collect();
        ensure!(
            from_eng1.len() == 3,
            "one ledger row per change: {from_eng1:?}"
        );
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicated_and_reordered_sync_messages_apply_each_change_once() -> Result<()> {
    let mut o = Offline::new().await?;
    // Sent last first, each three times, then all again in one message.
    let mut order: Vec<usize> = vec![2, 1, 2, 0, 1, 0, 2, 0, 1];
    order.extend([0, 1, 2]);
    let sends = order.len() + 1;
    for i in order {
        o.send(&[i]).await?;
    }
    o.send(&[0, 1, 2]).await?;
    o.judged_once_each().await?;
    let manager = o.relay.api("manager").await?;
    drop(o.peer);
    accounting(&manager).await?;
    eprintln!(
        "duplicate/reorder: {sends} sync messages carrying 3 changes 4 times each; 3 applied, 3 verdicts; lost 0"
    );
    Ok(())
}

/// The relay's next sync reply for the document, decoded.
async fn next_reply(o: &mut Offline) -> Result<SyncMessage> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(Message::Sync {
            document_id, data, ..
        }) = o.peer.recv(Duration::from_secs(1)).await
            && DocId::from(&document_id) == o.doc_id
        {
            return Ok(SyncMessage::decode(&data)?);
        }
    }
    anyhow::bail!("no sync reply from the relay: {:?}", o.peer.errors())
}

/// What a bloom-filter false positive does in the wild: the phone believes
/// the relay has a change it lacks and sends only what depends on it. The
/// relay keeps the early change, asks for the missing one by hash, and
/// applies both when it comes; nothing is sent twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_ahead_of_its_dependency_waits_for_it() -> Result<()> {
    let mut o = Offline::new().await?;
    let [accept, start, _] = [0, 1, 2].map(|i| o.changes[i].hash());
    o.send(&[2]).await?;
    let reply = next_reply(&mut o).await?;
    ensure!(
        reply.need.contains(&start),
        "the relay asks for `start`, which `hold` depends on: need {:?}",
        reply.need
    );
    o.send(&[1]).await?;
    let reply = next_reply(&mut o).await?;
    ensure!(
        reply.need.contains(&accept),
        "then for `accept`: need {:?}",
        reply.need
    );
    o.send(&[0]).await?;
    // No more sending: the relay applies all three from what it kept.
    let desk = o.relay.api("frontdesk").await?;
    let id = o.id.clone();
    eventually("all three applied", Duration::from_secs(10), || async {
        let t = desk.ticket(&id).await.ok()?;
        (t["status"] == "ON_HOLD").then_some(())
    })
    .await?;
    o.judged_once_each().await
}

/// A document nobody uses leaves the relay's memory even while a phone that
/// synced it stays connected; a change made later (the desk, over REST)
/// still reaches that phone at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_document_still_reaches_its_connected_peers_live() -> Result<()> {
    let mut o = Offline::new_with(|c| c.doc_idle = Duration::from_millis(200)).await?;
    let desk = o.relay.api("frontdesk").await?;
    eventually(
        "the ticket to leave memory",
        Duration::from_secs(10),
        || async {
            let (_, h) = desk.get("/api/v1/health").await.ok()?;
            (h["documents_loaded"].as_u64() == Some(0)).then_some(())
        },
    )
    .await?;
    // The resident cancels by phone: the relay loads the ticket again and
    // must tell the connected phone without being asked.
    let outcome = desk
        .act(&o.id, "cancel", json!({"reason": "the resident fixed it"}))
        .await?;
    ensure!(outcome == "accepted", "{outcome}");
    let unasked = next_reply(&mut o).await?;
    ensure!(
        unasked
            .heads
            .iter()
            .any(|h| automerge::ReadDoc::get_change_by_hash(&o.doc, h).is_none()),
        "the relay announces heads the phone does not have"
    );
    let heard = o
        .peer
        .sync_until(
            o.doc_id,
            &mut o.doc,
            &mut o.state,
            false,
            Duration::from_secs(10),
            |d| read_ticket(d, None).is_ok_and(|t| t.events.iter().any(|e| e.action == "cancel")),
        )
        .await?;
    ensure!(heard, "the phone gets the desk's cancellation");
    Ok(())
}
