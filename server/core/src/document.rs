// Long file: one document's state machine on the relay (receive, judge, commit, replies); the judging itself is batch.rs.
//! One document as the relay holds it, and every decision its sync path
//! makes, as data in and effects out: which peer may sync it, what a sync
//! message means for the peer's sync state, what a batch of changes is
//! judged to be and what the store must write for it, how the document
//! stands after the store wrote it, and which messages go to whom. The hub
//! (the async shell) loads, locks, stores and sends; it decides nothing.
//!
//! A step, for a peer's sync message:
//! 1. [`Document::admits`] (the hub asks the store for the peer's explicit
//!    grants first when [`Document::needs_grants`] says so);
//! 2. [`Document::receive`]: the sync state takes the message, its changes
//!    come back to be judged;
//! 3. [`Document::judge`] (CPU-heavy; off the async threads): a [`Step`]
//!    holding the [`Commit`] to store;
//! 4. the hub stores the commit, then [`Document::committed`];
//! 5. [`Document::replies`]: the sender's answer and every other peer's
//!    update.
//!
//! **Architecture Invariant:** nothing here does IO, awaits or reads a
//! clock: the time comes in with the context.

use std::collections::{HashMap, HashSet};

use automerge::sync::{ChunkList, Message as SyncMessage, State as SyncState, SyncDoc};
use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use schema::access::{self, DocClass, TicketMeta};
use schema::doc::{self, read_ticket};
use schema::inbox::DocKind;
use schema::wire::{self, PeerId};
use schema::{Action, DocId, Outcome, Policy, Principal, Projection, Serial};

use crate::batch::{self, Bindings, Incoming, Ingest, Summary};
use crate::commit::{Commit, Seal};
use crate::ledger::{
    ChangeEntry, ChangeOutcome, Resolution, ReviewEntry, ReviewKind, VerdictEntry,
};
use crate::messages;
use crate::validate::{self, Limits, Rejection};

/// A connection, as documents address it.
pub type ConnId = u64;

/// A peer syncing a document: its connection, its announced peer id, who it
/// is (the token's user and device, whatever it announced), its session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub conn: ConnId,
    pub peer_id: PeerId,
    pub principal: Principal,
    pub session: Option<i64>,
}

/// The most change bytes one peer may have waiting for dependencies in one
/// document; past it the oldest are dropped (the peer resends them on its
/// next connection, when the relay's `have` no longer lists them).
pub const MAX_PARKED_BYTES: usize = 8 << 20;

#[derive(Debug)]
struct PeerSync {
    info: PeerInfo,
    sync: SyncState,
    /// Changes this peer sent whose dependencies the relay does not have
    /// yet: they wait here (bounded by [`MAX_PARKED_BYTES`]) and the
    /// relay's replies ask for the missing dependencies by hash. The peer's
    /// sync state counts them as sent, so dropping them would leave the two
    /// sides asking each other for nothing, message after message.
    parked: Vec<Change>,
    /// Messages on this document the rate limit may still give back as
    /// progress ([`Document::credit`]).
    credit: u8,
}

/// How many of a peer's messages on one document, in one connection, may
/// count as progress: a first sync takes two or three, a flood of messages
/// that only toggle what the peer claims to have gets no more.
pub const PROGRESS_CREDIT: u8 = 16;

impl PeerSync {
    fn fresh(info: PeerInfo) -> Self {
        Self {
            info,
            credit: PROGRESS_CREDIT,
            sync: SyncState::new(),
            parked: Vec::new(),
        }
    }
}

/// What to do about a peer.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this message to that connection.
    Send(ConnId, wire::Message),
    /// Tell that connection its changes were refused (a `change-rejected`
    /// ephemeral message: the hub numbers it per connection).
    Reject {
        conn: ConnId,
        peer: PeerId,
        doc: DocId,
        rejection: Rejection,
        changes: Vec<ChangeHash>,
    },
}

/// Why a document read from storage cannot be served.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Unreadable(String);

/// A document in memory, with the peers syncing it.
#[derive(Debug)]
pub struct Document {
    id: DocId,
    doc: Automerge,
    class: Option<DocClass>,
    persisted: Vec<ChangeHash>,
    snapshot_len: usize,
    peers: HashMap<ConnId, PeerSync>,
    /// What judging the next batch needs of the ticket as it stands, kept
    /// from the last commit so a change does not hydrate the whole ticket
    /// twice more; valid only while `doc` is at `Summary::heads`.
    summary: Option<Summary>,
}

