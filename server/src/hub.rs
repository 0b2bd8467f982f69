//! The hub: the async shell around the relay's core ([`relay_core`]). It
//! keeps the documents in use in memory (a slot each, locked for one step at
//! a time), the connections and their outgoing queues, and runs each step's
//! IO: load the document, let the core judge the batch off the async
//! threads, store the core's commit, send the core's messages. Whether a
//! peer may sync a document, what a change is judged to be, what is stored
//! and what is sent are the core's decisions.
//!
//! - `slots.rs`: documents in memory: lock and load, eviction, revival;
//! - `sync.rs`: a peer's sync message, end to end;
//! - `write.rs`: the relay's own writes and dashboard users' changes;
//! - `inboxes.rs`: the inbox keeper (durable outbox, start-up audit).
//!
//! **Architecture Invariant:** one document's work is serialised by its
//! slot's lock; different documents run in parallel; no message leaves
//! before the commit that holds its changes.

mod inboxes;
mod slots;
mod sync;
mod write;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use automerge::ActorId;
use chrono::{DateTime, Utc};
use relay_core::document::PeerInfo;
use relay_core::ledger::ChangeOutcome;
use relay_core::{Effect, Limits, messages};
use schema::wire::{self, PeerId};
use schema::{DeviceId, DocId, Policy, Principal, UserId};
use tokio::sync::{broadcast, mpsc};

use crate::store::StoreError;
use crate::store::records;
use crate::store::storage::{SecurityEntry, Storage};

pub(crate) use relay_core::ConnId;

