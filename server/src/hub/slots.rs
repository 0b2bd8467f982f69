//! Documents in memory: one slot per document, locked for one step at a
//! time; a document is loaded from the store when a step needs it and leaves
//! memory when nobody has used it for a while. Peers still connected to a
//! document that left memory are kept aside (cheaply) and get it back, live,
//! when it is loaded again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use relay_core::Document;
use relay_core::document::PeerInfo;
use schema::DocId;
use tokio::sync::OwnedMutexGuard;

use super::{ConnId, Hub, HubError};
use crate::store::StoreError;

/// A document in memory and when it was last used.
#[derive(Debug)]
pub(super) struct InMemory {
    pub(super) doc: Document,
    pub(super) last_used: Instant,
}

impl InMemory {
    pub(super) fn new(doc: Document) -> Self {
        Self {
            doc,
            last_used: Instant::now(),
        }
    }
}

/// A slot's lock, held for one step; `None` inside: not in memory (and,
/// after [`Hub::lock_loaded`], not stored either).
pub(super) type Locked = OwnedMutexGuard<Option<InMemory>>;

#[derive(Debug, Default)]
struct Slot {
    doc: Arc<tokio::sync::Mutex<Option<InMemory>>>,
    /// Peers still connected that synced the document before it left
    /// memory: they come back with a fresh sync state when it is loaded again.
    dormant: Mutex<Vec<PeerInfo>>,
}

/// Every document slot.
#[derive(Debug, Default)]
pub(super) struct Slots {
    map: Mutex<HashMap<DocId, Arc<Slot>>>,
}

impl Slots {
    fn get(&self, id: DocId) -> Arc<Slot> {
        let mut s = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        s.entry(id).or_default().clone()
    }

    fn all(&self) -> Vec<(DocId, Arc<Slot>)> {
        self.map
            .lock()
            .map(|s| s.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default()
    }

    /// Forgets a connection in every document (and a creation nobody is
    /// finishing any more, so the device's retry starts afresh).
    pub(super) async fn forget(&self, conn: ConnId) {
        for (_, slot) in self.all() {
            if let Ok(mut d) = slot.dormant.lock() {
                d.retain(|p| p.conn != conn);
            }
            let mut g = slot.doc.lock().await;
            if g.as_mut().is_some_and(|m| m.doc.leave(conn)) {
                *g = None;
            }
        }
    }
}

impl Hub {
    /// Locks document `id`'s slot, loading the document from the store if
    /// it is not in memory (the one way a step gets at a document).
    pub(super) async fn lock_loaded(&self, id: DocId) -> Result<Locked, HubError> {
        let slot = self.slots.get(id);
        let mut g = slot.doc.clone().lock_owned().await;
        if g.is_none() {
            *g = self.load(id, &slot).await?;
        }
        Ok(g)
    }

    async fn load(&self, id: DocId, slot: &Slot) -> Result<Option<InMemory>, HubError> {
        let Some(stored) = self.store.load_document(id).await? else {
            return Ok(None);
        };
        let relay = self.relay_actor.clone();
        let mut doc = tokio::task::spawn_blocking(move || -> Result<Document, HubError> {
            let snapshot_len = stored.snapshot.as_ref().map_or(0, Vec::len);
            let doc = stored.assemble()?;
            Document::stored(id, doc, &relay, snapshot_len)
                .map_err(|e| HubError::Store(StoreError::Corrupt(e.to_string())))
        })
        .await
        .map_err(|_| HubError::Refused("loading was interrupted".into()))??;
        let dormant = slot
            .dormant
            .lock()
            .map(|mut d| std::mem::take(&mut *d))
            .unwrap_or_default();
        doc.revive(dormant);
        Ok(Some(InMemory::new(doc)))
    }

    /// Drops documents nobody used for `idle` from memory. Peers still
    /// connected to one are kept aside and get it back, live, when it is
    /// loaded again; a document being created or holding changes that wait
    /// for their dependencies stays.
    pub(crate) async fn evict_idle(&self, idle: Duration) -> usize {
        let mut evicted = 0;
        for (id, slot) in self.slots.all() {
            let Ok(mut g) = slot.doc.try_lock() else {
                continue;
            };
            let drop_it = g
                .as_ref()
                .is_none_or(|m| m.last_used.elapsed() >= idle && m.doc.may_leave_memory());
            if !drop_it {
                continue;
            }
            if let Some(m) = g.take() {
                evicted += 1;
                if let Ok(mut d) = slot.dormant.lock() {
                    d.extend(m.doc.into_peers());
                }
            }
            let dormant = slot.dormant.lock().map(|d| d.len()).unwrap_or(0);
            drop(g);
            if dormant == 0
                && let Ok(mut s) = self.slots.map.lock()
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
            .all()
            .iter()
            .filter(|(_, slot)| slot.doc.try_lock().map_or(true, |g| g.is_some()))
            .count()
    }
}
