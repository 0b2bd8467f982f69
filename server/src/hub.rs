//! The document hub: every document in use, the peers syncing it, and the
//! path every incoming change takes (DESIGN.md §4–§7):
//!
//! 1. the sync message's changes are unpacked and ordered by their dependencies;
//! 2. hard rules ([`crate::validate`]) are checked on each change's own ops;
//! 3. the survivors are merged into a fork, which is read back to check every
//!    new event's author and shape;
//! 4. each new event is judged against what its author saw (the fork at the
//!    change's heads) and the official state, in order, and gets the next `seq`;
//! 5. one write job stores the changes, the relay's verdict change, the serial
//!    number if one is due, the ledgers, the register row and the access rows
//!    in one transaction (group-committed with other documents' jobs);
//! 6. only then does the fork become the document, the sender get its reply
//!    and every other peer of the document its update.
//!
//! **Architecture Invariant:** work on one document is serialised by that
//! document's lock; work on different documents runs in parallel. No reply
//! leaves before the write that holds its changes has committed.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use automerge::sync::{Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc, transaction::CommitOptions};
use chrono::{DateTime, Utc};
use schema::doc::{self, read_ticket};
use schema::inbox::{Access, DocKind, InboxEntry};
use schema::wire::{self, PeerId};
use schema::{
    Action, DeviceId, DocId, Outcome, Policy, Principal, Projection, Role, Serial, Ticket, UserId,
    VerdictRecord,
};
use tokio::sync::{broadcast, mpsc};

use crate::access::{self, DocClass, TicketMeta};
use crate::batch::{self, Incoming, Ingest, Summary, worst};
use crate::store::StoreError;
use crate::store::records::{self, ChangeRow, ReviewRow, TicketRow, VerdictRow};
use crate::store::storage::{COMPACT_AFTER, DocBatch, Seal, Sealed, SecurityEntry, Storage};
use crate::validate::{self, Rejection};

/// The relay's clock; passed in so tests can move time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A connection's id within this process.
pub(crate) type ConnId = u64;

/// What a connection task sends to its peer.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// A protocol message.
    Msg(wire::Message),
    /// Close the connection with this reason.
    Close(String),
}

/// Per-session counters, shared by the connection task and the hub.
#[derive(Debug, Default)]
pub(crate) struct SessionStats {
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) documents: AtomicU64,
    pub(crate) changes_received: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) conflict: AtomicU64,
    pub(crate) rejected: AtomicU64,
    pub(crate) hard_rejected: AtomicU64,
    /// The `count` of the next ephemeral notice (automerge-repo drops a
    /// notice whose count is not higher than the last one's).
    pub(crate) ephemeral: AtomicU64,
}

impl SessionStats {
    pub(crate) fn snapshot(&self) -> records::SessionCounters {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        records::SessionCounters {
            bytes_in: g(&self.bytes_in),
            bytes_out: g(&self.bytes_out),
            messages_in: g(&self.messages_in),
            messages_out: g(&self.messages_out),
            documents: g(&self.documents),
            changes_received: g(&self.changes_received),
            accepted: g(&self.accepted),
            conflict: g(&self.conflict),
            rejected: g(&self.rejected),
            hard_rejected: g(&self.hard_rejected),
        }
    }

    fn count(&self, outcome: &str) {
        let counter = match outcome {
            "accepted" => &self.accepted,
            "conflict" => &self.conflict,
            "rejected" => &self.rejected,
            _ => &self.hard_rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A connected peer, as the hub sees it.
#[derive(Clone, Debug)]
pub(crate) struct Peer {
    pub(crate) conn: ConnId,
    pub(crate) peer_id: PeerId,
    pub(crate) principal: Principal,
    pub(crate) session: Option<i64>,
    pub(crate) out: mpsc::Sender<Outgoing>,
    pub(crate) stats: Arc<SessionStats>,
}

/// A change to a ticket, for live views (the dashboard's register).
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Live {
    pub(crate) doc_id: String,
    pub(crate) status: Option<String>,
    pub(crate) serial: Option<String>,
}

/// Why the hub could not do something.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HubError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("document {0} is not available")]
    Unavailable(DocId),
    #[error("{0}")]
    Refused(String),
}

struct PeerDoc {
    peer: Peer,
    sync: SyncState,
    /// Changes this peer sent whose dependencies the relay does not have
    /// yet: they wait here (bounded by [`MAX_PARKED_BYTES`]) and the
    /// relay's replies ask for the missing dependencies by hash. The peer's
    /// sync state counts them as sent, so dropping them would leave the
    /// two sides asking each other for nothing, message after message.
    parked: Vec<Change>,
}

/// The most change bytes one peer may have waiting for dependencies in one
/// document; past it the oldest are dropped (the peer resends them on its
/// next connection, when the relay's `have` no longer lists them).
const MAX_PARKED_BYTES: usize = 8 << 20;

struct DocState {
    doc: Automerge,
    class: Option<DocClass>,
    persisted: Vec<ChangeHash>,
    snapshot_len: usize,
    peers: HashMap<ConnId, PeerDoc>,
    last_used: Instant,
    /// What judging the next batch needs of the ticket as it stands, kept
    /// from the last commit so a change does not hydrate the whole ticket
    /// twice more; valid only while `doc` is at `Summary::heads`.
    summary: Option<Arc<Summary>>,
}

impl DocState {
    /// A document the relay does not have yet (being created).
    fn empty(relay: &ActorId) -> Self {
        Self {
            doc: Automerge::new().with_actor(relay.clone()),
            class: None,
            persisted: Vec::new(),
            snapshot_len: 0,
            peers: HashMap::new(),
            last_used: Instant::now(),
            summary: None,
        }
    }
}

#[derive(Default)]
struct Slot {
    state: tokio::sync::Mutex<Option<DocState>>,
    /// Peers still connected that synced the document before it left
    /// memory: they come back with a fresh sync state when it is loaded
    /// again, so they keep getting its changes live.
    dormant: Mutex<Vec<Peer>>,
}

/// What the write job returns.
struct Committed {
    doc: Automerge,
    serial: Option<Serial>,
    snapshot_len: usize,
}

/// A registered connection: its device, user and outgoing queue.
type ConnEntry = (DeviceId, UserId, mpsc::Sender<Outgoing>);

/// The document hub. One per relay; cheap handles are `Arc<Hub>`.
pub(crate) struct Hub {
    pub(crate) store: Arc<dyn Storage>,
    pub(crate) policy: Policy,
    pub(crate) relay_actor: ActorId,
    pub(crate) relay_peer: PeerId,
    pub(crate) limits: validate::Limits,
    pub(crate) clock: Clock,
    /// The secret dashboard users' actors are derived from (kept in the
    /// database, never in a document).
    web_key: [u8; 32],
    slots: Mutex<HashMap<DocId, Arc<Slot>>>,
    /// Actor bindings seen so far (a binding never changes once made).
    actors: Arc<Mutex<HashMap<ActorId, (DeviceId, UserId)>>>,
    pub(crate) live: broadcast::Sender<Live>,
    conns: Mutex<HashMap<ConnId, ConnEntry>>,
    next_conn: AtomicU64,
    /// Tickets whose audience changed since the keeper last ran (each is
    /// also queued durably in the database by its commit).
    inbox_changes: Mutex<Vec<DocId>>,
    /// Held by whoever is writing inboxes: one keeper at a time.
    inbox_keeper: tokio::sync::Mutex<()>,
    /// Becomes true when the relay shuts down; long-lived streams end on it.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("relay_peer", &self.relay_peer)
            .finish_non_exhaustive()
    }
}

/// The dependencies of `parked` that are neither in `doc` nor parked.
fn missing_deps(doc: &Automerge, parked: &[Change]) -> Vec<ChangeHash> {
    let here: HashSet<ChangeHash> = parked.iter().map(Change::hash).collect();
    let mut missing: Vec<ChangeHash> = parked
        .iter()
        .flat_map(Change::deps)
        .filter(|d| !here.contains(d) && doc.get_change_by_hash(d).is_none())
        .copied()
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

fn hex_hash(h: &ChangeHash) -> String {
    h.to_string()
}

impl Hub {
    pub(crate) fn new(
        store: Arc<dyn Storage>,
        relay_actor: ActorId,
        relay_peer: PeerId,
        web_key: [u8; 32],
        clock: Clock,
    ) -> Self {
        let (live, _) = broadcast::channel(1024);
        Self {
            store,
            policy: Policy::default(),
            relay_actor,
            relay_peer,
            limits: validate::Limits::default(),
            clock,
            web_key,
            slots: Mutex::new(HashMap::new()),
            actors: Arc::new(Mutex::new(HashMap::new())),
            live,
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            inbox_changes: Mutex::new(Vec::new()),
            inbox_keeper: tokio::sync::Mutex::new(()),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Another hub over `store` with this one's identity, secret and clock
    /// (a relay restarted on the same data, or one whose storage fails).
    #[cfg(test)]
    pub(crate) fn sibling(&self, store: Arc<dyn Storage>) -> Self {
        let mut hub = Hub::new(
            store,
            self.relay_actor.clone(),
            self.relay_peer.clone(),
            self.web_key,
            self.clock.clone(),
        );
        hub.policy = self.policy.clone();
        hub.limits = self.limits.clone();
        hub
    }

    // ------------------------------------------------------------ connections

    /// Registers a connection so revocation and role changes can reach it.
    pub(crate) fn connect(
        &self,
        device: DeviceId,
        user: UserId,
        out: mpsc::Sender<Outgoing>,
    ) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.conns.lock() {
            c.insert(id, (device, user, out));
        }
        id
    }

    /// Forgets a connection and its sync states.
    pub(crate) async fn disconnect(&self, conn: ConnId) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&conn);
        }
        let slots: Vec<Arc<Slot>> = self
            .slots
            .lock()
            .map(|s| s.values().cloned().collect())
            .unwrap_or_default();
        for slot in slots {
            if let Ok(mut d) = slot.dormant.lock() {
                d.retain(|p| p.conn != conn);
            }
            let mut g = slot.state.lock().await;
            if let Some(state) = g.as_mut() {
                state.peers.remove(&conn);
                // A creation nobody is finishing any more: forget it, so the
                // device's retry on a new connection starts afresh.
                if state.class.is_none() && state.peers.is_empty() {
                    *g = None;
                }
            }
        }
    }