/// The class of a stored document, from its type.
///
/// # Errors
/// A ticket or inbox that does not read as its schema.
pub fn classify(id: DocId, doc: &Automerge) -> Result<Option<DocClass>, Unreadable> {
    Ok(match doc::doc_kind(doc) {
        Some(DocKind::Ticket) => match read_ticket(doc, None) {
            Ok(t) => Some(DocClass::Ticket(TicketMeta::of(
                &t,
                &Projection::official(&t, &Policy::default()),
            ))),
            Err(e) => return Err(Unreadable(format!("ticket {id}: {e}"))),
        },
        Some(DocKind::Household) => Some(DocClass::Household),
        Some(DocKind::HouseholdPrivate) => Some(DocClass::HouseholdPrivate),
        Some(DocKind::Inbox) => match doc::read_inbox(doc) {
            Ok(i) => Some(DocClass::Inbox(i.user)),
            Err(e) => return Err(Unreadable(format!("inbox {id}: {e}"))),
        },
        None => None,
    })
}

/// What [`Document::receive`] made of a sync message.
#[derive(Debug)]
pub struct Received {
    /// The changes it carried, to be judged.
    pub chunks: ChunkList,
    /// The peer had not synced this document on this connection before.
    pub new_peer: bool,
    /// The exchange moved on: the heads both sides share changed.
    pub progressed: bool,
}

/// What [`Document::replies`] decided.
#[derive(Debug, Default)]
pub struct Replies {
    /// The messages to send.
    pub effects: Vec<Effect>,
    /// A creation refused whole: drop the document.
    pub gone: bool,
    /// The sender's reply carries changes it did not have.
    pub sent_changes: bool,
}

/// Everything judging depends on besides the document and the changes.
pub struct JudgeContext<'a> {
    pub relay: &'a ActorId,
    pub policy: &'a Policy,
    pub limits: &'a Limits,
    pub bindings: &'a Bindings<'a>,
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for JudgeContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JudgeContext")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A batch judged, waiting for the store.
#[derive(Debug, Default)]
pub struct Step {
    /// What to store (`None`: nothing received needs storing).
    pub commit: Option<Commit>,
    /// Changes received in this batch (accepted or refused).
    pub received: usize,
    /// Each merged change's outcome (the worst verdict of its events).
    pub outcomes: Vec<ChangeOutcome>,
    /// How many changes were hard-rejected.
    pub hard_rejected: usize,
    /// The first hard rejection, with every refused change's hash.
    pub rejection: Option<(Rejection, Vec<ChangeHash>)>,
    /// Actors bound by this batch (to the sender).
    pub bound: Vec<ActorId>,
    after: After,
}

/// What the document becomes once the step is stored.
#[derive(Debug, Default)]
struct After {
    meta: Option<TicketMeta>,
    kind: Option<DocKind>,
    summary: Option<Summary>,
    status: Option<schema::Status>,
    serial_before: Option<Serial>,
    inbox_queue: bool,
}

/// What the store gives back after committing a step.
#[derive(Debug)]
pub struct Stored {
    /// The serial number taken, if one was due.
    pub serial: Option<Serial>,
    /// The snapshot's new size, if the document was compacted.
    pub snapshot_len: Option<usize>,
    /// The document as committed (`None` if nothing was merged).
    pub doc: Option<Automerge>,
}

/// What a stored step changed, for the hub's live views and inboxes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// A ticket's status and serial after the step (for the live register).
    pub ticket: Option<(schema::Status, Option<Serial>)>,
    /// The ticket's audience may have changed: its inboxes are queued.
    pub inbox_queued: bool,
}

impl Document {
    /// A document the relay does not have yet (a device is creating it).
    pub fn empty(id: DocId, relay: &ActorId) -> Self {
        Self {
            id,
            doc: Automerge::new().with_actor(relay.clone()),
            class: None,
            persisted: Vec::new(),
            snapshot_len: 0,
            peers: HashMap::new(),
            summary: None,
        }
    }

