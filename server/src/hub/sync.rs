//! A peer's sync message, end to end: admission, the sync state, judging
//! the changes it carries off the async threads, the commit, the replies.
//! Each step is the core's ([`relay_core::Document`]); this file does the IO
//! between them.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use automerge::sync::ChunkList;
use automerge::{ActorId, ChangeHash};
use relay_core::document::{JudgeContext, Step};
use relay_core::{Document, Rejection, messages};
use schema::wire::PeerId;
use schema::{DeviceId, DocId, Principal, UserId};

use super::slots::InMemory;
use super::{ConnId, Hub, HubError, Live, Peer, SessionStats};
use crate::store::storage::SecurityEntry;

impl Hub {
    /// Whether `p` may sync document `id` (loading what is needed to decide).
    pub(crate) async fn may_sync(&self, p: &Principal, id: DocId) -> Result<bool, HubError> {
        let g = self.lock_loaded(id).await?;
        let Some(m) = g.as_ref() else {
            return Ok(false);
        };
        self.admits(p, &m.doc).await
    }

    /// Whether `p` may sync `doc` as it is (not one being created).
    pub(super) async fn admits(&self, p: &Principal, doc: &Document) -> Result<bool, HubError> {
        let Some(class) = doc.class() else {
            return Ok(false);
        };
        let grants = self.grants(p, doc).await?;
        Ok(schema::access::may_sync(p, class, grants))
    }

    /// Whether the store lists `p` for `doc` (asked only when it matters).
    async fn grants(&self, p: &Principal, doc: &Document) -> Result<bool, HubError> {
        Ok(doc.needs_grants(p)
            && self
                .store
                .explicit_access(doc.id(), p.user.clone())
                .await?
                .is_some())
    }

    /// Handles a `request` (`fresh`) or `sync` message from `peer` for `id`.
    /// Returns whether the message counts as progress for the rate limit
    /// (changes came, the heads both sides share moved, or the document went
    /// to a peer new to it; within the peer's credit on the document): a
    /// device catching up makes progress with nearly every message, a flood
    /// does not.
    pub(crate) async fn receive(
        &self,
        peer: &Peer,
        id: DocId,
        data: &[u8],
        fresh: bool,
    ) -> Result<bool, HubError> {
        // Syncing it now: a peer of the document, told of changes by sync.
        self.watchers.forget(peer.conn, id);
        let mut g = match self.lock_loaded(id).await {
            Ok(g) => g,
            Err(e) => {
                // The peer is told, rather than left waiting for an answer.
                self.send_to(
                    peer.conn,
                    messages::error(
                        &self.relay_peer,
                        Some(&peer.peer_id),
                        &format!("the relay could not read document {id}: {e}"),
                    ),
                );
                return Err(e);
            }
        };
        let msg = match relay_core::document::decode_sync(data) {
            Ok(m) => m,
            Err(why) => {
                drop(g);
                self.refuse(peer, id, &why).await;
                return Ok(false);
            }
        };
        let info = peer.info();
        let admitted = match g.as_ref() {
            // A document the relay does not have: a device may be creating
            // it (its first sync message carries no changes yet). It lives
            // in memory only until a valid creation arrives.
            None => Document::may_start(&peer.principal, fresh),
            Some(m) => {
                let grants = self.grants(&peer.principal, &m.doc).await?;
                m.doc.admits(&info, grants)
            }
        };
        if !admitted {
            drop(g);
            self.send_to(
                peer.conn,
                messages::unavailable(&self.relay_peer, &peer.peer_id, id),
            );
            return Ok(false);
        }
        let mut mem = g
            .take()
            .unwrap_or_else(|| InMemory::new(Document::empty(id, &self.relay_actor)));
        mem.last_used = std::time::Instant::now();
        let received = match mem.doc.receive(&info, msg, fresh) {
            Ok(r) => r,
            Err(why) => {
                *g = Some(mem);
                drop(g);
                self.refuse(peer, id, &why).await;
                return Ok(false);
            }
        };
        if received.new_peer {
            peer.stats.documents.fetch_add(1, Ordering::Relaxed);
        }
        let mut rejection = None;
        let brought = !received.chunks.is_empty();
        if brought {
            let (doc, result) = self.judge_and_store(mem.doc, peer, received.chunks).await;
            mem.doc = doc;
            match result {
                Ok(r) => rejection = r,
                Err(e) => {
                    // Nothing was stored: the document stays as it was (or
                    // is read again, if the store failed) and the peer's
                    // changes stay on its side.
                    let stale = matches!(e, HubError::Store(_) | HubError::Interrupted);
                    *g = if stale { None } else { Some(mem) };
                    drop(g);
                    self.send_to(
                        peer.conn,
                        messages::error(
                            &self.relay_peer,
                            Some(&peer.peer_id),
                            &format!("the relay could not store changes: {e}"),
                        ),
                    );
                    return Err(e);
                }
            }
        }
        let replies = mem.doc.replies(&self.relay_peer, peer.conn, rejection);
        let progress =
            brought || received.progressed || (received.new_peer && replies.sent_changes);
        let credited = progress && mem.doc.credit(peer.conn);
        *g = if replies.gone { None } else { Some(mem) };
        drop(g);
        self.run(replies.effects);
        self.keep_inboxes().await;
        Ok(credited)
    }

