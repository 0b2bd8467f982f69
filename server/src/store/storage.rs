//! The storage the sync path needs (documents, ledgers, number series,
//! sessions) as one backend-neutral trait, and its SQLite implementation on
//! [`Db`]. A PostgreSQL backend implements the same trait: `commit_document`
//! in one transaction with the number series row-locked.
//!
//! **Architecture Invariant:** the hub reaches storage only through
//! [`Storage`]; nothing in `hub.rs` names SQLite.

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use relay_core::ledger::ReviewEntry;
use relay_core::{Commit, Stored};
use schema::{DeviceId, DocId, Serial, UserId};

use super::records::{self, SessionCounters, StoredDoc, TicketRow, User};
use super::{Db, StoreError, StoreResult};

/// A boxed future of a store result.
pub(crate) type Fut<'a, T> = BoxFuture<'a, StoreResult<T>>;

/// A row for the security log.
#[derive(Clone, Debug)]
pub(crate) struct SecurityEntry {
    pub(crate) at: DateTime<Utc>,
    pub(crate) user: Option<String>,
    pub(crate) device: Option<String>,
    pub(crate) peer: Option<String>,
    pub(crate) kind: String,
    pub(crate) detail: String,
}

impl SecurityEntry {
    /// A refusal of `kind` at `at` by nobody known yet (chain the rest).
    pub(crate) fn new(at: DateTime<Utc>, kind: impl Into<String>) -> Self {
        Self {
            at,
            user: None,
            device: None,
            peer: None,
            kind: kind.into(),
            detail: String::new(),
        }
    }

    /// A refusal of `kind` concerning a known user and device.
    pub(crate) fn of_principal(
        at: DateTime<Utc>,
        p: &schema::Principal,
        kind: impl Into<String>,
    ) -> Self {
        Self {
            user: Some(p.user.to_string()),
            device: Some(p.device.to_string()),
            ..Self::new(at, kind)
        }
    }

    /// With the user name it concerns (known or only claimed, as at login).
    pub(crate) fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// With the peer (an address or a peer id).
    pub(crate) fn peer(mut self, peer: impl Into<String>) -> Self {
        self.peer = Some(peer.into());
        self
    }

    /// With what happened, for a manager.
    pub(crate) fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// The relay's storage, as the sync path uses it.
pub(crate) trait Storage: Send + Sync + std::fmt::Debug {
    /// A document's stored bytes.
    fn load_document(&self, id: DocId) -> Fut<'_, Option<StoredDoc>>;
    /// Stores one document's sync step in one durable transaction; the
    /// serial number's time is read from `clock` inside it, so number order
    /// and issue-time order agree.
    fn commit_document(&self, commit: Commit, clock: crate::hub::Clock) -> Fut<'_, Stored>;
    /// Who an actor is bound to. Blocking: call it off the async threads.
    fn actor_binding(&self, actor: &str) -> StoreResult<Option<(DeviceId, UserId)>>;
    /// A user's explicit access to a document.
    fn explicit_access(&self, doc: DocId, user: UserId) -> Fut<'_, Option<String>>;
    /// Every user.
    fn users(&self) -> Fut<'_, Vec<User>>;
    /// A ticket's register row.
    fn ticket_row(&self, doc: DocId) -> Fut<'_, Option<TicketRow>>;
    /// Opens a connection session; notes the device was seen.
    fn start_session(
        &self,
        user: UserId,
        device: DeviceId,
        remote: Option<String>,
        at: DateTime<Utc>,
    ) -> Fut<'_, i64>;
    /// Writes a session's counters and end.
    fn end_session(
        &self,
        id: i64,
        peer: Option<String>,
        c: SessionCounters,
        at: DateTime<Utc>,
        reason: String,
    ) -> Fut<'_, ()>;
    /// Adds a security-log row, and a review item when the refusal concerns a document.
    fn log_refusal(&self, entry: SecurityEntry, review: Option<ReviewEntry>) -> Fut<'_, ()>;
    /// Tickets queued for an inbox update, with their newest queue entry.
    fn inbox_queued(&self) -> Fut<'_, Vec<(DocId, i64)>>;
    /// The newest queue entry of one ticket, if queued.
    fn inbox_queued_upto(&self, doc: DocId) -> Fut<'_, Option<i64>>;
    /// A ticket's inboxes are up to date as of queue entry `upto`.
    fn inbox_done(&self, doc: DocId, upto: i64) -> Fut<'_, ()>;
    /// Whose inboxes list a ticket.
    fn inbox_listed_by(&self, doc: DocId) -> Fut<'_, Vec<UserId>>;
    /// Every (user, ticket) pair the inboxes list.
    fn inbox_entries(&self) -> Fut<'_, Vec<(UserId, DocId)>>;
    /// Fills the inbox mirror from the inbox documents (once, on a data
    /// directory written before the mirror existed); false if it was there.
    fn seed_inbox_mirror(&self, entries: Vec<(UserId, DocId)>) -> Fut<'_, bool>;
    /// Whether the inbox mirror was filled.
    fn inbox_mirror_ready(&self) -> Fut<'_, bool>;
    /// Every ticket's register row.
    fn ticket_rows(&self) -> Fut<'_, Vec<TicketRow>>;
    /// Of these documents and the digests of a device's copies, the ones
    /// whose stored heads differ or that the relay does not have.
    fn stale(&self, docs: Vec<(DocId, [u8; 16])>) -> Fut<'_, Vec<DocId>>;
}

/// The register and reports aggregate: what the reports read (the tickets'
/// read model, written in each ticket's commit), never the documents.
pub(crate) trait ReportStore: Send + Sync {
    /// The tickets, as committed, a report for a period starting at `from`
    /// needs: every open one, and the rest touched since `from`.
    fn tickets_for_period(&self, from: DateTime<Utc>) -> Fut<'_, Vec<(DocId, schema::Ticket)>>;
    /// Every numbered ticket received by `as_of`.
    fn numbered(&self, as_of: DateTime<Utc>) -> Fut<'_, Vec<records::models::Numbered>>;
}

impl ReportStore for Db {
    fn tickets_for_period(&self, from: DateTime<Utc>) -> Fut<'_, Vec<(DocId, schema::Ticket)>> {
        Box::pin(self.read(move |c| records::models::for_period(c, from)))
    }