    /// A document read from storage.
    ///
    /// # Errors
    /// When it does not read as its type says.
    pub fn stored(
        id: DocId,
        mut doc: Automerge,
        relay: &ActorId,
        snapshot_len: usize,
    ) -> Result<Self, Unreadable> {
        doc.set_actor(relay.clone());
        let class = classify(id, &doc)?;
        let persisted = doc.get_heads();
        Ok(Self {
            id,
            doc,
            class,
            persisted,
            snapshot_len,
            peers: HashMap::new(),
            summary: None,
        })
    }

    /// Which document.
    pub fn id(&self) -> DocId {
        self.id
    }

    /// The Automerge document.
    pub fn doc(&self) -> &Automerge {
        &self.doc
    }

    /// What the relay knows of it; `None` while it is being created.
    pub fn class(&self) -> Option<&DocClass> {
        self.class.as_ref()
    }

    /// The heads last stored.
    pub fn persisted(&self) -> &[ChangeHash] {
        &self.persisted
    }

    /// The snapshot's size in bytes.
    pub fn snapshot_len(&self) -> usize {
        self.snapshot_len
    }

    // ------------------------------------------------------------ peers

    /// Whether deciding `p`'s access needs the store's explicit grants.
    pub fn needs_grants(&self, p: &Principal) -> bool {
        self.class
            .as_ref()
            .is_some_and(|c| access::needs_grants(p, c))
    }

    /// Whether `peer` may sync this document; `grants` says whether the
    /// store lists it for this document (asked when [`Document::needs_grants`]).
    /// A document being created is open only to the peers creating it.
    pub fn admits(&self, peer: &PeerInfo, grants: bool) -> bool {
        match &self.class {
            None => self.peers.contains_key(&peer.conn),
            Some(c) => access::may_sync(&peer.principal, c, grants),
        }
    }

    /// Whether a device may start creating a document the relay does not
    /// have: not on a `request` (that asks for an existing one), and only
    /// roles that create from a device.
    pub fn may_start(principal: &Principal, fresh: bool) -> bool {
        !fresh && access::may_create(principal)
    }

    /// Forgets a connection's sync state. Returns whether a document being
    /// created has nobody creating it any more (drop it: the device's retry
    /// on a new connection starts afresh).
    pub fn leave(&mut self, conn: ConnId) -> bool {
        self.peers.remove(&conn);
        self.class.is_none() && self.peers.is_empty()
    }

    /// Whether it can leave memory: nobody syncs it, or it exists and no
    /// peer has changes waiting for their dependencies.
    pub fn may_leave_memory(&self) -> bool {
        self.peers.is_empty()
            || (self.class.is_some() && self.peers.values().all(|p| p.parked.is_empty()))
    }

    /// The peers syncing it, as they leave memory with it.
    pub fn into_peers(self) -> Vec<PeerInfo> {
        self.peers.into_values().map(|p| p.info).collect()
    }

    /// Takes back peers that synced it before it left memory, with fresh
    /// sync states: the first message tells them our heads, their answer
    /// says what they lack.
    pub fn revive(&mut self, peers: impl IntoIterator<Item = PeerInfo>) {
        for info in peers {
            self.peers.insert(info.conn, PeerSync::fresh(info));
        }
    }

    // ------------------------------------------------------------ a sync message

    /// Takes a peer's sync message into its sync state (before its changes
    /// are judged, as automerge's own `receive_sync_message` does before
    /// applying them: told afterwards, it would see the peer's heads equal
    /// to ours, take the message for an echo and never reply, and a phone
    /// whose change got no verdict would wait until it stalls). `fresh` (a
    /// `request`) starts the peer's sync state afresh.
    ///
    /// # Errors
    /// Automerge refused the message (its sync state is started afresh).
    pub fn receive(
        &mut self,
        peer: &PeerInfo,
        mut msg: SyncMessage,
        fresh: bool,
    ) -> Result<Received, String> {
        let new_peer = !self.peers.contains_key(&peer.conn);
        let ps = self
            .peers
            .entry(peer.conn)
            .or_insert_with(|| PeerSync::fresh(peer.clone()));
        ps.info = peer.clone();
        if fresh {
            ps.sync = SyncState::new();
        }
        let chunks = std::mem::replace(&mut msg.changes, ChunkList::empty());
        let shared_before = ps.sync.shared_heads.clone();
        let doc = &mut self.doc;
        let received = validate::guarded("receiving a sync message", || {
            doc.receive_sync_message(&mut ps.sync, msg)
        });
        if !matches!(received, Ok(Ok(()))) {
            ps.sync = SyncState::new();
            return Err(format!(
                "document {}: automerge refused the message",
                self.id
            ));
        }
        let progressed = ps.sync.shared_heads != shared_before;
        Ok(Received {
            chunks,
            new_peer,
            progressed,
        })
    }