    /// Closes every connection of a device (revocation) or user (role change).
    pub(crate) fn kick(
        &self,
        device: Option<&DeviceId>,
        user: Option<&UserId>,
        reason: &str,
    ) -> usize {
        let Ok(c) = self.conns.lock() else { return 0 };
        let mut n = 0;
        for (d, u, out) in c.values() {
            if device.is_some_and(|x| x == d) || user.is_some_and(|x| x == u) {
                let _ = out.try_send(Outgoing::Close(reason.to_owned()));
                n += 1;
            }
        }
        n
    }

    /// Shutting down: every sync connection is closed and live streams end,
    /// so a graceful shutdown does not wait on idle phones and browsers.
    pub(crate) fn stop(&self) {
        let _ = self.stopping.send(true);
        if let Ok(c) = self.conns.lock() {
            for (_, _, out) in c.values() {
                let _ = out.try_send(Outgoing::Close("the relay is shutting down".into()));
            }
        }
    }

    /// How many connections are open.
    pub(crate) fn connection_count(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Drops documents nobody used for `idle` from memory. Peers still
    /// connected to one are kept aside (cheaply) and get it back, live, when
    /// it is loaded again; a document being created or holding changes that
    /// wait for their dependencies stays.
    pub(crate) async fn evict_idle(&self, idle: std::time::Duration) -> usize {
        let slots: Vec<(DocId, Arc<Slot>)> = self
            .slots
            .lock()
            .map(|s| s.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default();
        let mut evicted = 0;
        for (id, slot) in slots {
            let Ok(mut g) = slot.state.try_lock() else {
                continue;
            };
            let drop_it = g.as_ref().is_none_or(|s| {
                s.last_used.elapsed() >= idle
                    && (s.peers.is_empty()
                        || (s.class.is_some() && s.peers.values().all(|p| p.parked.is_empty())))
            });
            if !drop_it {
                continue;
            }
            if let Some(state) = g.take() {
                evicted += 1;
                if let Ok(mut d) = slot.dormant.lock() {
                    d.extend(state.peers.into_values().map(|p| p.peer));
                }
            }
            let dormant = slot.dormant.lock().map(|d| d.len()).unwrap_or(0);
            drop(g);
            if dormant == 0
                && let Ok(mut s) = self.slots.lock()
                && s.get(&id).is_some_and(|x| Arc::strong_count(x) <= 2)
            {
                s.remove(&id);
            }
        }
        evicted
    }

    /// How many documents are in memory.
    pub(crate) fn loaded_count(&self) -> usize {
        self.slots
            .lock()
            .map(|s| {
                s.values()
                    .filter(|slot| slot.state.try_lock().map_or(true, |g| g.is_some()))
                    .count()
            })
            .unwrap_or(0)
    }

    fn slot(&self, id: DocId) -> Arc<Slot> {
        let mut s = self
            .slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.entry(id).or_default().clone()
    }

    // ------------------------------------------------------------ loading

    async fn load(&self, id: DocId) -> Result<Option<DocState>, HubError> {
        let Some(stored) = self.store.load_document(id).await? else {
            return Ok(None);
        };
        let relay = self.relay_actor.clone();
        tokio::task::spawn_blocking(move || -> Result<Option<DocState>, HubError> {
            let snapshot_len = stored.snapshot.as_ref().map_or(0, Vec::len);
            let mut doc = stored.assemble()?;
            doc.set_actor(relay);
            let class = classify(id, &doc)?;
            let persisted = doc.get_heads();
            Ok(Some(DocState {
                doc,
                class,
                persisted,
                snapshot_len,
                peers: HashMap::new(),
                last_used: Instant::now(),
                summary: None,
            }))
        })
        .await
        .map_err(|_| HubError::Refused("loading was interrupted".into()))?
        .map(|loaded| {
            loaded.map(|mut state| {
                self.revive(id, &mut state);
                state
            })
        })
    }

    /// Gives a document loaded again the peers that synced it before it
    /// left memory (fresh sync states: the first message tells them our
    /// heads, their answer says what they lack).
    fn revive(&self, id: DocId, state: &mut DocState) {
        let slot = self.slots.lock().ok().and_then(|s| s.get(&id).cloned());
        let dormant = slot
            .and_then(|slot| {
                slot.dormant
                    .lock()
                    .ok()
                    .map(|mut d| std::mem::take(&mut *d))
            })
            .unwrap_or_default();
        for peer in dormant {
            state.peers.insert(
                peer.conn,
                PeerDoc {
                    peer,
                    sync: SyncState::new(),
                    parked: Vec::new(),
                },
            );
        }
    }

    /// Whether `p` may sync document `id` (loading what is needed to decide).
    pub(crate) async fn may_sync(&self, p: &Principal, id: DocId) -> Result<bool, HubError> {
        let slot = self.slot(id);
        let mut g = slot.state.lock().await;
        if g.is_none() {
            *g = self.load(id).await?;
        }
        let Some(state) = g.as_ref() else {
            return Ok(false);
        };
        self.allowed(p, id, state).await
    }

    async fn allowed(&self, p: &Principal, id: DocId, state: &DocState) -> Result<bool, HubError> {
        let Some(class) = &state.class else {
            return Ok(false);
        };
        let explicit = if matches!(class, DocClass::Household)
            && matches!(p.role, Role::Engineer | Role::DepartmentStaff)
        {
            self.store
                .explicit_access(id, p.user.clone())
                .await?
                .is_some()
        } else {
            false
        };
        Ok(access::may_sync(p, class, explicit))
    }

    // ------------------------------------------------------------ the sync path

    /// Handles a `request` or `sync` message from `peer` for document `id`.
    pub(crate) async fn receive(
        &self,
        peer: &Peer,
        id: DocId,
        data: &[u8],
        fresh: bool,
    ) -> Result<(), HubError> {
        let slot = self.slot(id);
        let mut guard = slot.state.lock().await;
        if guard.is_none() {
            *guard = self.load(id).await?;
        }
        let decoded =
            match validate::guarded("decoding a sync message", || SyncMessage::decode(data)) {
                Ok(Ok(m)) => validate::sync_message(&m).map(|()| m).map_err(|r| r.reason),
                Ok(Err(e)) => Err(e.to_string()),
                Err(r) => Err(r.reason),
            };
        let msg = match decoded {
            Ok(m) => m,
            Err(why) => {
                self.security(peer, "malformed_sync", &format!("document {id}: {why}"))
                    .await;
                self.send(
                    peer,
                    error_msg(
                        &self.relay_peer,
                        peer,
                        &format!("malformed sync message for {id}: {why}"),
                    ),
                );
                return Ok(());
            }
        };
        let creating = guard.is_none();
        if creating {
            // A document the relay does not have: a device may be creating it
            // (its first sync message carries no changes yet). It lives in
            // memory only until a valid creation arrives.
            if fresh || !access::may_create(&peer.principal) {
                self.send(peer, unavailable(&self.relay_peer, peer, id));
                return Ok(());
            }
            *guard = Some(DocState::empty(&self.relay_actor));
        } else if let Some(state) = guard.as_ref() {
            let allowed = match state.class {
                None => state.peers.contains_key(&peer.conn),
                Some(_) => self.allowed(&peer.principal, id, state).await?,
            };
            if !allowed {
                self.send(peer, unavailable(&self.relay_peer, peer, id));
                return Ok(());
            }
        }
        let Some(mut state) = guard.take() else {
            return Ok(());
        };
        state.last_used = Instant::now();
        let mut pd = state.peers.remove(&peer.conn).unwrap_or_else(|| {
            peer.stats.documents.fetch_add(1, Ordering::Relaxed);
            PeerDoc {
                peer: peer.clone(),
                sync: SyncState::new(),
                parked: Vec::new(),
            }
        });
        if fresh {
            pd.sync = SyncState::new();
        }
        pd.peer = peer.clone();

        let mut msg = msg;
        let chunks = std::mem::replace(&mut msg.changes, automerge::sync::ChunkList::empty());
        // The sync state takes the message before its changes are judged, as
        // automerge's own `receive_sync_message` does before applying them:
        // told afterwards, it would see the peer's heads equal to ours, take
        // the message for an echo and never reply, and a phone whose change
        // gets no verdict (a note) would wait for an answer until it stalls.
        let doc = &mut state.doc;
        let received = validate::guarded("receiving a sync message", || {
            doc.receive_sync_message(&mut pd.sync, msg)
        });
        if !matches!(received, Ok(Ok(()))) {
            // Nothing was applied (the changes were taken out); the peer's
            // sync state may be half-updated: start it afresh.
            pd.sync = SyncState::new();
            state.peers.insert(peer.conn, pd);
            *guard = Some(state);
            drop(guard);
            self.security(
                peer,
                "malformed_sync",
                &format!("document {id}: automerge refused the message"),
            )
            .await;
            self.send(
                peer,
                error_msg(
                    &self.relay_peer,
                    peer,
                    &format!("malformed sync message for {id}"),
                ),
            );
            return Ok(());
        }
        let mut rejected_any: Option<Rejection> = None;
        let mut rejected_hashes = Vec::new();
        if !chunks.is_empty() && !pd.sync.read_only {
            let result = self.ingest_chunks(id, &mut state, &mut pd, &chunks).await;
            match result {
                Ok(out) => {
                    if let Some((r, hashes)) = out {
                        rejected_any = Some(r);
                        rejected_hashes = hashes;
                    }
                }
                Err(e) => {
                    // Nothing was stored: put the document back as it was and
                    // tell the peer; its changes stay on its side.
                    state.peers.insert(peer.conn, pd);
                    let stale = matches!(e, HubError::Store(_));
                    *guard = if stale { None } else { Some(state) };
                    self.send(
                        peer,
                        error_msg(
                            &self.relay_peer,
                            peer,
                            &format!("the relay could not store changes: {e}"),
                        ),
                    );
                    return Err(e);
                }
            }
        }
        if state.class.is_none()
            && let Some(r) = rejected_any.take()
        {
            // A creation whose every change was refused: nothing to keep.
            self.send(
                peer,
                change_rejected(&self.relay_peer, peer, id, &r, &rejected_hashes),
            );
            self.send(peer, unavailable(&self.relay_peer, peer, id));
            *guard = None;
            return Ok(());
        }
        if let Some(r) = &rejected_any {
            pd.sync.set_read_only(true);
            self.send(
                peer,
                change_rejected(&self.relay_peer, peer, id, r, &rejected_hashes),
            );
        }
        if let Some(mut reply) = generate(&state.doc, &mut pd.sync) {
            // Ask for what the parked changes still miss: automerge's own
            // `need` only lists the peer's heads, never their dependencies.
            // (The encoding wants them sorted.)
            reply.need.extend(missing_deps(&state.doc, &pd.parked));
            reply.need.sort();
            reply.need.dedup();
            self.send(peer, sync_msg(&self.relay_peer, peer, id, reply.encode()));
        }
        state.peers.insert(peer.conn, pd);
        self.fan_out(&mut state, id, Some(peer.conn));
        *guard = Some(state);
        drop(guard);
        self.keep_inboxes().await;
        Ok(())
    }

    fn fan_out(&self, state: &mut DocState, id: DocId, except: Option<ConnId>) {
        let doc = &state.doc;
        for (conn, pd) in &mut state.peers {
            if Some(*conn) == except {
                continue;
            }
            if let Some(m) = generate(doc, &mut pd.sync) {
                self.send(
                    &pd.peer,
                    sync_msg(&self.relay_peer, &pd.peer, id, m.encode()),
                );
            }
        }
    }

    fn send(&self, peer: &Peer, msg: wire::Message) {
        if peer.out.try_send(Outgoing::Msg(msg)).is_err() {
            // A peer that does not drain its queue is dropped; it resyncs on reconnect.
            let _ = peer.out.try_send(Outgoing::Close("too slow".into()));
        }
    }

    async fn security(&self, peer: &Peer, kind: &str, detail: &str) {
        let (u, d, p) = (
            peer.principal.user.to_string(),
            peer.principal.device.to_string(),
            peer.peer_id.to_string(),
        );
        let entry = SecurityEntry {
            at: self.now(),
            user: Some(u),
            device: Some(d),
            peer: Some(p),
            kind: kind.to_owned(),
            detail: detail.to_owned(),
        };
        let _ = self.store.log_refusal(entry, None).await;
    }

    /// Validates, judges and stores a batch; returns the first hard rejection
    /// (and the refused hashes) if any change was refused.
    async fn ingest_chunks(
        &self,
        id: DocId,
        state: &mut DocState,
        pd: &mut PeerDoc,
        chunks: &automerge::sync::ChunkList,
    ) -> Result<Option<(Rejection, Vec<ChangeHash>)>, HubError> {
        let now = self.now();
        let (author, session, stats) = (&pd.peer.principal, pd.peer.session, &pd.peer.stats);
        let mut changes = match validate::changes_in(chunks.iter(), &self.limits) {
            Ok(c) => c,
            Err(r) => {
                stats.changes_received.fetch_add(1, Ordering::Relaxed);
                stats.hard_rejected.fetch_add(1, Ordering::Relaxed);
                self.record_unreadable(author, Some(id), &r, chunks, now)
                    .await?;
                return Ok(Some((r, Vec::new())));
            }
        };
        changes.append(&mut pd.parked);
        let (refused, waiting) = self
            .ingest(id, state, author, session, changes, stats, now)
            .await?;
        pd.parked = waiting;
        let mut bytes: usize = pd.parked.iter().map(|c| c.raw_bytes().len()).sum();
        while bytes > MAX_PARKED_BYTES && !pd.parked.is_empty() {
            bytes -= pd.parked.remove(0).raw_bytes().len();
        }
        Ok(refused)
    }

    async fn record_unreadable(
        &self,
        author: &Principal,
        doc: Option<DocId>,
        r: &Rejection,
        chunks: &automerge::sync::ChunkList,
        now: DateTime<Utc>,
    ) -> Result<(), HubError> {
        let (u, d) = (author.user.to_string(), author.device.to_string());
        let review = doc.map(|doc_id| ReviewRow {
            id: 0,
            doc_id,
            event_id: None,
            change_hash: None,
            kind: "hard_rejected".into(),
            action: None,
            rule: r.rule.name().into(),
            reason: r.reason.clone(),
            username: author.user.clone(),
            device_id: author.device.clone(),
            authored_at: now,
            received_at: now,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        });
        let payload: Vec<u8> = chunks.iter().flatten().copied().take(1 << 20).collect();
        let detail = format!(
            "{}: {} ({} chunk(s), {} bytes){}",
            r.rule.name(),
            r.reason,
            chunks.len(),
            chunks.iter().map(<[u8]>::len).sum::<usize>(),
            doc.map(|d| format!(" in {d}")).unwrap_or_default()
        );
        let entry = SecurityEntry {
            at: now,
            user: Some(u),
            device: Some(d),
            peer: None,
            kind: "hard_rejected".into(),
            detail,
        };
        self.store
            .log_refusal(entry, review.map(|r| (r, payload)))
            .await?;
        Ok(())
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "the batch's context, passed through from two callers"
    )]
    async fn ingest(
        &self,
        id: DocId,
        state: &mut DocState,
        author: &Principal,
        session: Option<i64>,
        changes: Vec<Change>,
        stats: &SessionStats,
        now: DateTime<Utc>,
    ) -> Result<(Option<(Rejection, Vec<ChangeHash>)>, Vec<Change>), HubError> {
        let doc = std::mem::take(&mut state.doc);
        let persisted_heads = state.persisted.clone();
        let summary = state.summary.take();
        let author_c = author.clone();
        let hub_actors = self.actors.clone();
        let (relay_actor, policy, limits, store) = (
            self.relay_actor.clone(),
            self.policy.clone(),
            self.limits.clone(),
            self.store.clone(),
        );
        let (doc, mut out) = tokio::task::spawn_blocking(move || {
            let bindings = |actor: &ActorId| -> Result<Option<(DeviceId, UserId)>, String> {
                if let Some(b) = hub_actors.lock().ok().and_then(|a| a.get(actor).cloned()) {
                    return Ok(Some(b));
                }
                let found = store
                    .actor_binding(&actor.to_hex_string())
                    .map_err(|e| e.to_string())?;
                if let (Some(b), Ok(mut cache)) = (&found, hub_actors.lock()) {
                    cache.insert(actor.clone(), b.clone());
                }
                Ok(found)
            };
            let cx = batch::Context {
                author: &author_c,
                relay_actor: &relay_actor,
                policy: &policy,
                limits: &limits,
                bindings: &bindings,
                now,
            };
            let out = batch::judge_batch(&doc, summary.map(Arc::unwrap_or_clone), changes, &cx);
            (doc, out)
        })
        .await
        .map_err(|_| HubError::Refused("validation was interrupted".into()))?;
        state.doc = doc;
        let waiting = std::mem::take(&mut out.waiting);
        let first_rejection = out.rejected.first().map(|(_, r)| r.clone());
        let rejected_hashes: Vec<ChangeHash> = out.rejected.iter().map(|(i, _)| i.hash).collect();
        stats.changes_received.fetch_add(
            (out.accepted.len() + out.rejected.len()) as u64,
            Ordering::Relaxed,
        );
        if out.accepted.is_empty() && out.rejected.is_empty() {
            return Ok((None, waiting));
        }
        let is_new = state.class.is_none();
        let outcomes: Vec<(ChangeHash, Outcome)> = out
            .accepted
            .iter()
            .map(|c| (c.hash, out.outcome_of(&c.hash)))
            .collect();
        let rejected_n = out.rejected.len();
        let meta = out
            .ticket
            .as_ref()
            .zip(out.official.as_ref())
            .map(|(t, p)| ticket_meta(t, p));
        let kind = out.kind;
        let serial_before = out.ticket.as_ref().and_then(|t| t.server.serial);
        let status_after = out.official.as_ref().map(|p| p.status.as_str().to_owned());
        let bound = out.new_actors.clone();
        let summary_after = out.summary.take();
        let old_meta = match &state.class {
            Some(DocClass::Ticket(m)) => Some(m),
            _ => None,
        };
        let inbox_queue = meta.as_ref().is_some_and(|m| Some(m) != old_meta);
        let committed = self
            .commit(
                id,
                state,
                author,
                session,
                out,
                persisted_heads,
                (is_new, inbox_queue),
                now,
            )
            .await?;
        for (_, o) in &outcomes {
            stats.count(o.as_str());
        }
        for _ in 0..rejected_n {
            stats.count("hard_rejected");
        }
        if let Some(c) = committed {
            if let Ok(mut cache) = self.actors.lock() {
                for actor in bound {
                    cache.insert(actor, (author.device.clone(), author.user.clone()));
                }
            }
            state.doc = c.doc;
            state.doc.set_actor(self.relay_actor.clone());
            state.persisted = state.doc.get_heads();
            state.snapshot_len = c.snapshot_len;
            state.summary = summary_after.map(|mut s| {
                s.heads.clone_from(&state.persisted);
                s.had_serial |= c.serial.is_some();
                Arc::new(s)
            });
            state.class = match (kind, &meta) {
                (Some(DocKind::Ticket), Some(m)) => Some(DocClass::Ticket(m.clone())),
                (Some(DocKind::Household), _) => Some(DocClass::Household),
                (Some(DocKind::HouseholdPrivate), _) => Some(DocClass::HouseholdPrivate),
                _ => state.class.take(),
            };
            if meta.is_some() {
                let _ = self.live.send(Live {
                    doc_id: id.to_string(),
                    status: status_after,
                    serial: c.serial.or(serial_before).map(|s| s.to_string()),
                });
            }
            if inbox_queue {
                self.inbox_changes.lock().map(|mut q| q.push(id)).ok();
            }
        }
        Ok((first_rejection.map(|r| (r, rejected_hashes)), waiting))
    }

    #[allow(
        clippy::too_many_arguments,
        reason = "one call site; the arguments are the batch's context"
    )]
    async fn commit(
        &self,
        id: DocId,
        state: &DocState,
        author: &Principal,
        session: Option<i64>,
        out: Ingest,
        persisted: Vec<ChangeHash>,
        (is_new, inbox_queue): (bool, bool),
        now: DateTime<Utc>,
    ) -> Result<Option<Committed>, HubError> {
        let Ingest {
            trial,
            accepted,
            rejected,
            judged,
            new_actors,
            official,
            ticket,
            serial_due,
            kind,
            ..
        } = out;
        let row =
            |c: &Incoming, outcome: &str, rule: Option<&str>, reason: Option<&str>| ChangeRow {
                hash: hex_hash(&c.hash),
                doc_id: id,
                actor: c.actor.to_hex_string(),
                username: author.user.clone(),
                device_id: author.device.clone(),
                session_id: session,
                bytes: c.bytes.len() as u64,
                authored_at: c.authored_at,
                received_at: now,
                outcome: outcome.to_owned(),
                rule: rule.map(str::to_owned),
                reason: reason.map(str::to_owned),
            };
        let review = |event_id: Option<String>,
                      change: &ChangeHash,
                      kind: &str,
                      action: Option<String>,
                      rule: &str,
                      reason: &str,
                      authored_at| ReviewRow {
            id: 0,
            doc_id: id,
            event_id,
            change_hash: Some(hex_hash(change)),
            kind: kind.into(),
            action,
            rule: rule.into(),
            reason: reason.into(),
            username: author.user.clone(),
            device_id: author.device.clone(),
            authored_at,
            received_at: now,
            resolved_at: None,
            resolved_by: None,
            resolution: None,
        };
        let mut changes = Vec::new();
        let mut reviews = Vec::new();
        for (c, r) in &rejected {
            changes.push(row(
                c,
                "hard_rejected",
                Some(r.rule.name()),
                Some(&r.reason),
            ));
            reviews.push((
                review(
                    None,
                    &c.hash,
                    "hard_rejected",
                    None,
                    r.rule.name(),
                    &r.reason,
                    c.authored_at,
                ),
                Some(c.bytes.clone()),
            ));
        }
        for c in &accepted {
            let o = worst(
                judged
                    .iter()
                    .filter(|j| j.change == c.hash)
                    .map(|j| j.record.outcome),
            );
            let bad = judged
                .iter()
                .find(|j| j.change == c.hash && j.record.outcome == o && o != Outcome::Accepted);
            changes.push(row(
                c,
                o.as_str(),
                bad.map(|j| j.record.rule.as_str()),
                bad.map(|j| j.record.reason.as_str()),
            ));
        }
        let mut verdicts = Vec::new();
        let mut resolutions = Vec::new();
        for j in &judged {
            verdicts.push(VerdictRow {
                doc_id: id,
                event_id: j.event.id.to_string(),
                seq: j.record.seq,
                action: j.event.action.clone(),
                username: author.user.clone(),
                device_id: author.device.clone(),
                change_hash: hex_hash(&j.change),
                outcome: j.record.outcome.as_str().into(),
                rule: j.record.rule.clone(),
                reason: j.record.reason.clone(),
                authored_at: j.event.at,
                judged_at: now,
            });
            if j.record.outcome != Outcome::Accepted {
                let r = review(
                    Some(j.event.id.to_string()),
                    &j.change,
                    j.record.outcome.as_str(),
                    Some(j.event.action.clone()),
                    &j.record.rule,
                    &j.record.reason,
                    j.event.at,
                );
                reviews.push((r, None));
            } else if matches!(j.event.action(), Some(Action::Override | Action::Dismiss))
                && let Some(target) = &j.event.data.target
            {
                resolutions.push((
                    target.to_string(),
                    author.user.clone(),
                    j.event.action.clone(),
                ));
            }
        }
        let seal: Option<Seal> = trial.map(|mut trial| {
            let relay = self.relay_actor.clone();
            let policy = self.policy.clone();
            let snapshot_len = state.snapshot_len;
            let records: Vec<(schema::EventId, VerdictRecord)> = judged
                .iter()
                .map(|j| (j.event.id.clone(), j.record.clone()))
                .collect();
            Box::new(
                move |serial: Option<Serial>, stored: u64| -> Result<Sealed, StoreError> {
                    trial.set_actor(relay);
                    if !records.is_empty() || serial.is_some() || (is_new && ticket.is_some()) {
                        let mut t = trial.transaction();
                        let w = (|| -> Result<(), doc::DocError> {
                            for (event, record) in &records {
                                doc::put_verdict(&mut t, event, record)?;
                            }
                            if let Some(s) = serial {
                                doc::set_serial(&mut t, s)?;
                            }
                            if is_new && ticket.is_some() {
                                doc::set_received_at(&mut t, now)?;
                            }
                            Ok(())
                        })();
                        w.map_err(|e| StoreError::Corrupt(format!("writing verdicts: {e}")))?;
                        t.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
                    }
                    let chunk = trial.save_after(&persisted);
                    let snapshot = (stored + chunk.len() as u64
                        > (snapshot_len as u64).max(COMPACT_AFTER))
                    .then(|| trial.save());
                    let (register, access, grants) = match (&ticket, &official) {
                        (Some(t), Some(p)) => {
                            let access = p
                                .engineers()
                                .into_iter()
                                .map(|e| {
                                    (
                                        e.clone(),
                                        if p.assignee.as_ref() == Some(e) {
                                            "rw"
                                        } else {
                                            "flush"
                                        },
                                    )
                                })
                                .collect();
                            let grants = t
                                .header
                                .household
                                .zip(p.assignee.clone())
                                .map(|(h, a)| (h.id(), a))
                                .into_iter()
                                .collect();
                            (
                                Some(register_row(
                                    id,
                                    t,
                                    p,
                                    serial.or(t.server.serial),
                                    now,
                                    &policy,
                                )),
                                Some(access),
                                grants,
                            )
                        }
                        _ => (None, None, Vec::new()),
                    };
                    Ok(Sealed {
                        chunk,
                        snapshot,
                        register,
                        access,
                        grants,
                        doc: Box::new(trial),
                    })
                },
            ) as Seal
        });
        let batch = DocBatch {
            doc_id: id,
            create: if is_new && seal.is_some() {
                Some(kind.map_or("unknown", DocKind::as_str))
            } else {
                None
            },
            bind: new_actors
                .iter()
                .map(|a| {
                    (
                        a.to_hex_string(),
                        author.device.clone(),
                        author.user.clone(),
                    )
                })
                .collect(),
            serial_due: if seal.is_some() { serial_due } else { None },
            changes,
            verdicts,
            reviews,
            resolutions,
            at: now,
            clock: self.clock.clone(),
            seal,
            inbox_queue,
            inbox_mirror: None,
        };
        let c = self.store.commit_document(batch).await?;
        Ok(match c.doc.map(|d| d.downcast::<Automerge>()) {
            Some(Ok(doc)) => Some(Committed {
                doc: *doc,
                serial: c.serial,
                snapshot_len: c.snapshot_len.unwrap_or(state.snapshot_len),
            }),
            _ => None,
        })
    }
}

