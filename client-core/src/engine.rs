// Long file: the device's sync state machine: one state and its transitions (its tests are in engine/tests.rs).
//! The sync engine: the device's half of the automerge-repo protocol with the
//! relay, as a state machine with no IO (after automerge's `sync.rs` and
//! samod-core). [`Input`]s go in (connected, a decoded message, disconnected);
//! [`Effect`]s come out (messages to send, changes and sync states to store,
//! acknowledgements, resets with quarantine, purges). The transport moves
//! bytes; the device applies the effects to its store in one transaction per
//! input. Tests drive it against an in-test relay on a simulated network.
//!
//! What it does, per DESIGN.md §3–§5 and the relay contract:
//! - `join` → `peer`; then one `request` (no local copy) or `sync` per document;
//! - follows the inbox document: new URLs are requested, URLs that left it are
//!   purged once every local change in them is acknowledged (the relay's heads
//!   include it);
//! - `change-rejected` (an `ephemeral` message): the document is reset (its
//!   local changes the relay does not have go to the quarantine) and fetched
//!   again with a `request` on a fresh sync state;
//! - sync states keep only their shared heads across connections, so a
//!   reconnect exchanges only what changed;
//! - on reconnecting, the documents it holds unchanged are not synced one by
//!   one: it sends the digests of their heads in one message (on its inbox
//!   document) and the relay names those that changed;
//! - documents are opened a window at a time ([`WINDOW`]), so a device that
//!   holds thousands completes its first sync at the relay's pace instead of
//!   asking for all of them at once.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use schema::inbox::{Access, Inbox, InboxEntry};
use schema::wire::{
    self, DocumentId, HeadsDigests, Message, PROTOCOL_V1, PeerId, PeerMetadata, Stale,
};
use schema::{DocId, DocUrl};

use crate::store::Listing;

/// Who the engine is.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// This device's peer id (sent in `join`).
    pub peer_id: PeerId,
    /// This device's Automerge actor: its own changes are the ones it may quarantine.
    pub actor: ActorId,
    /// The user's inbox document, if known.
    pub inbox: Option<DocId>,
    /// The relay's storage epoch this device last synced with (the `peer`
    /// message's `storageId`). When the relay answers with another one it was
    /// restored from a backup: every saved sync state is forgotten, so the
    /// device sends again whatever the relay lacks.
    pub relay_epoch: Option<String>,
}

/// A document handed to the engine at the start of a session.
#[derive(Debug)]
pub struct LocalDoc {
    /// Which.
    pub id: DocId,
    /// Its content (possibly empty: not fetched yet).
    pub doc: Automerge,
    /// The saved sync state with this relay.
    pub sync_state: Option<Vec<u8>>,
    /// Whether it is on the inbox.
    pub listing: Listing,
    /// Local changes the relay does not have yet.
    pub unacked: Vec<ChangeHash>,
}

/// What happened.
#[derive(Debug)]
pub enum Input {
    /// The transport is open: send `join`.
    Connected,
    /// A message from the relay.
    Received(Message),
    /// The transport closed.
    Disconnected,
}

/// What the device must do.
#[derive(Debug)]
pub enum Effect {
    /// Send this message.
    Send(Message),
    /// Store these new changes (an incremental chunk) of a document.
    StoreChanges {
        /// Which document.
        doc: DocId,
        /// `Automerge::save_after` of the heads before.
        chunk: Vec<u8>,
        /// How many changes.
        count: usize,
    },
    /// The relay has a new storage epoch (restored from a backup, or first
    /// seen): forget every saved sync state with it and remember the epoch.
    RelayEpoch {
        /// The relay's storage epoch.
        epoch: String,
    },
    /// Store the sync state of a document.
    StoreSyncState {
        /// Which document.
        doc: DocId,
        /// `sync::State::encode`.
        state: Vec<u8>,
    },
    /// The relay now has these local changes.
    Acked {
        /// Which document.
        doc: DocId,
        /// The changes.
        hashes: Vec<ChangeHash>,
    },
    /// The inbox lists this document.
    Listed {
        /// Which document.
        doc: DocId,
        /// What the inbox says.
        entry: InboxEntry,
    },
    /// The document left the inbox: purge once flushed.
    Delisted {
        /// Which document.
        doc: DocId,
    },
    /// Drop the local copy: the relay hard-rejected a change. Quarantine
    /// these local changes (the relay does not have them), then refetch.
    Reset {
        /// Which document.
        doc: DocId,
        /// Local changes to quarantine.
        quarantine: Vec<Change>,
        /// The relay's rule.
        rule: String,
        /// The relay's reason.
        reason: String,
    },
    /// Quarantined changes the refetched document holds after all.
    Released {
        /// Which document.
        doc: DocId,
        /// The changes.
        hashes: Vec<ChangeHash>,
    },
    /// Delete the document (access ended). Quarantine these changes first:
    /// the relay could no longer take them.
    Purge {
        /// Which document.
        doc: DocId,
        /// Local changes the relay never acknowledged.
        quarantine: Vec<Change>,
    },
    /// The relay will not sync this document with this user.
    Unavailable {
        /// Which document.
        doc: DocId,
    },
    /// The relay sent `error`; it closes the connection next.
    Close {
        /// The relay's message.
        reason: String,
    },
    /// A message could not be used (logged; the session goes on).
    Problem {
        /// What was wrong.
        what: String,
    },
}