    /// Judges the changes a peer sent (with those it sent earlier that
    /// waited for their dependencies): hard rules, merge, verdicts. Returns
    /// the step with the commit the store must write; the document is left
    /// as it was until [`Document::committed`]. CPU-heavy: run it off the
    /// async threads.
    pub fn judge(&mut self, conn: ConnId, chunks: &ChunkList, cx: &JudgeContext<'_>) -> Step {
        let Some(ps) = self.peers.get_mut(&conn) else {
            return Step::default();
        };
        if chunks.is_empty() || ps.sync.read_only {
            return Step::default();
        }
        let author = ps.info.principal.clone();
        let session = ps.info.session;
        let mut changes = match validate::changes_in(chunks.iter(), cx.limits) {
            Ok(c) => c,
            Err(r) => return Step::unreadable(self.id, &author, r, chunks, cx.now),
        };
        changes.append(&mut ps.parked);
        let summary = self.summary.take();
        let batch_cx = batch::Context {
            author: &author,
            relay_actor: cx.relay,
            policy: cx.policy,
            limits: cx.limits,
            bindings: cx.bindings,
            now: cx.now,
        };
        let mut out = batch::judge_batch(&self.doc, summary, changes, &batch_cx);
        let ps = self.peers.get_mut(&conn).expect("the peer was just here");
        ps.parked = std::mem::take(&mut out.waiting);
        let mut bytes: usize = ps.parked.iter().map(|c| c.raw_bytes().len()).sum();
        while bytes > MAX_PARKED_BYTES && !ps.parked.is_empty() {
            bytes -= ps.parked.remove(0).raw_bytes().len();
        }
        self.step(out, &author, session, cx)
    }

    /// A dashboard user's change, made with their own actor on the version
    /// they saw (`base`), judged like any device's.
    ///
    /// # Errors
    /// `base` is not a version of this document, or `f` failed.
    pub fn author(
        &mut self,
        author: &Principal,
        actor: ActorId,
        base: Option<Vec<ChangeHash>>,
        cx: &JudgeContext<'_>,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), doc::DocError>,
    ) -> Result<Step, AuthorError> {
        let base = base.unwrap_or_else(|| self.doc.get_heads());
        let mut scratch = self
            .doc
            .fork_at(&base)
            .map_err(|_| AuthorError::UnknownVersion)?
            .with_actor(actor);
        {
            let mut t = scratch.transaction();
            f(&mut t).map_err(|e| AuthorError::Write(e.to_string()))?;
            t.commit_with(
                automerge::transaction::CommitOptions::default()
                    .with_time(cx.now.timestamp_millis()),
            );
        }
        let changes = scratch.get_changes(&base);
        let summary = self.summary.take();
        let batch_cx = batch::Context {
            author,
            relay_actor: cx.relay,
            policy: cx.policy,
            limits: cx.limits,
            bindings: cx.bindings,
            now: cx.now,
        };
        let out = batch::judge_batch(&self.doc, summary, changes, &batch_cx);
        Ok(self.step(out, author, None, cx))
    }