impl Hub {
    /// Writes to a document as the relay itself (inboxes, seeded files),
    /// creating it as `kind` if it does not exist; stores the change, then
    /// sends it to every peer of the document.
    pub(crate) async fn relay_write<F>(
        &self,
        id: DocId,
        create: Option<DocKind>,
        f: F,
    ) -> Result<(), HubError>
    where
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), doc::DocError> + Send,
    {
        self.relay_write_with(id, create, None, f).await
    }

    /// [`Hub::relay_write`] to an inbox, with the inbox mirror's rows for it
    /// written in the same transaction.
    async fn relay_write_with<F>(
        &self,
        id: DocId,
        create: Option<DocKind>,
        inbox_mirror: Option<(UserId, Vec<(DocId, bool)>)>,
        f: F,
    ) -> Result<(), HubError>
    where
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), doc::DocError> + Send,
    {
        let now = self.now();
        let slot = self.slot(id);
        let mut guard = slot.state.lock().await;
        if guard.is_none() {
            *guard = self.load(id).await?;
        }
        let is_new = guard.is_none();
        if is_new && create.is_none() {
            return Err(HubError::Unavailable(id));
        }
        let state = guard.get_or_insert_with(|| DocState::empty(&self.relay_actor));
        state.summary = None;
        let mut trial = state.doc.fork().with_actor(self.relay_actor.clone());
        {
            let mut t = trial.transaction();
            f(&mut t).map_err(|e| HubError::Refused(e.to_string()))?;
            t.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
        }
        let persisted = state.persisted.clone();
        let old_snapshot = state.snapshot_len;
        let seal: Seal = Box::new(move |_, stored| {
            let chunk = trial.save_after(&persisted);
            let snapshot = (stored + chunk.len() as u64 > (old_snapshot as u64).max(COMPACT_AFTER))
                .then(|| trial.save());
            Ok(Sealed {
                chunk,
                snapshot,
                register: None,
                access: None,
                grants: Vec::new(),
                doc: Box::new(trial),
            })
        });
        let batch = DocBatch {
            doc_id: id,
            create: create.map(DocKind::as_str),
            bind: Vec::new(),
            serial_due: None,
            changes: Vec::new(),
            verdicts: Vec::new(),
            reviews: Vec::new(),
            resolutions: Vec::new(),
            at: now,
            clock: self.clock.clone(),
            seal: Some(seal),
            inbox_queue: false,
            inbox_mirror,
        };
        let committed = self.store.commit_document(batch).await.inspect_err(|_| {
            if is_new {
                *guard = None;
            }
        })?;
        let Some(state) = guard.as_mut() else {
            return Ok(());
        };
        let Some(Ok(doc)) = committed.doc.map(|d| d.downcast::<Automerge>()) else {
            return Err(HubError::Refused(
                "the store did not return the document".into(),
            ));
        };
        state.doc = *doc;
        state.persisted = state.doc.get_heads();
        if let Some(n) = committed.snapshot_len {
            state.snapshot_len = n;
        }
        if state.class.is_none() {
            state.class = classify(id, &state.doc)?;
        }
        state.last_used = Instant::now();
        self.fan_out(state, id, None);
        Ok(())
    }

    /// Makes a change as a dashboard user (with that user's own actor) and
    /// runs it through the same validation and judging as a device's.
    /// Returns the hard rejection, if the change was refused.
    pub(crate) async fn author(
        &self,
        p: &Principal,
        id: DocId,
        create: bool,
        seen: Option<Vec<ChangeHash>>,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), doc::DocError> + Send,
    ) -> Result<Option<Rejection>, HubError> {
        let now = self.now();
        let actor = self.web_actor(&p.user);
        let slot = self.slot(id);
        let mut guard = slot.state.lock().await;
        if guard.is_none() {
            *guard = self.load(id).await?;
        }
        match guard.as_ref() {
            None if !create => return Err(HubError::Unavailable(id)),
            Some(state) if !self.allowed(p, id, state).await? => {
                return Err(HubError::Unavailable(id));
            }
            _ => {}
        }
        let state = guard.get_or_insert_with(|| DocState::empty(&self.relay_actor));
        // The change is made on the version the person saw, so the judge
        // can tell "not allowed" from "the ticket has moved on since".
        let base = seen.unwrap_or_else(|| state.doc.get_heads());
        let mut scratch = state
            .doc
            .fork_at(&base)
            .map_err(|_| {
                HubError::Refused("the ticket version you acted on is unknown; reload it".into())
            })?
            .with_actor(actor);
        {
            let mut t = scratch.transaction();
            f(&mut t).map_err(|e| HubError::Refused(e.to_string()))?;
            t.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
        }
        let changes = scratch.get_changes(&base);
        let stats = SessionStats::default();
        let result = self.ingest(id, state, p, None, changes, &stats, now).await;
        let keep = state.class.is_some();
        if keep {
            self.fan_out(state, id, None);
        } else {
            *guard = None;
        }
        drop(guard);
        self.keep_inboxes().await;
        Ok(result?.0.map(|(r, _)| r))
    }

    /// The actor a dashboard user's changes are made with.
    pub(crate) fn web_actor(&self, user: &UserId) -> ActorId {
        web_actor(&self.web_key, user)
    }

    /// Brings the inboxes of tickets whose audience changed up to date
    /// (serialised: one keeper at a time, so an older audience never
    /// overwrites a newer one). A ticket stays queued in the database until
    /// its inboxes are written, so a failure here is retried, and a crash
    /// is repaired at the next start ([`Hub::recover_inboxes`]).
    pub(crate) async fn keep_inboxes(&self) {
        let _keeper = self.inbox_keeper.lock().await;
        let queued: Vec<DocId> = self
            .inbox_changes
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        let mut seen = HashSet::new();
        for doc_id in queued {
            if !seen.insert(doc_id) {
                continue;
            }
            if let Err(e) = self.settle_inboxes(doc_id, None).await {
                tracing::warn!(doc = %doc_id, error = %e, "inbox update failed; it stays queued");
            }
        }
    }

    /// Start-up and periodic repair: every ticket still queued has its
    /// inboxes brought up to date. With `audit`, every ticket's audience is
    /// also checked against what the inboxes list (filling the inbox mirror
    /// from the inbox documents first on a data directory older than it),
    /// and each difference repaired and recorded in the security log.
    /// Returns how many inboxes were written.
    pub(crate) async fn recover_inboxes(&self, audit: bool) -> Result<usize, HubError> {
        let mut written = 0;
        for (doc_id, upto) in self.store.inbox_queued().await? {
            let _keeper = self.inbox_keeper.lock().await;
            written += self.settle_inboxes(doc_id, Some(upto)).await?;
        }
        if !audit {
            return Ok(written);
        }
        if !self.store.inbox_mirror_ready().await? {
            self.seed_inbox_mirror().await?;
        }
        let staff = self.store.users().await?;
        let mut listed: HashMap<DocId, BTreeSet<UserId>> = HashMap::new();
        for (user, doc_id) in self.store.inbox_entries().await? {
            listed.entry(doc_id).or_default().insert(user);
        }
        let mut repaired = 0;
        for row in self.store.ticket_rows().await? {
            let want = audience_of(&TicketMeta::of_row(&row), &staff);
            let have = listed.remove(&row.doc_id).unwrap_or_default();
            if want != have {
                // The scan is not under the keeper's lock; the settling
                // reads everything again under it, so a concurrent update
                // is never undone.
                let _keeper = self.inbox_keeper.lock().await;
                let n = self.settle_inboxes(row.doc_id, None).await?;
                if n > 0 {
                    repaired += 1;
                    written += n;
                }
            }
        }
        if repaired > 0 {
            let entry = SecurityEntry {
                at: self.now(),
                user: None,
                device: None,
                peer: None,
                kind: "inbox_repaired".into(),
                detail: format!(
                    "{repaired} ticket(s) were listed in the wrong inboxes; {written} inbox(es) rewritten"
                ),
            };
            let _ = self.store.log_refusal(entry, None).await;
        }
        Ok(written)
    }

    /// Reads every inbox document into the inbox mirror (a data directory
    /// written before the mirror existed).
    async fn seed_inbox_mirror(&self) -> Result<(), HubError> {
        let mut entries = Vec::new();
        for u in self.store.users().await? {
            let Some(stored) = self.store.load_document(u.inbox_doc).await? else {
                continue;
            };
            let user = u.username.clone();
            let listed = tokio::task::spawn_blocking(move || -> Result<Vec<DocId>, HubError> {
                let doc = stored.assemble()?;
                let inbox = doc::read_inbox(&doc).map_err(|e| {
                    HubError::Store(StoreError::Corrupt(format!("inbox of {user}: {e}")))
                })?;
                Ok(inbox
                    .docs
                    .iter()
                    .filter(|(_, e)| e.kind == DocKind::Ticket)
                    .map(|(url, _)| url.id())
                    .collect())
            })
            .await
            .map_err(|_| HubError::Refused("reading an inbox was interrupted".into()))??;
            entries.extend(listed.into_iter().map(|d| (u.username.clone(), d)));
        }
        self.store.seed_inbox_mirror(entries).await?;
        Ok(())
    }

    /// Makes every inbox list `doc_id` exactly when its user is in the
    /// ticket's audience (from the register), then marks the queue done up
    /// to the entry read first. Returns how many inboxes were written.
    async fn settle_inboxes(&self, doc_id: DocId, upto: Option<i64>) -> Result<usize, HubError> {
        let upto = match upto {
            Some(u) => Some(u),
            None => self.store.inbox_queued_upto(doc_id).await?,
        };
        let Some(row) = self.store.ticket_row(doc_id).await? else {
            if let Some(u) = upto {
                self.store.inbox_done(doc_id, u).await?;
            }
            return Ok(0);
        };
        let staff = self.store.users().await?;
        let want = audience_of(&TicketMeta::of_row(&row), &staff);
        let have: BTreeSet<UserId> = self
            .store
            .inbox_listed_by(doc_id)
            .await?
            .into_iter()
            .collect();
        let label = row.serial.clone().unwrap_or_else(|| row.title.clone());
        let household = row
            .household
            .as_deref()
            .and_then(|h| h.parse::<schema::DocUrl>().ok());
        let mut written = 0;
        for user in want.symmetric_difference(&have) {
            let listed = want.contains(user);
            let Some(u) = staff.iter().find(|u| &u.username == user) else {
                continue;
            };
            let url = doc_id.url();
            let entry = InboxEntry {
                kind: DocKind::Ticket,
                access: Access::ReadWrite,
                label: label.clone(),
            };
            let mirror = Some((user.clone(), vec![(doc_id, listed)]));
            self.relay_write_with(u.inbox_doc, None, mirror, move |t| {
                if listed {
                    doc::inbox_put(t, url, &entry)?;
                    if let Some(h) = household {
                        let e = InboxEntry {
                            kind: DocKind::Household,
                            access: Access::ReadOnly,
                            label: String::new(),
                        };
                        doc::inbox_put(t, h, &e)?;
                    }
                    Ok(())
                } else {
                    doc::inbox_remove(t, url)
                }
            })
            .await?;
            written += 1;
        }
        if let Some(u) = upto {
            self.store.inbox_done(doc_id, u).await?;
        }
        Ok(written)
    }
}