/// Counts for the sync summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Changes sent to the relay.
    pub changes_up: u64,
    /// Changes received from the relay.
    pub changes_down: u64,
    /// Sync messages sent.
    pub messages_up: u64,
    /// Sync messages received.
    pub messages_down: u64,
    /// Documents reset after a `change-rejected`.
    pub resets: u64,
    /// Documents purged.
    pub purged: u64,
}

/// How many documents are opened at once (a `request` or first `sync` sent,
/// no answer yet): the rest wait their turn, so a first sync of thousands
/// goes at the relay's pace.
pub const WINDOW: usize = 32;

#[derive(Debug)]
struct DocSync {
    doc: Automerge,
    state: sync::State,
    listing: Listing,
    unacked: BTreeSet<ChangeHash>,
    /// A message about it came from the relay in this connection.
    heard: bool,
    /// The relay answered `doc-unavailable`.
    unavailable: bool,
    /// Quarantined at a reset: released if the refetched document has them.
    quarantined: BTreeSet<ChangeHash>,
    /// The relay confirmed (by heads digest) that it has exactly this copy:
    /// nothing to exchange in this connection.
    confirmed: bool,
}

impl DocSync {
    fn new(
        doc: Automerge,
        state: sync::State,
        listing: Listing,
        unacked: BTreeSet<ChangeHash>,
    ) -> Self {
        Self {
            doc,
            state,
            listing,
            unacked,
            heard: false,
            unavailable: false,
            quarantined: BTreeSet::new(),
            confirmed: false,
        }
    }

    fn in_sync(&self) -> bool {
        if self.unavailable || self.confirmed {
            return true;
        }
        let mut ours = self.doc.get_heads();
        ours.sort();
        self.heard
            && self.state.their_heads.as_ref().is_some_and(|t| {
                let mut t = t.clone();
                t.sort();
                t == ours
            })
    }
}

/// The device's sync state machine for one relay.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    relay: Option<PeerId>,
    docs: BTreeMap<DocId, DocSync>,
    stats: Stats,
    /// Documents waiting for a place in the window.
    queue: VecDeque<DocId>,
    /// Documents opened and not answered yet (at most [`WINDOW`]).
    in_flight: BTreeSet<DocId>,
    /// The documents whose digests were sent, until the relay answers.
    digests_sent: Option<BTreeSet<DocId>>,
}

/// The CBOR body of a `change-rejected` ephemeral message.
#[derive(Debug, serde::Deserialize)]
struct ChangeRejected {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    rule: String,
    #[serde(default)]
    reason: String,
}

impl Engine {
    /// An engine holding these documents; the inbox is added (empty) if missing.
    pub fn new(config: EngineConfig, docs: Vec<LocalDoc>) -> Self {
        let mut map = BTreeMap::new();
        for d in docs {
            let state = d
                .sync_state
                .and_then(|b| sync::State::decode(&b).ok())
                .unwrap_or_default();
            map.insert(
                d.id,
                DocSync::new(d.doc, state, d.listing, d.unacked.into_iter().collect()),
            );
        }
        if let Some(inbox) = config.inbox {
            map.entry(inbox).or_insert_with(|| {
                DocSync::new(
                    Automerge::new().with_actor(config.actor.clone()),
                    sync::State::new(),
                    Listing::Listed,
                    BTreeSet::new(),
                )
            });
        }
        Self {
            config,
            relay: None,
            docs: map,
            stats: Stats::default(),
            queue: VecDeque::new(),
            in_flight: BTreeSet::new(),
            digests_sent: None,
        }
    }

