//! One sync session: the [`Engine`] plus the store, applying the engine's
//! effects in one transaction per input (group commit). Transport-agnostic:
//! the WebSocket transport and the simulated network in tests both drive it
//! with [`Session::handle`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use automerge::Change;
use schema::wire::Message;
use schema::{DocId, Ticket};

use super::{Device, DeviceError, read_actor, read_identity, verdicts_of};
use crate::engine::{Effect, Engine, EngineConfig, Input, LocalDoc, Stats};
use crate::store::{self, Listing, Store, StoreError};

/// What one `sync` did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct SyncSummary {
    /// Documents the device holds after the sync.
    pub documents: u64,
    /// Changes sent up.
    pub changes_up: u64,
    /// Changes received.
    pub changes_down: u64,
    /// New verdicts seen.
    pub verdicts: u64,
    /// Local changes the relay acknowledged.
    pub acked: u64,
    /// Documents reset after a `change-rejected`.
    pub resets: u64,
    /// Changes put in the quarantine.
    pub quarantined: u64,
    /// Documents purged after access ended.
    pub purged: u64,
    /// Documents the relay would not sync.
    pub unavailable: u64,
    /// Photos whose upload completed.
    pub photos_uploaded: u64,
    /// Connections made (more than one: it reconnected).
    pub connections: u64,
    /// Messages that could not be used, and problems reading the store.
    pub problems: Vec<String>,
}

impl SyncSummary {
    pub(crate) fn add_stats(&mut self, s: &Stats) {
        self.changes_up += s.changes_up;
        self.changes_down += s.changes_down;
    }
}

/// A sync session over any transport.
#[derive(Debug)]
pub struct Session {
    store: Arc<Mutex<Store>>,
    engine: Engine,
    relay_key: String,
    summary: SyncSummary,
    closing: Option<String>,
}

impl Session {
    /// Starts a session: loads every document, its sync state and its
    /// unacknowledged changes from the store.
    ///
    /// # Errors
    /// When the device is not enrolled or the store fails.
    pub fn new(device: &Device) -> Result<Self, DeviceError> {
        let store_arc = device.shared_store();
        let store = device.lock()?;
        let conn = store.conn();
        let identity = read_identity(conn)?;
        let actor = read_actor(conn)?;
        let relay_key = identity.relay.clone();
        let mut summary = SyncSummary::default();
        let mut docs = Vec::new();
        for row in store::docs(conn)? {
            let (doc, report) = store::load_doc(conn, row.id, &actor)?;
            summary.problems.extend(
                report
                    .problems
                    .iter()
                    .map(|p| format!("{}#{}: {}", p.doc, p.chunk, p.problem)),
            );
            docs.push(LocalDoc {
                id: row.id,
                doc,
                sync_state: store::sync_state(conn, row.id, &relay_key)?,
                listing: row.listing,
                unacked: store::unacked(conn, row.id)?,
            });
        }
        let config = EngineConfig {
            peer_id: super::peer_id(&identity, &actor)?,
            actor,
            inbox: identity.inbox.map(|u| u.id()),
            relay_epoch: store::meta_get(conn, "relay_epoch")?,
        };
        drop(store);
        Ok(Self {
            store: store_arc,
            engine: Engine::new(config, docs),
            relay_key,
            summary,
            closing: None,
        })
    }

    /// The engine (for progress and tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Whether every document is in sync.
    pub fn is_idle(&self) -> bool {
        self.engine.is_idle()
    }

    /// The relay's `error` message, once it sent one.
    pub fn closing(&self) -> Option<&str> {
        self.closing.as_deref()
    }

    /// The summary so far (counts from the engine included).
    pub fn summary(&self) -> SyncSummary {
        let mut s = self.summary.clone();
        s.add_stats(self.engine.stats());
        s
    }

    /// Feeds one input; applies its effects to the store in one transaction;
    /// returns the messages to send.
    ///
    /// # Errors
    /// When the store fails (the effects of this input are then not kept;
    /// the sync states are not advanced either, so the next session redoes it).
    pub fn handle(&mut self, input: Input) -> Result<Vec<Message>, DeviceError> {
        if matches!(input, Input::Connected) {
            self.summary.connections += 1;
        }
        let effects = self.engine.handle(input);
        self.apply(effects)
    }

    /// Adds a change made locally while the session is open, and returns what to send.
    ///
    /// # Errors
    /// When the store fails.
    pub fn local_change(
        &mut self,
        doc: DocId,
        change: Change,
    ) -> Result<Vec<Message>, DeviceError> {
        let effects = self.engine.local_change(doc, change);
        self.apply(effects)
    }