/// The relay's clock; passed in so tests can move time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

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

    fn count(&self, outcome: ChangeOutcome) {
        crate::metrics::change(outcome.as_str());
        let counter = match outcome {
            ChangeOutcome::Accepted => &self.accepted,
            ChangeOutcome::Conflict => &self.conflict,
            ChangeOutcome::Rejected => &self.rejected,
            ChangeOutcome::HardRejected => &self.hard_rejected,
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
    pub(crate) stats: Arc<SessionStats>,
}

impl Peer {
    /// The peer as documents see it.
    fn info(&self) -> PeerInfo {
        PeerInfo {
            conn: self.conn,
            peer_id: self.peer_id.clone(),
            principal: self.principal.clone(),
            session: self.session,
        }
    }
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
    /// Judging panicked outside automerge's guards; the document is read
    /// again from the store at its next use.
    #[error("validation was interrupted")]
    Interrupted,
}

/// A registered connection: its device and user, its queue, its counters.
#[derive(Debug)]
struct Connection {
    device: DeviceId,
    user: UserId,
    out: mpsc::Sender<Outgoing>,
    stats: Arc<SessionStats>,
}

/// The document hub. One per relay; cheap handles are `Arc<Hub>`.
pub(crate) struct Hub {
    pub(crate) store: Arc<dyn Storage>,
    pub(crate) policy: Policy,
    pub(crate) relay_actor: ActorId,
    pub(crate) relay_peer: PeerId,
    /// The storage epoch (new on every restore), sent to devices as the
    /// `peer` message's `storageId`.
    pub(crate) storage_epoch: Option<String>,
    pub(crate) limits: Limits,
    pub(crate) clock: Clock,
    /// The secret dashboard users' actors are derived from (kept in the
    /// database, never in a document).
    web_key: [u8; 32],
    slots: slots::Slots,
    /// Actor bindings seen so far (a binding never changes once made).
    actors: Arc<Mutex<HashMap<ActorId, (DeviceId, UserId)>>>,
    pub(crate) live: broadcast::Sender<Live>,
    conns: Mutex<HashMap<ConnId, Connection>>,
    next_conn: AtomicU64,
    inboxes: inboxes::Keeper,
    watchers: sync::Watchers,
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
            storage_epoch: None,
            limits: Limits::default(),
            clock,
            web_key,
            slots: slots::Slots::default(),
            actors: Arc::new(Mutex::new(HashMap::new())),
            live,
            conns: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
            inboxes: inboxes::Keeper::default(),
            watchers: sync::Watchers::default(),
            stopping: tokio::sync::watch::Sender::new(false),
        }
    }

    /// Relay actors a restore retired: their changes, coming back up from
    /// devices, are refused as another device's, never bound to the sender.
    pub(crate) fn retire_actors(&self, retired: &[ActorId]) {
        let relay = (
            DeviceId::new("relay.before-restore")
                .unwrap_or_else(|_| unreachable!("a valid device id")),
            UserId::new("relay").unwrap_or_else(|_| unreachable!("a valid user id")),
        );
        if let Ok(mut cache) = self.actors.lock() {
            for a in retired {
                cache.insert(a.clone(), relay.clone());
            }
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

    /// The actor a dashboard user's changes are made with.
    pub(crate) fn web_actor(&self, user: &UserId) -> ActorId {
        web_actor(&self.web_key, user)
    }

    // ------------------------------------------------------------ connections

    /// Registers a connection so documents, revocation and role changes can reach it.
    pub(crate) fn connect(
        &self,
        device: DeviceId,
        user: UserId,
        out: mpsc::Sender<Outgoing>,
        stats: Arc<SessionStats>,
    ) -> ConnId {
        let id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut c) = self.conns.lock() {
            c.insert(
                id,
                Connection {
                    device,
                    user,
                    out,
                    stats,
                },
            );
        }
        id
    }

    /// Forgets a connection and its sync states.
    /// How many tickets wait for their inboxes to be written.
    pub(crate) fn inbox_queue_len(&self) -> usize {
        self.inboxes.len()
    }

    pub(crate) async fn disconnect(&self, conn: ConnId) {
        if let Ok(mut c) = self.conns.lock() {
            c.remove(&conn);
        }
        self.watchers.drop_conn(conn);
        self.slots.forget(conn).await;
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
        for conn in c.values() {
            if device.is_some_and(|x| x == &conn.device) || user.is_some_and(|x| x == &conn.user) {
                let _ = conn.out.try_send(Outgoing::Close(reason.to_owned()));
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
            for conn in c.values() {
                let _ = conn
                    .out
                    .try_send(Outgoing::Close("the relay is shutting down".into()));
            }
        }
    }

    /// How many connections are open.
    pub(crate) fn connection_count(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }

    /// Sends what the core decided.
    fn run(&self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Send(conn, msg) => self.send_to(conn, msg),
                Effect::Reject {
                    conn,
                    peer,
                    doc,
                    rejection,
                    changes,
                } => {
                    let count = self
                        .conns
                        .lock()
                        .ok()
                        .and_then(|c| {
                            c.get(&conn)
                                .map(|c| c.stats.ephemeral.fetch_add(1, Ordering::Relaxed) + 1)
                        })
                        .unwrap_or(1);
                    let msg = messages::change_rejected(
                        &self.relay_peer,
                        &peer,
                        doc,
                        &rejection,
                        &changes,
                        count,
                    );
                    self.send_to(conn, msg);
                }
            }
        }
    }

    /// Queues a message for a connection; one that does not drain its queue
    /// is closed (it resyncs on reconnect).
    fn send_to(&self, conn: ConnId, msg: wire::Message) {
        let Ok(c) = self.conns.lock() else { return };
        if let Some(c) = c.get(&conn)
            && c.out.try_send(Outgoing::Msg(msg)).is_err()
        {
            let _ = c.out.try_send(Outgoing::Close("too slow".into()));
        }
    }

    /// Refuses a malformed sync message: a security-log row and an `error`.
    async fn refuse(&self, peer: &Peer, id: DocId, why: &str) {
        let entry = SecurityEntry::of_principal(self.now(), &peer.principal, "malformed_sync")
            .peer(peer.peer_id.to_string())
            .detail(format!("document {id}: {why}"));
        let _ = self.store.log_refusal(entry, None).await;
        self.send_to(
            peer.conn,
            messages::error(
                &self.relay_peer,
                Some(&peer.peer_id),
                &format!("malformed sync message for {id}: {why}"),
            ),
        );
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

#[cfg(test)]
mod tests;