    /// The counts so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A document's current content.
    pub fn doc(&self, id: DocId) -> Option<&Automerge> {
        self.docs.get(&id).map(|d| &d.doc)
    }

    /// The documents the engine holds.
    pub fn doc_ids(&self) -> Vec<DocId> {
        self.docs.keys().copied().collect()
    }

    /// Whether the relay has answered `peer`.
    pub fn is_connected(&self) -> bool {
        self.relay.is_some()
    }

    /// Whether every document is in sync with the relay (or unavailable) and
    /// no purge waits: a `sync_once` may stop here.
    pub fn is_idle(&self) -> bool {
        self.relay.is_some()
            && self.digests_sent.is_none()
            && self.queue.is_empty()
            && self
                .docs
                .values()
                .all(|d| d.in_sync() && d.listing != Listing::Delisted)
    }

    /// Documents not yet in sync (for progress lines).
    pub fn outstanding(&self) -> usize {
        self.docs.values().filter(|d| !d.in_sync()).count()
    }

    /// Adds a local change made while connected, and sends it.
    pub fn local_change(&mut self, id: DocId, change: Change) -> Vec<Effect> {
        let mut out = Vec::new();
        let hash = change.hash();
        let entry = self.docs.entry(id).or_insert_with(|| {
            DocSync::new(
                Automerge::new().with_actor(self.config.actor.clone()),
                sync::State::new(),
                Listing::Local,
                BTreeSet::new(),
            )
        });
        if let Err(e) = entry.doc.apply_changes([change]) {
            out.push(Effect::Problem {
                what: format!("local change to {id} not applicable: {e}"),
            });
            return out;
        }
        entry.unacked.insert(hash);
        entry.confirmed = false;
        self.send_sync(id, false, &mut out);
        out
    }