    fn apply(&mut self, effects: Vec<Effect>) -> Result<Vec<Message>, DeviceError> {
        let mut send = Vec::new();
        let mut changed: BTreeSet<DocId> = BTreeSet::new();
        let mut store = self.store.lock().map_err(|_| DeviceError::Poisoned)?;
        let engine = &self.engine;
        let relay = self.relay_key.as_str();
        let summary = &mut self.summary;
        let mut closing = None;
        let now = schema::doc::rfc3339(chrono::Utc::now());
        store.write(|tx| {
            for effect in effects {
                match effect {
                    Effect::Send(m) => send.push(m),
                    Effect::StoreChanges { doc, chunk, .. } => {
                        store::doc_ensure(tx, doc, Listing::Listed)?;
                        store::chunk_append(tx, doc, &chunk)?;
                        changed.insert(doc);
                    }
                    Effect::RelayEpoch { epoch } => {
                        store::sync_states_forget(tx, relay)?;
                        store::meta_put(tx, "relay_epoch", &epoch)?;
                    }
                    Effect::StoreSyncState { doc, state } => {
                        store::doc_ensure(tx, doc, Listing::Listed)?;
                        store::sync_state_put(tx, doc, relay, &state)?;
                    }
                    Effect::Acked { doc, hashes } => {
                        summary.acked += u64::try_from(store::pending_ack(tx, doc, &hashes)?)
                            .unwrap_or(u64::MAX);
                    }
                    Effect::Listed { doc, entry } => {
                        store::doc_list(
                            tx,
                            doc,
                            entry.kind.as_str(),
                            crate::engine::is_read_only(&entry),
                            &entry.label,
                        )?;
                    }
                    Effect::Delisted { doc } => store::doc_delist(tx, doc)?,
                    Effect::Reset {
                        doc,
                        quarantine,
                        rule,
                        reason,
                    } => {
                        summary.resets += 1;
                        quarantine_all(tx, doc, &quarantine, &rule, &reason, &now)?;
                        summary.quarantined += u64::try_from(quarantine.len()).unwrap_or(u64::MAX);
                        store::chunks_clear(tx, doc)?;
                    }
                    Effect::Released { doc, hashes } => {
                        store::quarantine_release(tx, doc, &hashes)?;
                        summary.quarantined = summary
                            .quarantined
                            .saturating_sub(u64::try_from(hashes.len()).unwrap_or(u64::MAX));
                    }
                    Effect::Purge { doc, quarantine } => {
                        summary.purged += 1;
                        quarantine_all(
                            tx,
                            doc,
                            &quarantine,
                            "access_ended",
                            "the document left your inbox before these changes reached the relay",
                            &now,
                        )?;
                        summary.quarantined += u64::try_from(quarantine.len()).unwrap_or(u64::MAX);
                        store::doc_purge(tx, doc)?;
                        changed.remove(&doc);
                    }
                    Effect::Unavailable { .. } => summary.unavailable += 1,
                    Effect::Close { reason } => closing = Some(reason),
                    Effect::Problem { what } => {
                        tracing::warn!(%what, "sync problem");
                        summary.problems.push(what);
                    }
                }
            }
            for doc in &changed {
                let Some(d) = engine.doc(*doc) else { continue };
                describe(tx, *doc, d, summary)?;
                store::compact_if_needed(tx, *doc, d)?;
            }
            Ok(())
        })?;
        if closing.is_some() {
            self.closing = closing;
        }
        Ok(send)
    }
}

/// Updates a document's row (kind, title, serial) and its verdicts from its content.
fn describe(
    tx: &rusqlite::Transaction<'_>,
    id: DocId,
    doc: &automerge::Automerge,
    summary: &mut SyncSummary,
) -> Result<(), StoreError> {
    let Some(kind) = schema::doc::doc_type(doc) else {
        return Ok(());
    };
    if kind != "ticket" {
        store::doc_describe(tx, id, &kind, None, None)?;
        return Ok(());
    }
    let t: Ticket = match schema::doc::read_ticket(doc, None) {
        Ok(t) => t,
        Err(e) => {
            summary.problems.push(format!("{id}: {e}"));
            return Ok(());
        }
    };
    let serial = t.server.serial.map(|s| s.to_string());
    store::doc_describe(tx, id, "ticket", Some(&t.header.title), serial.as_deref())?;
    for (event, v) in verdicts_of(&t) {
        if store::verdict_put(tx, id, event, v)? {
            summary.verdicts += 1;
        }
    }
    Ok(())
}

fn quarantine_all(
    tx: &rusqlite::Transaction<'_>,
    doc: DocId,
    changes: &[Change],
    rule: &str,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    for c in changes {
        store::quarantine_add(tx, doc, c, rule, reason, now, &summarise(c))?;
    }
    let hashes: Vec<_> = changes.iter().map(Change::hash).collect();
    store::pending_drop_changes(tx, doc, &hashes)
}

/// What a change did, for the quarantine list: the events and notes it adds.
fn summarise(c: &Change) -> String {
    let mut parts = Vec::new();
    // Without its dependencies a change cannot be applied, so its ops are
    // described from the expanded form instead.
    let expanded = c.decode();
    for op in &expanded.operations {
        if let automerge::legacy::OpType::Put(automerge::ScalarValue::Str(s)) = &op.action
            && let automerge::legacy::Key::Map(k) = &op.key
            && (k == "action" || k == "text")
        {
            parts.push(format!("{k}={s}"));
        }
    }
    if parts.is_empty() {
        format!("change {} (seq {})", c.hash(), c.seq())
    } else {
        parts.join(", ")
    }
}