    /// A write of the relay's own (inboxes, seeded files) on this document.
    ///
    /// # Errors
    /// `f` failed.
    pub fn relay_write(
        &mut self,
        relay: &ActorId,
        now: DateTime<Utc>,
        create: Option<DocKind>,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), doc::DocError>,
    ) -> Result<Commit, doc::DocError> {
        self.summary = None;
        let seal = crate::commit::relay_seal(
            self.doc.fork(),
            relay.clone(),
            self.persisted.clone(),
            self.snapshot_len,
            now,
            f,
        )?;
        let mut commit = Commit::new(self.id, now);
        commit.create = if self.class.is_none() { create } else { None };
        commit.seal = Some(seal);
        Ok(commit)
    }

    /// The step and commit for a judged batch.
    fn step(
        &self,
        mut out: Ingest,
        author: &Principal,
        session: Option<i64>,
        cx: &JudgeContext<'_>,
    ) -> Step {
        let received = out.accepted.len() + out.rejected.len();
        let rejection = out.rejected.first().map(|(_, r)| {
            (
                r.clone(),
                out.rejected.iter().map(|(i, _)| i.hash).collect::<Vec<_>>(),
            )
        });
        if received == 0 {
            return Step::default();
        }
        let meta = out
            .ticket
            .as_ref()
            .zip(out.official.as_ref())
            .map(|(t, p)| TicketMeta::of(t, p));
        let old_meta = match &self.class {
            Some(DocClass::Ticket(m)) => Some(m),
            _ => None,
        };
        let inbox_queue = meta.as_ref().is_some_and(|m| Some(m) != old_meta);
        let is_new = self.class.is_none();
        let outcomes: Vec<ChangeOutcome> = out
            .accepted
            .iter()
            .map(|c| out.outcome_of(&c.hash).into())
            .collect();
        let after = After {
            kind: out.kind,
            summary: out.summary.take(),
            status: out.official.as_ref().map(|p| p.status),
            serial_before: out.ticket.as_ref().and_then(|t| t.server.serial),
            inbox_queue,
            meta,
        };
        let hard_rejected = out.rejected.len();
        let bound = out.new_actors.clone();
        let commit = self.commit_of(out, author, session, is_new, inbox_queue, cx);
        Step {
            commit: Some(commit),
            received,
            outcomes,
            hard_rejected,
            rejection,
            bound,
            after,
        }
    }

    /// What the store must write for a judged batch.
    fn commit_of(
        &self,
        out: Ingest,
        author: &Principal,
        session: Option<i64>,
        is_new: bool,
        inbox_queue: bool,
        cx: &JudgeContext<'_>,
    ) -> Commit {
        let id = self.id;
        let now = cx.now;
        let mut c = Commit::new(id, now);
        let change =
            |i: &Incoming, outcome, rule: Option<&str>, reason: Option<&str>| ChangeEntry {
                hash: i.hash,
                doc: id,
                actor: i.actor.clone(),
                user: author.user.clone(),
                device: author.device.clone(),
                session,
                bytes: i.bytes.len() as u64,
                authored_at: i.authored_at,
                received_at: now,
                outcome,
                rule: rule.map(str::to_owned),
                reason: reason.map(str::to_owned),
            };
        for (i, r) in &out.rejected {
            c.changes.push(change(
                i,
                ChangeOutcome::HardRejected,
                Some(r.rule.name()),
                Some(&r.reason),
            ));
            c.reviews.push(ReviewEntry {
                doc: id,
                event: None,
                change: Some(i.hash),
                kind: ReviewKind::HardRejected,
                action: None,
                rule: r.rule.name().into(),
                reason: r.reason.clone(),
                user: author.user.clone(),
                device: author.device.clone(),
                authored_at: i.authored_at,
                received_at: now,
                payload: Some(i.bytes.clone()),
            });
        }
        for i in &out.accepted {
            let o = out.outcome_of(&i.hash);
            let bad = out
                .judged
                .iter()
                .find(|j| j.change == i.hash && j.record.outcome == o && o != Outcome::Accepted);
            c.changes.push(change(
                i,
                o.into(),
                bad.map(|j| j.record.rule.as_str()),
                bad.map(|j| j.record.reason.as_str()),
            ));
        }
        for j in &out.judged {
            c.verdicts.push(VerdictEntry {
                doc: id,
                event: j.event.id.clone(),
                seq: j.record.seq,
                action: j.event.action.clone(),
                user: author.user.clone(),
                device: author.device.clone(),
                change: j.change,
                outcome: j.record.outcome,
                rule: j.record.rule.clone(),
                reason: j.record.reason.clone(),
                authored_at: j.event.at,
                judged_at: now,
            });
            if let Some(kind) = ReviewKind::of(j.record.outcome) {
                c.reviews.push(ReviewEntry {
                    doc: id,
                    event: Some(j.event.id.clone()),
                    change: Some(j.change),
                    kind,
                    action: Some(j.event.action.clone()),
                    rule: j.record.rule.clone(),
                    reason: j.record.reason.clone(),
                    user: author.user.clone(),
                    device: author.device.clone(),
                    authored_at: j.event.at,
                    received_at: now,
                    payload: None,
                });
            } else if let Some(how @ (Action::Override | Action::Dismiss)) = j.event.action()
                && let Some(target) = &j.event.data.target
            {
                c.resolutions.push(Resolution {
                    event: target.to_string(),
                    by: author.user.clone(),
                    how,
                });
            }
        }
        c.bind = out
            .new_actors
            .iter()
            .map(|a| (a.clone(), author.device.clone(), author.user.clone()))
            .collect();
        c.inbox_queue = inbox_queue;
        if let Some(trial) = out.trial {
            let stamp_received = is_new && out.ticket.is_some();
            c.create = if is_new { out.kind } else { None };
            c.serial_due = out.serial_due;
            c.seal = Some(Seal {
                trial,
                relay: cx.relay.clone(),
                records: out
                    .judged
                    .iter()
                    .map(|j| (j.event.id.clone(), j.record.clone()))
                    .collect(),
                stamp_received,
                ticket: out.ticket.zip(out.official),
                persisted: self.persisted.clone(),
                snapshot_len: self.snapshot_len,
                now,
            });
        }
        c
    }

    /// Takes the state a stored step left: the document as committed, its
    /// class, what judging the next batch needs.
    pub fn committed(&mut self, step: &mut Step, stored: Stored) -> Applied {
        let Some(doc) = stored.doc else {
            return Applied::default();
        };
        let after = std::mem::take(&mut step.after);
        self.doc = doc;
        self.persisted = self.doc.get_heads();
        if let Some(n) = stored.snapshot_len {
            self.snapshot_len = n;
        }
        self.summary = after.summary.map(|mut s| {
            s.heads.clone_from(&self.persisted);
            s.had_serial |= stored.serial.is_some();
            s
        });
        self.class = match (after.kind, &after.meta) {
            (Some(DocKind::Ticket), Some(m)) => Some(DocClass::Ticket(m.clone())),
            (Some(DocKind::Household), _) => Some(DocClass::Household),
            (Some(DocKind::HouseholdPrivate), _) => Some(DocClass::HouseholdPrivate),
            _ => self.class.take(),
        };
        Applied {
            ticket: after
                .status
                .filter(|_| after.meta.is_some())
                .map(|s| (s, stored.serial.or(after.serial_before))),
            inbox_queued: after.inbox_queue,
        }
    }

    /// Takes the state a stored relay write left.
    ///
    /// # Errors
    /// A document the write created that does not read as its type.
    pub fn relay_committed(&mut self, stored: Stored) -> Result<(), Unreadable> {
        let Some(doc) = stored.doc else {
            return Ok(());
        };
        self.doc = doc;
        self.persisted = self.doc.get_heads();
        if let Some(n) = stored.snapshot_len {
            self.snapshot_len = n;
        }
        if self.class.is_none() {
            self.class = classify(self.id, &self.doc)?;
        }
        Ok(())
    }

    /// Whether a message from `conn` that made progress may be given back
    /// to the connection's rate limit: each peer has [`PROGRESS_CREDIT`]
    /// such messages per document per connection, so a device catching up
    /// on thousands of documents is not cut off and a flood is.
    pub fn credit(&mut self, conn: ConnId) -> bool {
        match self.peers.get_mut(&conn) {
            Some(ps) if ps.credit > 0 => {
                ps.credit -= 1;
                true
            }
            _ => false,
        }
    }

    /// The messages after a peer's step: the change-rejected notice (the
    /// peer's sync state becomes read-only, so the exchange ends), the
    /// sender's reply (asking for what its waiting changes still miss), and
    /// every other peer's update. For a creation whose every change was
    /// refused, the notice and `doc-unavailable`; returns `true` then: the
    /// document must be dropped.
    pub fn replies(
        &mut self,
        relay: &PeerId,
        conn: ConnId,
        rejection: Option<(Rejection, Vec<ChangeHash>)>,
    ) -> Replies {
        let mut out = Vec::new();
        let mut sent_changes = false;
        let Some(ps) = self.peers.get_mut(&conn) else {
            return Replies::default();
        };
        let peer = ps.info.peer_id.clone();
        if let Some((r, changes)) = rejection {
            out.push(Effect::Reject {
                conn,
                peer: peer.clone(),
                doc: self.id,
                rejection: r,
                changes,
            });
            if self.class.is_none() {
                out.push(Effect::Send(
                    conn,
                    messages::unavailable(relay, &peer, self.id),
                ));
                return Replies {
                    effects: out,
                    gone: true,
                    sent_changes: false,
                };
            }
            ps.sync.set_read_only(true);
        }
        if let Some(mut reply) = generate(&self.doc, &mut ps.sync) {
            // Automerge's own `need` only lists the peer's heads, never the
            // dependencies of what it sent; the encoding wants them sorted.
            reply.need.extend(missing_deps(&self.doc, &ps.parked));
            reply.need.sort();
            reply.need.dedup();
            sent_changes = !reply.changes.is_empty();
            out.push(Effect::Send(
                conn,
                messages::sync(relay, &peer, self.id, reply.encode()),
            ));
        }
        out.extend(self.fan_out(relay, Some(conn)));
        Replies {
            effects: out,
            gone: false,
            sent_changes,
        }
    }

    /// Every peer's update but `except`'s (after a change from elsewhere).
    pub fn fan_out(&mut self, relay: &PeerId, except: Option<ConnId>) -> Vec<Effect> {
        let doc = &self.doc;
        let id = self.id;
        let mut out = Vec::new();
        for (conn, ps) in &mut self.peers {
            if Some(*conn) == except {
                continue;
            }
            if let Some(m) = generate(doc, &mut ps.sync) {
                out.push(Effect::Send(
                    *conn,
                    messages::sync(relay, &ps.info.peer_id, id, m.encode()),
                ));
            }
        }
        out
    }
}