    /// Feeds one input; returns what to do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Effect> {
        let mut out = Vec::new();
        match input {
            Input::Connected => out.push(Effect::Send(Message::Join {
                sender_id: self.config.peer_id.clone(),
                peer_metadata: Some(PeerMetadata {
                    storage_id: None,
                    is_ephemeral: false,
                }),
                supported_protocol_versions: Some(vec![PROTOCOL_V1.to_owned()]),
            })),
            Input::Disconnected => {
                self.relay = None;
                self.queue.clear();
                self.in_flight.clear();
                self.digests_sent = None;
                for d in self.docs.values_mut() {
                    // Keep only the shared heads, as a reconnect would load them.
                    d.state = sync::State::decode(&d.state.encode()).unwrap_or_default();
                    d.heard = false;
                    d.unavailable = false;
                    d.confirmed = false;
                }
            }
            Input::Received(msg) => self.receive(msg, &mut out),
        }
        out
    }

    fn receive(&mut self, msg: Message, out: &mut Vec<Effect>) {
        match msg {
            Message::Peer {
                sender_id,
                peer_metadata,
                ..
            } => {
                self.relay = Some(sender_id);
                let epoch = peer_metadata.and_then(|m| m.storage_id);
                if let Some(epoch) = epoch
                    && self.config.relay_epoch.as_ref() != Some(&epoch)
                {
                    // What we saved about the relay may describe data it no
                    // longer has: start every exchange from nothing, every
                    // document synced (no digests: the relay was restored or
                    // is met for the first time).
                    for d in self.docs.values_mut() {
                        d.state = sync::State::new();
                    }
                    self.config.relay_epoch = Some(epoch.clone());
                    out.push(Effect::RelayEpoch { epoch });
                    let ids: Vec<DocId> = self.docs.keys().copied().collect();
                    for id in ids {
                        self.start(id, out);
                    }
                } else {
                    self.connected(out);
                }
            }
            Message::Sync {
                document_id, data, ..
            }
            | Message::Request {
                document_id, data, ..
            } => self.receive_sync(DocId::from(&document_id), &data, out),
            Message::DocUnavailable { document_id, .. } => {
                self.unavailable(DocId::from(&document_id), out);
            }
            Message::Ephemeral {
                document_id, data, ..
            } => self.ephemeral(DocId::from(&document_id), &data, out),
            Message::Error { message, .. } => out.push(Effect::Close { reason: message }),
            Message::Join { .. }
            | Message::Leave { .. }
            | Message::RemoteSubscriptionChange { .. }
            | Message::RemoteHeadsChanged { .. }
            | Message::Unknown { .. } => {}
        }
    }

    /// Connected: the inbox at once; documents with local changes or no
    /// copy yet in the window; the others' digests in one question.
    fn connected(&mut self, out: &mut Vec<Effect>) {
        let inbox = self.config.inbox;
        let mut digests = Vec::new();
        let ids: Vec<DocId> = self.docs.keys().copied().collect();
        for id in ids {
            let Some(d) = self.docs.get(&id) else {
                continue;
            };
            let heads = d.doc.get_heads();
            let must = heads.is_empty() || !d.unacked.is_empty() || d.listing == Listing::Local;
            if Some(id) == inbox {
                self.send_sync(id, heads.is_empty(), out);
            } else if must || inbox.is_none() {
                self.start(id, out);
            } else {
                digests.push((id, wire::heads_digest(&heads)));
            }
        }
        if let (Some(inbox), false) = (inbox, digests.is_empty()) {
            let Some(relay) = self.relay.clone() else {
                return;
            };
            self.digests_sent = Some(digests.iter().map(|(id, _)| *id).collect());
            out.push(Effect::Send(Message::Ephemeral {
                sender_id: self.config.peer_id.clone(),
                target_id: relay,
                count: 1,
                session_id: "device".into(),
                document_id: DocumentId::from(inbox),
                data: HeadsDigests { docs: digests }.encode(),
            }));
        }
    }

    /// The relay named documents that changed: those are synced. In answer
    /// to the digests, the others asked about are confirmed as they are; a
    /// notice later in the connection (a confirmed document changed on the
    /// relay) names only the one to sync again.
    fn stale(&mut self, stale: Stale, out: &mut Vec<Effect>) {
        let named: BTreeSet<DocId> = stale.docs.into_iter().collect();
        if let Some(asked) = self.digests_sent.take() {
            for id in asked.difference(&named) {
                if let Some(d) = self.docs.get_mut(id) {
                    d.confirmed = true;
                }
            }
        }
        for id in named {
            let Some(d) = self.docs.get_mut(&id) else {
                continue;
            };
            d.confirmed = false;
            self.start(id, out);
        }
    }

    /// Opens the exchange for one document (`request` without a local copy,
    /// `sync` with one) when the window has room; it waits its turn otherwise.
    fn start(&mut self, id: DocId, out: &mut Vec<Effect>) {
        if !self.in_flight.contains(&id) && !self.queue.contains(&id) {
            self.queue.push_back(id);
        }
        self.pump(out);
    }

    /// Opens waiting documents while the window has room.
    fn pump(&mut self, out: &mut Vec<Effect>) {
        while self.in_flight.len() < WINDOW {
            let Some(id) = self.queue.pop_front() else {
                return;
            };
            let Some(d) = self.docs.get(&id) else {
                continue;
            };
            let request = d.doc.get_heads().is_empty();
            self.in_flight.insert(id);
            self.send_sync(id, request, out);
        }
    }

    /// A document was answered: its place in the window goes to the next.
    fn answered(&mut self, id: DocId, out: &mut Vec<Effect>) {
        if self.in_flight.remove(&id) {
            self.pump(out);
        }
    }

    fn send_sync(&mut self, id: DocId, request: bool, out: &mut Vec<Effect>) {
        let Some(relay) = self.relay.clone() else {
            return;
        };
        let Some(d) = self.docs.get_mut(&id) else {
            return;
        };
        let Some(msg) = d.doc.generate_sync_message(&mut d.state) else {
            return;
        };
        self.stats.changes_up += u64::try_from(msg.changes.len()).unwrap_or(u64::MAX);
        self.stats.messages_up += 1;
        let data = msg.encode();
        let document_id = DocumentId::from(id);
        let sender_id = self.config.peer_id.clone();
        out.push(Effect::Send(if request {
            Message::Request {
                sender_id,
                target_id: relay,
                document_id,
                data,
            }
        } else {
            Message::Sync {
                sender_id,
                target_id: relay,
                document_id,
                data,
            }
        }));
    }

    fn receive_sync(&mut self, id: DocId, data: &[u8], out: &mut Vec<Effect>) {
        let Some(d) = self.docs.get_mut(&id) else {
            // The relay never announces documents we did not ask for; one we
            // purged a moment ago may still get a late message.
            return;
        };
        let msg = match sync::Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                out.push(Effect::Problem {
                    what: format!("bad sync message for {id}: {e}"),
                });
                return;
            }
        };
        self.stats.messages_down += 1;
        let before = d.doc.get_heads();
        if let Err(e) = d.doc.receive_sync_message(&mut d.state, msg) {
            out.push(Effect::Problem {
                what: format!("sync message for {id} not applicable: {e}"),
            });
            return;
        }
        d.heard = true;
        d.unavailable = false;
        let after = d.doc.get_heads();
        if after != before {
            let count = d.doc.get_changes(&before).len();
            self.stats.changes_down += u64::try_from(count).unwrap_or(u64::MAX);
            out.push(Effect::StoreChanges {
                doc: id,
                chunk: d.doc.save_after(&before),
                count,
            });
        }
        out.push(Effect::StoreSyncState {
            doc: id,
            state: d.state.encode(),
        });
        if !d.unacked.is_empty() {
            let not_shared: BTreeSet<ChangeHash> = d
                .doc
                .get_changes(&d.state.shared_heads)
                .iter()
                .map(Change::hash)
                .collect();
            let acked: Vec<ChangeHash> = d
                .unacked
                .iter()
                .filter(|h| !not_shared.contains(h))
                .copied()
                .collect();
            if !acked.is_empty() {
                for h in &acked {
                    d.unacked.remove(h);
                }
                out.push(Effect::Acked {
                    doc: id,
                    hashes: acked,
                });
            }
        }
        if !d.quarantined.is_empty() {
            let held: Vec<ChangeHash> = d
                .quarantined
                .iter()
                .filter(|h| d.doc.get_change_by_hash(h).is_some())
                .copied()
                .collect();
            if !held.is_empty() {
                for h in &held {
                    d.quarantined.remove(h);
                }
                out.push(Effect::Released {
                    doc: id,
                    hashes: held,
                });
            }
        }
        self.send_sync(id, false, out);
        if Some(id) == self.config.inbox && after != before {
            self.follow_inbox(out);
        } else if self
            .docs
            .get(&id)
            .is_some_and(|d| d.listing == Listing::Local)
        {
            let listed = self.listed();
            self.settle_local(id, listed.as_ref(), out);
        }
        self.maybe_purge(id, out);
        self.answered(id, out);
    }

    /// The documents the inbox lists, if it reads.
    fn listed(&self) -> Option<BTreeSet<DocId>> {
        let inbox = self.docs.get(&self.config.inbox?)?;
        let inbox = schema::doc::read_inbox(&inbox.doc).ok()?;
        Some(inbox.docs.keys().map(DocUrl::id).collect())
    }

    /// A ticket made on this device that the relay has whole and closed, and
    /// that the inbox does not list, leaves the device as a delisted one
    /// does: an inbox lists open work, and a ticket recorded already done
    /// (an on-site report completed at once) is never listed.
    fn settle_local(&mut self, id: DocId, listed: Option<&BTreeSet<DocId>>, out: &mut Vec<Effect>) {
        let Some(listed) = listed else { return };
        let Some(d) = self.docs.get_mut(&id) else {
            return;
        };
        if d.listing != Listing::Local
            || !d.unacked.is_empty()
            || listed.contains(&id)
            || !closed_ticket(&d.doc)
        {
            return;
        }
        d.listing = Listing::Delisted;
        out.push(Effect::Delisted { doc: id });
    }

    fn follow_inbox(&mut self, out: &mut Vec<Effect>) {
        let Some(inbox_id) = self.config.inbox else {
            return;
        };
        let Some(inbox) = self.docs.get(&inbox_id) else {
            return;
        };
        let inbox: Inbox = match schema::doc::read_inbox(&inbox.doc) {
            Ok(i) => i,
            Err(e) => {
                out.push(Effect::Problem {
                    what: format!("inbox unreadable: {e}"),
                });
                return;
            }
        };
        let listed: BTreeSet<DocId> = inbox.docs.keys().map(DocUrl::id).collect();
        for (url, entry) in &inbox.docs {
            let id = url.id();
            if id == inbox_id {
                continue;
            }
            let new = !self.docs.contains_key(&id);
            let d = self.docs.entry(id).or_insert_with(|| {
                DocSync::new(
                    Automerge::new().with_actor(self.config.actor.clone()),
                    sync::State::new(),
                    Listing::Listed,
                    BTreeSet::new(),
                )
            });
            d.listing = Listing::Listed;
            out.push(Effect::Listed {
                doc: id,
                entry: entry.clone(),
            });
            if new {
                self.start(id, out);
            }
        }
        let gone: Vec<DocId> = self
            .docs
            .iter()
            .filter(|(id, d)| {
                **id != inbox_id && d.listing == Listing::Listed && !listed.contains(id)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(d) = self.docs.get_mut(&id) {
                d.listing = Listing::Delisted;
            }
            out.push(Effect::Delisted { doc: id });
            self.maybe_purge(id, out);
        }
        let local: Vec<DocId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.listing == Listing::Local)
            .map(|(id, _)| *id)
            .collect();
        for id in local {
            self.settle_local(id, Some(&listed), out);
            self.maybe_purge(id, out);
        }
    }

    /// Purges a delisted document once the relay has every local change in
    /// it, or at once if the relay will no longer sync it (its unsent local
    /// changes then go to the quarantine).
    fn maybe_purge(&mut self, id: DocId, out: &mut Vec<Effect>) {
        let Some(d) = self.docs.get(&id) else { return };
        if d.listing != Listing::Delisted || !(d.unacked.is_empty() || d.unavailable) {
            return;
        }
        let quarantine = if d.unacked.is_empty() {
            Vec::new()
        } else {
            own_unshared(&d.doc, &d.state, &self.config.actor)
        };
        self.docs.remove(&id);
        self.stats.purged += 1;
        out.push(Effect::Purge {
            doc: id,
            quarantine,
        });
    }

    fn unavailable(&mut self, id: DocId, out: &mut Vec<Effect>) {
        self.answered(id, out);
        let Some(d) = self.docs.get_mut(&id) else {
            return;
        };
        d.unavailable = true;
        d.heard = true;
        if d.listing == Listing::Delisted {
            // Access ended before the last local changes were flushed: they
            // cannot reach the relay any more, so they go to the quarantine.
            self.maybe_purge(id, out);
        } else {
            out.push(Effect::Unavailable { doc: id });
        }
    }

    fn ephemeral(&mut self, id: DocId, data: &[u8], out: &mut Vec<Effect>) {
        let limits = wire::Limits {
            max_frame_bytes: usize::MAX,
            ..wire::Limits::default()
        };
        if let Some(stale) = Stale::decode(data, &limits) {
            self.stale(stale, out);
            return;
        }
        let Ok(notice) = ciborium::from_reader::<ChangeRejected, _>(data) else {
            return;
        };
        if notice.kind != "change-rejected" {
            return;
        }
        let actor = self.config.actor.clone();
        let Some(d) = self.docs.get_mut(&id) else {
            return;
        };
        let quarantine = own_unshared(&d.doc, &d.state, &actor);
        d.quarantined = quarantine.iter().map(Change::hash).collect();
        d.doc = Automerge::new().with_actor(actor);
        d.state = sync::State::new();
        d.unacked.clear();
        d.heard = false;
        self.stats.resets += 1;
        out.push(Effect::Reset {
            doc: id,
            quarantine,
            rule: notice.rule,
            reason: notice.reason,
        });
        self.send_sync(id, true, out);
    }
}

/// This actor's changes that are not behind the shared heads: the relay may not have them.
fn own_unshared(doc: &Automerge, state: &sync::State, actor: &ActorId) -> Vec<Change> {
    doc.get_changes(&state.shared_heads)
        .into_iter()
        .filter(|c| c.actor_id() == actor)
        .collect()
}

/// Whether the inbox lets the user append to a document.
/// Whether `doc` is a ticket whose official status is final.
fn closed_ticket(doc: &Automerge) -> bool {
    matches!(
        schema::doc::doc_kind(doc),
        Some(schema::inbox::DocKind::Ticket)
    ) && schema::doc::read_ticket(doc, None).is_ok_and(|t| {
        schema::Projection::official(&t, &schema::Policy::default())
            .status
            .is_terminal()
    })
}

pub(crate) fn is_read_only(entry: &InboxEntry) -> bool {
    entry.access == Access::ReadOnly
}

#[cfg(test)]
mod tests;
