//! Writes that do not come from a device's sync message: the relay's own
//! (inboxes, seeded files) and a dashboard user's action, made with that
//! user's own actor on the ticket version they saw and judged like any
//! device's change.

use automerge::ChangeHash;
use relay_core::{Document, Rejection};
use schema::doc::DocError;
use schema::inbox::DocKind;
use schema::{DocId, Principal, UserId};

use super::slots::InMemory;
use super::{Hub, HubError, SessionStats};

/// A write into an Automerge transaction.
pub(crate) type Write =
    Box<dyn FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), DocError> + Send>;

impl Hub {
    /// Writes to a document as the relay itself (inboxes, seeded files),
    /// creating it as `create` if it does not exist; stores the change, then
    /// sends it to every peer of the document.
    pub(crate) async fn relay_write<F>(
        &self,
        id: DocId,
        create: Option<DocKind>,
        f: F,
    ) -> Result<(), HubError>
    where
        F: FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), DocError>
            + Send
            + 'static,
    {
        self.relay_write_with(id, create, None, Box::new(f)).await
    }

    /// [`Hub::relay_write`] to an inbox, with the inbox mirror's rows for it
    /// written in the same transaction.
    pub(super) async fn relay_write_with(
        &self,
        id: DocId,
        create: Option<DocKind>,
        inbox_mirror: Option<(UserId, Vec<(DocId, bool)>)>,
        f: Write,
    ) -> Result<(), HubError> {
        let now = self.now();
        let mut g = self.lock_loaded(id).await?;
        let is_new = g.is_none();
        if is_new && create.is_none() {
            return Err(HubError::Unavailable(id));
        }
        let mut mem = g
            .take()
            .unwrap_or_else(|| InMemory::new(Document::empty(id, &self.relay_actor)));
        let mut commit = match mem.doc.relay_write(&self.relay_actor, now, create, f) {
            Ok(c) => c,
            Err(e) => {
                *g = (!is_new).then_some(mem);
                return Err(HubError::Refused(e.to_string()));
            }
        };
        commit.inbox_mirror = inbox_mirror;
        let started = std::time::Instant::now();
        let stored = match self.store.commit_document(commit, self.clock.clone()).await {
            Ok(s) => {
                crate::metrics::seconds("propsync_commit_seconds", started);
                s
            }
            Err(e) => {
                *g = (!is_new).then_some(mem);
                return Err(e.into());
            }
        };
        let done = mem
            .doc
            .relay_committed(stored)
            .map_err(|e| HubError::Refused(e.to_string()));
        mem.last_used = std::time::Instant::now();
        let effects = mem.doc.fan_out(&self.relay_peer, None);
        *g = Some(mem);
        drop(g);
        self.run(effects);
        self.announce(id);
        done
    }

    /// Makes a change as a dashboard user (with that user's own actor) and
    /// runs it through the same validation and judging as a device's; the
    /// change is made on the version the person saw (`seen`), so the judge
    /// can tell "not allowed" from "the ticket has moved on since". Returns
    /// the hard rejection, if the change was refused.
    pub(crate) async fn author(
        &self,
        p: &Principal,
        id: DocId,
        create: bool,
        seen: Option<Vec<ChangeHash>>,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), DocError>
        + Send
        + 'static,
    ) -> Result<Option<Rejection>, HubError> {
        let mut g = self.lock_loaded(id).await?;
        match g.as_ref() {
            None if !create => return Err(HubError::Unavailable(id)),
            Some(m) if !self.admits(p, &m.doc).await? => {
                return Err(HubError::Unavailable(id));
            }
            _ => {}
        }
        let mem = g
            .take()
            .unwrap_or_else(|| InMemory::new(Document::empty(id, &self.relay_actor)));
        let actor = self.web_actor(&p.user);
        let author = p.clone();
        let judged = self
            .judge(mem.doc, move |doc, cx| {
                doc.author(&author, actor, seen, cx, f)
            })
            .await;
        let (mut doc, mut step) = match judged {
            Ok((doc, Ok(step))) => (doc, step),
            Ok((doc, Err(e))) => {
                *g = doc.class().is_some().then(|| InMemory::new(doc));
                return Err(HubError::Refused(e.to_string()));
            }
            Err((_, e)) => return Err(e),
        };
        let stats = SessionStats::default();
        let stored = self.store_step(&mut doc, p, &stats, &mut step).await;
        let effects = if doc.class().is_some() {
            doc.fan_out(&self.relay_peer, None)
        } else {
            Vec::new()
        };
        *g = doc.class().is_some().then(|| InMemory::new(doc));
        drop(g);
        self.run(effects);
        stored?;
        self.keep_inboxes().await;
        Ok(step.rejection.map(|(r, _)| r))
    }
}