    /// A device's heads digests: answers with the documents whose heads on
    /// the relay differ, on the document the question came on.
    pub(crate) async fn digests(
        &self,
        peer: &Peer,
        on: DocId,
        q: schema::wire::HeadsDigests,
    ) -> Result<(), HubError> {
        let asked: Vec<DocId> = q.docs.iter().map(|(id, _)| *id).collect();
        let stale = self.store.stale(q.docs).await?;
        let named: HashSet<DocId> = stale.iter().copied().collect();
        self.watchers.watch(
            peer.conn,
            &peer.peer_id,
            asked.into_iter().filter(|id| !named.contains(id)),
        );
        self.send_stale(peer, on, stale);
        Ok(())
    }

    fn send_stale(&self, peer: &Peer, on: DocId, docs: Vec<DocId>) {
        let count = peer.stats.ephemeral.fetch_add(1, Ordering::Relaxed) + 1;
        let msg = schema::wire::Message::Ephemeral {
            sender_id: self.relay_peer.clone(),
            target_id: peer.peer_id.clone(),
            count,
            session_id: "relay".into(),
            document_id: on.into(),
            data: schema::wire::Stale { docs }.encode(),
        };
        self.send_to(peer.conn, msg);
    }

    /// A document changed: the devices holding it unchanged (confirmed by
    /// digest, not syncing it) are told to sync it.
    pub(super) fn announce(&self, id: DocId) {
        for (conn, target_id) in self.watchers.take(id) {
            let msg = schema::wire::Message::Ephemeral {
                sender_id: self.relay_peer.clone(),
                target_id,
                count: 0,
                session_id: "relay".into(),
                document_id: id.into(),
                data: schema::wire::Stale { docs: vec![id] }.encode(),
            };
            self.send_to(conn, msg);
        }
    }

    /// Judges what `peer` sent (off the async threads), stores the commit,
    /// takes the new state; returns the document and the hard rejection, if
    /// any change was refused.
    async fn judge_and_store(
        &self,
        doc: Document,
        peer: &Peer,
        chunks: ChunkList,
    ) -> (
        Document,
        Result<Option<(Rejection, Vec<ChangeHash>)>, HubError>,
    ) {
        let conn = peer.conn;
        let (mut doc, mut step, chunks) = match self
            .judge(doc, move |doc, cx| {
                let step = doc.judge(conn, &chunks, cx);
                (step, chunks)
            })
            .await
        {
            Ok((doc, (step, chunks))) => (doc, step, chunks),
            Err((doc, e)) => return (doc, Err(e)),
        };
        if let Some(detail) = step.unreadable_detail(&chunks) {
            // Bytes that are no change at all: the refusal and the raw bytes
            // for a manager, in one write.
            let review = step.commit.take().and_then(|mut c| c.reviews.pop());
            let entry = SecurityEntry::of_principal(self.now(), &peer.principal, "hard_rejected")
                .detail(detail);
            if let Err(e) = self.store.log_refusal(entry, review).await {
                return (doc, Err(e.into()));
            }
            count(&peer.stats, &step);
            return (doc, Ok(step.rejection.take()));
        }
        let result = self
            .store_step(&mut doc, &peer.principal, &peer.stats, &mut step)
            .await;
        (doc, result.map(|()| step.rejection.take()))
    }

    /// Runs `f` (judging) on `doc` off the async threads, with the context
    /// of this relay.
    pub(super) async fn judge<T: Send + 'static>(
        &self,
        doc: Document,
        f: impl FnOnce(&mut Document, &JudgeContext<'_>) -> T + Send + 'static,
    ) -> Result<(Document, T), (Document, HubError)> {
        let now = self.now();
        let actors = self.actors.clone();
        let store = self.store.clone();
        let (relay, policy, limits) = (
            self.relay_actor.clone(),
            self.policy.clone(),
            self.limits.clone(),
        );
        let id = doc.id();
        let backup = Document::empty(id, &relay);
        let started = std::time::Instant::now();
        let joined = tokio::task::spawn_blocking(move || {
            let bindings = |actor: &ActorId| -> Result<Option<(DeviceId, UserId)>, String> {
                if let Some(b) = actors.lock().ok().and_then(|a| a.get(actor).cloned()) {
                    return Ok(Some(b));
                }
                let found = store
                    .actor_binding(&actor.to_hex_string())
                    .map_err(|e| e.to_string())?;
                if let (Some(b), Ok(mut cache)) = (&found, actors.lock()) {
                    cache.insert(actor.clone(), b.clone());
                }
                Ok(found)
            };
            let cx = JudgeContext {
                relay: &relay,
                policy: &policy,
                limits: &limits,
                bindings: &bindings,
                now,
            };
            let mut doc = doc;
            let out = f(&mut doc, &cx);
            (doc, out)
        })
        .await;
        crate::metrics::seconds("propsync_judge_seconds", started);
        match joined {
            Ok((doc, out)) => Ok((doc, out)),
            // The judging thread panicked outside the guards: the document
            // is read again from the store at its next use.
            Err(_) => Err((backup, HubError::Interrupted)),
        }
    }