/// Why a dashboard user's change could not be made.
#[derive(Debug, thiserror::Error)]
pub enum AuthorError {
    /// The version the person acted on is not one of this document.
    #[error("the ticket version you acted on is unknown; reload it")]
    UnknownVersion,
    /// Writing the change failed.
    #[error("{0}")]
    Write(String),
}

impl Step {
    /// A batch whose bytes do not unpack into changes: one hard rejection,
    /// recorded with the raw bytes for a manager.
    fn unreadable(
        doc: DocId,
        author: &Principal,
        r: Rejection,
        chunks: &ChunkList,
        now: DateTime<Utc>,
    ) -> Self {
        let payload: Vec<u8> = chunks.iter().flatten().copied().take(1 << 20).collect();
        let mut c = Commit::new(doc, now);
        c.reviews.push(ReviewEntry {
            doc,
            event: None,
            change: None,
            kind: ReviewKind::HardRejected,
            action: None,
            rule: r.rule.name().into(),
            reason: r.reason.clone(),
            user: author.user.clone(),
            device: author.device.clone(),
            authored_at: now,
            received_at: now,
            payload: Some(payload),
        });
        Step {
            commit: Some(c),
            received: 1,
            hard_rejected: 1,
            rejection: Some((r, Vec::new())),
            ..Step::default()
        }
    }