/// A dashboard user's actor: a keyed MAC of the user name under the relay's
/// secret, so no device can compute it; it is bound to the user's dashboard
/// device when the user is created, so no device can take it either.
pub(crate) fn web_actor(key: &[u8; 32], user: &UserId) -> ActorId {
    use hmac::{Hmac, Mac};
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"propsync web actor\0");
    mac.update(user.as_str().as_bytes());
    ActorId::from(&mac.finalize().into_bytes()[..16])
}

/// Whose inboxes should list a ticket: its audience by name, and the staff
/// of the department a matter is routed to.
fn audience_of(m: &TicketMeta, staff: &[records::User]) -> BTreeSet<UserId> {
    let (mut users, dept) = access::inbox_audience(m);
    if let Some(d) = dept {
        users.extend(
            staff
                .iter()
                .filter(|u| u.role == Role::DepartmentStaff && u.department == d)
                .map(|u| u.username.clone()),
        );
    }
    users.into_iter().collect()
}

/// The register row of a ticket.
fn register_row(
    id: DocId,
    t: &Ticket,
    p: &Projection,
    serial: Option<Serial>,
    now: DateTime<Utc>,
    _policy: &Policy,
) -> TicketRow {
    TicketRow {
        doc_id: id,
        kind: t.header.kind.as_str().into(),
        status: p.status.as_str().into(),
        serial: serial.map(|s| s.to_string()),
        title: t.header.title.clone(),
        location: t.header.location.clone(),
        household: t.header.household.map(|h| h.to_string()),
        assignee: p.assignee.as_ref().map(ToString::to_string),
        department: p.department.map(|d| d.as_str().to_owned()),
        created_by: t.header.reported.by.to_string(),
        channel: t.header.reported.channel.as_str().into(),
        reported_at: t.header.reported.at,
        received_at: p.received_at.unwrap_or(now),
        updated_at: now,
        paid: p.paid,
        projection: serde_json::to_value(p).unwrap_or(serde_json::Value::Null),
        // security-edge: the blobs the ticket references, for `blob_refs` (who may read a photo).
        blobs: crate::store::edges::ticket_blobs(t),
    }
}