    /// Stores a judged step and takes the state it leaves: counters, actor
    /// bindings, the live register, the inbox queue.
    pub(super) async fn store_step(
        &self,
        doc: &mut Document,
        author: &Principal,
        stats: &SessionStats,
        step: &mut Step,
    ) -> Result<(), HubError> {
        let Some(commit) = step.commit.take() else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let stored = self
            .store
            .commit_document(commit, self.clock.clone())
            .await?;
        crate::metrics::seconds("propsync_commit_seconds", started);
        count(stats, step);
        if let Ok(mut cache) = self.actors.lock() {
            for actor in &step.bound {
                cache.insert(actor.clone(), (author.device.clone(), author.user.clone()));
            }
        }
        let applied = doc.committed(step, stored);
        self.announce(doc.id());
        if let Some((status, serial)) = applied.ticket {
            let _ = self.live.send(Live {
                doc_id: doc.id().to_string(),
                status: Some(status.as_str().to_owned()),
                serial: serial.map(|s| s.to_string()),
            });
        }
        if applied.inbox_queued {
            self.inboxes.queue(doc.id());
        }
        Ok(())
    }
}

/// Counts a stored step in its session's counters.
fn count(stats: &SessionStats, step: &Step) {
    stats
        .changes_received
        .fetch_add(step.received as u64, Ordering::Relaxed);
    for o in &step.outcomes {
        stats.count(*o);
    }
    stats
        .hard_rejected
        .fetch_add(step.hard_rejected as u64, Ordering::Relaxed);
    for _ in 0..step.hard_rejected {
        crate::metrics::change("hard_rejected");
    }
}

/// Which connections hold which documents unchanged: confirmed by a heads
/// digest and not synced since, so no sync state tells them of a change.
#[derive(Debug, Default)]
pub(crate) struct Watchers {
    inner: Mutex<WatchMaps>,
}

#[derive(Debug, Default)]
struct WatchMaps {
    by_doc: HashMap<DocId, HashSet<ConnId>>,
    by_conn: HashMap<ConnId, (PeerId, HashSet<DocId>)>,
}

impl Watchers {
    fn watch(&self, conn: ConnId, peer: &PeerId, docs: impl Iterator<Item = DocId>) {
        let Ok(mut m) = self.inner.lock() else { return };
        for id in docs {
            m.by_doc.entry(id).or_default().insert(conn);
            m.by_conn
                .entry(conn)
                .or_insert_with(|| (peer.clone(), HashSet::new()))
                .1
                .insert(id);
        }
    }

    fn forget(&self, conn: ConnId, id: DocId) {
        let Ok(mut m) = self.inner.lock() else { return };
        if let Some(c) = m.by_doc.get_mut(&id) {
            c.remove(&conn);
            if c.is_empty() {
                m.by_doc.remove(&id);
            }
        }
        if let Some((_, d)) = m.by_conn.get_mut(&conn) {
            d.remove(&id);
        }
    }

    /// The connections watching `id` (and their peers), who stop watching it.
    fn take(&self, id: DocId) -> Vec<(ConnId, PeerId)> {
        let Ok(mut m) = self.inner.lock() else {
            return Vec::new();
        };
        let conns: Vec<ConnId> = m.by_doc.remove(&id).into_iter().flatten().collect();
        let mut out = Vec::with_capacity(conns.len());
        for c in conns {
            if let Some((peer, d)) = m.by_conn.get_mut(&c) {
                d.remove(&id);
                out.push((c, peer.clone()));
            }
        }
        out
    }

    /// A connection ended.
    pub(crate) fn drop_conn(&self, conn: ConnId) {
        let Ok(mut m) = self.inner.lock() else { return };
        for id in m.by_conn.remove(&conn).into_iter().flat_map(|(_, d)| d) {
            if let Some(c) = m.by_doc.get_mut(&id) {
                c.remove(&conn);
                if c.is_empty() {
                    m.by_doc.remove(&id);
                }
            }
        }
    }
}