    /// The security-log detail of an unreadable batch, if this is one.
    pub fn unreadable_detail(&self, chunks: &ChunkList) -> Option<String> {
        let c = self.commit.as_ref()?;
        if !c.changes.is_empty() || c.seal.is_some() {
            return None;
        }
        let (r, _) = self.rejection.as_ref()?;
        Some(format!(
            "{}: {} ({} chunk(s), {} bytes) in {}",
            r.rule.name(),
            r.reason,
            chunks.len(),
            chunks.iter().map(<[u8]>::len).sum::<usize>(),
            c.doc
        ))
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

/// The next sync message for a peer, under the panic guard: a panic (a
/// peer's sync state automerge cannot use) starts that peer's state afresh
/// instead of taking the document's task down.
fn generate(doc: &Automerge, sync: &mut SyncState) -> Option<SyncMessage> {
    match validate::guarded("generating a sync message", || {
        doc.generate_sync_message(sync)
    }) {
        Ok(m) => m,
        Err(_) => {
            *sync = SyncState::new();
            None
        }
    }
}

/// Decodes and checks a peer's sync message (lists and bloom filters
/// bounded before automerge sees them).
///
/// # Errors
/// A message that does not decode or is out of bounds, with the reason.
pub fn decode_sync(data: &[u8]) -> Result<SyncMessage, String> {
    match validate::guarded("decoding a sync message", || SyncMessage::decode(data)) {
        Ok(Ok(m)) => validate::sync_message(&m).map(|()| m).map_err(|r| r.reason),
        Ok(Err(e)) => Err(e.to_string()),
        Err(r) => Err(r.reason),
    }
}

#[cfg(test)]
mod tests;