/// The class of a stored document, from its type and the register.
fn classify(id: DocId, doc: &Automerge) -> Result<Option<DocClass>, HubError> {
    let kind: Option<DocKind> = doc::doc_kind(doc);
    Ok(match kind {
        Some(DocKind::Ticket) => match read_ticket(doc, None) {
            Ok(t) => Some(DocClass::Ticket(ticket_meta(
                &t,
                &Projection::official(&t, &Policy::default()),
            ))),
            Err(e) => return Err(StoreError::Corrupt(format!("ticket {id}: {e}")).into()),
        },
        Some(DocKind::Household) => Some(DocClass::Household),
        Some(DocKind::HouseholdPrivate) => Some(DocClass::HouseholdPrivate),
        Some(DocKind::Inbox) => match doc::read_inbox(doc) {
            Ok(i) => Some(DocClass::Inbox(i.user)),
            Err(e) => return Err(StoreError::Corrupt(format!("inbox {id}: {e}")).into()),
        },
        None => None,
    })
}

fn ticket_meta(t: &Ticket, p: &Projection) -> TicketMeta {
    TicketMeta {
        kind: t.header.kind,
        paid: p.paid,
        department: p.department,
        created_by: t.header.reported.by.clone(),
        assignee: p.assignee.clone(),
        engineers: p.engineers().into_iter().cloned().collect(),
    }
}