    fn numbered(&self, as_of: DateTime<Utc>) -> Fut<'_, Vec<records::models::Numbered>> {
        Box::pin(self.read(move |c| records::models::numbered(c, as_of)))
    }
}

/// The `meta` key saying the inbox mirror was filled from the inbox documents.
const MIRROR_READY: &str = "inbox_mirror_ready";

impl Storage for Db {
    fn load_document(&self, id: DocId) -> Fut<'_, Option<StoredDoc>> {
        Box::pin(self.read(move |c| records::load_document(c, id)))
    }

    fn commit_document(&self, commit: Commit, clock: crate::hub::Clock) -> Fut<'_, Stored> {
        Box::pin(self.write(move |tx| {
            let Commit {
                doc: id,
                create,
                bind,
                serial_due,
                changes,
                verdicts,
                reviews,
                resolutions,
                at,
                inbox_queue,
                inbox_mirror,
                seal,
            } = commit;
            if let Some(kind) = create {
                records::insert_document(tx, id, kind.as_str(), at)?;
            }
            for (actor, device, user) in &bind {
                records::bind_actor(tx, &actor.to_hex_string(), device, user, at)?;
            }
            let serial = match serial_due.filter(|_| seal.is_some()) {
                Some(series) => {
                    // Numbers are taken in transaction order; the time is read
                    // here, in that order, so both orders agree.
                    let when = clock().max(at);
                    // The year is the property's: local time at acceptance.
                    let tz = crate::settings::time_zone_in(tx)?;
                    let year = u16::try_from(crate::settings::year_of(when, tz)).unwrap_or(2000);
                    let n = records::take_number(tx, series, year, id, when)?;
                    Some(
                        Serial::new(series, year, n)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )
                }
                None => None,
            };
            let mut stored = Stored {
                serial,
                snapshot_len: None,
                doc: None,
            };
            if let Some(seal) = seal {
                let chunk_bytes: i64 = tx
                    .query_row(
                        "SELECT chunk_bytes FROM documents WHERE doc_id = ?1",
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                let sealed = seal
                    .seal(id, serial, u64::try_from(chunk_bytes).unwrap_or(0))
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                if let Some(snapshot) = &sealed.snapshot {
                    records::compact(tx, id, snapshot)?;
                    stored.snapshot_len = Some(snapshot.len());
                } else if !sealed.chunk.is_empty() {
                    records::append_chunk(tx, id, &sealed.chunk, at)?;
                }
                if let Some(row) = &sealed.register {
                    records::upsert_ticket(tx, row)?;
                    if let Some(t) = &sealed.ticket {
                        records::models::upsert(tx, id, t, !row.status.is_terminal())?;
                    }
                }
                if let Some(access) = &sealed.access {
                    records::set_access(tx, id, access)?;
                }
                for (doc, user) in &sealed.grants {
                    records::grant_access(tx, *doc, user, relay_core::Grant::Assignee.as_str())?;
                }
                if !sealed.collections.is_empty() {
                    // A paid order collected: its charge and receipt go to the
                    // household's fee ledger in this same transaction.
                    let tz = crate::settings::time_zone_in(tx)?;
                    for c in &sealed.collections {
                        crate::fees::ledger::post_collection(tx, id, c, at, tz)?;
                    }
                }
                records::set_heads_digest(
                    tx,
                    id,
                    &schema::wire::heads_digest(&sealed.doc.get_heads()),
                )?;
                stored.doc = Some(sealed.doc);
            }
            for c in &changes {
                records::insert_change(tx, c)?;
            }
            for v in &verdicts {
                records::insert_verdict(tx, v)?;
            }
            for r in &reviews {
                records::insert_review(tx, r)?;
            }
            for r in &resolutions {
                records::resolve_review(tx, id, r, at)?;
            }
            if inbox_queue {
                records::inboxes::queue(tx, id)?;
            }
            if let Some((user, entries)) = &inbox_mirror {
                records::inboxes::set_entries(tx, user, entries)?;
            }
            Ok(stored)
        }))
    }

    fn actor_binding(&self, actor: &str) -> StoreResult<Option<(DeviceId, UserId)>> {
        self.read_blocking(|c| records::actor_binding(c, actor))
    }

    fn explicit_access(&self, doc: DocId, user: UserId) -> Fut<'_, Option<String>> {
        Box::pin(self.read(move |c| records::access(c, doc, &user)))
    }

    fn users(&self) -> Fut<'_, Vec<User>> {
        Box::pin(self.read(records::users))
    }

    fn ticket_row(&self, doc: DocId) -> Fut<'_, Option<TicketRow>> {
        Box::pin(self.read(move |c| records::ticket(c, doc)))
    }

    fn start_session(
        &self,
        user: UserId,
        device: DeviceId,
        remote: Option<String>,
        at: DateTime<Utc>,
    ) -> Fut<'_, i64> {
        Box::pin(self.write(move |tx| {
            records::touch_device(tx, device.as_str(), at)?;
            records::start_session(tx, &user, &device, remote.as_deref(), at)
        }))
    }

    fn end_session(
        &self,
        id: i64,
        peer: Option<String>,
        c: SessionCounters,
        at: DateTime<Utc>,
        reason: String,
    ) -> Fut<'_, ()> {
        Box::pin(self.write(move |tx| {
            records::update_session(tx, id, peer.as_deref(), &c, Some((at, &reason)))
        }))
    }

    fn inbox_queued(&self) -> Fut<'_, Vec<(DocId, i64)>> {
        Box::pin(self.read(records::inboxes::queued))
    }

    fn inbox_queued_upto(&self, doc: DocId) -> Fut<'_, Option<i64>> {
        Box::pin(self.read(move |c| records::inboxes::queued_upto(c, doc)))
    }

    fn inbox_done(&self, doc: DocId, upto: i64) -> Fut<'_, ()> {
        Box::pin(self.write(move |tx| records::inboxes::done(tx, doc, upto)))
    }

    fn inbox_listed_by(&self, doc: DocId) -> Fut<'_, Vec<UserId>> {
        Box::pin(self.read(move |c| records::inboxes::listed_by(c, doc)))
    }

    fn inbox_entries(&self) -> Fut<'_, Vec<(UserId, DocId)>> {
        Box::pin(self.read(records::inboxes::all_entries))
    }

    fn seed_inbox_mirror(&self, entries: Vec<(UserId, DocId)>) -> Fut<'_, bool> {
        Box::pin(self.write(move |tx| {
            if records::meta(tx, MIRROR_READY)?.is_some() {
                return Ok(false);
            }
            for (user, doc) in &entries {
                records::inboxes::set_entries(tx, user, &[(*doc, true)])?;
            }
            records::set_meta(tx, MIRROR_READY, "1")?;
            Ok(true)
        }))
    }

    fn inbox_mirror_ready(&self) -> Fut<'_, bool> {
        Box::pin(self.read(|c| Ok(records::meta(c, MIRROR_READY)?.is_some())))
    }

    fn ticket_rows(&self) -> Fut<'_, Vec<TicketRow>> {
        Box::pin(self.read(|c| {
            records::tickets(
                c,
                &records::TicketFilter {
                    limit: u32::MAX,
                    ..records::TicketFilter::default()
                },
            )
        }))
    }

    fn stale(&self, docs: Vec<(DocId, [u8; 16])>) -> Fut<'_, Vec<DocId>> {
        Box::pin(self.read(move |c| records::stale(c, &docs)))
    }

    fn log_refusal(&self, e: SecurityEntry, review: Option<ReviewEntry>) -> Fut<'_, ()> {
        Box::pin(self.write(move |tx| {
            if let Some(r) = &review {
                records::insert_review(tx, r)?;
            }
            records::log_security(
                tx,
                e.at,
                e.user.as_deref(),
                e.device.as_deref(),
                e.peer.as_deref(),
                &e.kind,
                &e.detail,
            )
        }))
    }
}

/// A ticket's caller with the full number (`ticket_callers`): the document
/// holds it masked.
impl Db {
    /// Records the caller of a new ticket (once; a repeat keeps the first).
    pub(crate) async fn put_caller(
        &self,
        doc: DocId,
        caller: schema::ticket::Caller,
        by: UserId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.write(move |tx| records::put_caller(tx, doc, &caller, &by, at))
            .await
    }

    /// A ticket's caller with the full number, if the relay recorded one.
    pub(crate) async fn caller(&self, doc: DocId) -> StoreResult<Option<schema::ticket::Caller>> {
        self.read(move |c| records::caller(c, doc)).await
    }
}