/// The next sync message for a peer, under the panic guard: a panic (a
/// peer's sync state automerge cannot use) starts that peer's state afresh
/// instead of taking the document's task down.
fn generate(doc: &Automerge, sync: &mut SyncState) -> Option<SyncMessage> {
    match validate::guarded("generating a sync message", || {
        doc.generate_sync_message(sync)
    }) {
        Ok(m) => m,
        Err(r) => {
            tracing::warn!(reason = %r.reason, "a peer's sync state was reset");
            *sync = SyncState::new();
            None
        }
    }
}

fn sync_msg(relay: &PeerId, peer: &Peer, id: DocId, data: Vec<u8>) -> wire::Message {
    wire::Message::Sync {
        sender_id: relay.clone(),
        target_id: peer.peer_id.clone(),
        document_id: id.into(),
        data,
    }
}

fn unavailable(relay: &PeerId, peer: &Peer, id: DocId) -> wire::Message {
    wire::Message::DocUnavailable {
        sender_id: relay.clone(),
        target_id: peer.peer_id.clone(),
        document_id: id.into(),
    }
}

fn error_msg(relay: &PeerId, peer: &Peer, message: &str) -> wire::Message {
    wire::Message::Error {
        sender_id: Some(relay.clone()),
        target_id: Some(peer.peer_id.clone()),
        message: message.to_owned(),
    }
}

fn change_rejected(
    relay: &PeerId,
    peer: &Peer,
    id: DocId,
    r: &Rejection,
    hashes: &[ChangeHash],
) -> wire::Message {
    let count = peer.stats.ephemeral.fetch_add(1, Ordering::Relaxed) + 1;
    let payload = wire::ChangeRejected {
        rule: r.rule.name().to_owned(),
        reason: r.reason.clone(),
        changes: hashes.iter().map(hex_hash).collect(),
    }
    .encode();
    wire::Message::Ephemeral {
        sender_id: relay.clone(),
        target_id: peer.peer_id.clone(),
        count,
        session_id: "relay".into(),
        document_id: id.into(),
        data: payload,
    }
}

#[cfg(test)]
mod tests;
