//! The storage the sync path needs (documents, ledgers, number series,
//! sessions) as one backend-neutral trait, and its SQLite implementation on
//! [`Db`]. A PostgreSQL backend implements the same trait: `commit_document`
//! in one transaction with the number series row-locked.
//!
//! **Architecture Invariant:** the hub reaches storage only through
//! [`Storage`]; nothing in `hub.rs` names SQLite.

use std::any::Any;

use chrono::{DateTime, Utc};
use futures_util::future::BoxFuture;
use schema::{DeviceId, DocId, Serial, Series, UserId};

use super::records::{
    self, ChangeRow, ReviewRow, SessionCounters, StoredDoc, TicketRow, User, VerdictRow,
};
use super::{Db, StoreError, StoreResult};

/// A boxed future of a store result.
pub(crate) type Fut<'a, T> = BoxFuture<'a, StoreResult<T>>;

/// What the document itself contributes to a commit, made inside the
/// transaction once the serial (if one was due) is known: the relay's change
/// is written into the document, and its bytes come back to be stored.
pub(crate) type Seal = Box<dyn FnOnce(Option<Serial>, u64) -> StoreResult<Sealed> + Send>;

/// The document's part of a commit.
pub(crate) struct Sealed {
    /// The new incremental bytes (may be empty).
    pub(crate) chunk: Vec<u8>,
    /// A full snapshot replacing every chunk, when the chunks outgrew it.
    pub(crate) snapshot: Option<Vec<u8>>,
    /// The ticket register row, for tickets.
    pub(crate) register: Option<TicketRow>,
    /// Who may sync the ticket besides the roles that see everything.
    pub(crate) access: Option<Vec<(UserId, &'static str)>>,
    /// Extra grants (household files of an engineer's tickets).
    pub(crate) grants: Vec<(DocId, UserId)>,
    /// The document itself, handed back to the caller.
    pub(crate) doc: Box<dyn Any + Send>,
}

/// Everything one sync step of one document stores, all or nothing.
pub(crate) struct DocBatch {
    pub(crate) doc_id: DocId,
    /// The document's kind, when the batch creates it.
    pub(crate) create: Option<&'static str>,
    /// Actors first seen in this batch, bound to the sending device.
    pub(crate) bind: Vec<(String, DeviceId, UserId)>,
    /// The series a serial number is due in (an order's creation was accepted).
    pub(crate) serial_due: Option<Series>,
    /// One row per change received.
    pub(crate) changes: Vec<ChangeRow>,
    /// One row per judged event.
    pub(crate) verdicts: Vec<VerdictRow>,
    /// Review items (with the raw change, for hard rejections).
    pub(crate) reviews: Vec<(ReviewRow, Option<Vec<u8>>)>,
    /// Review items resolved: (event id, by, `override`/`dismiss`).
    pub(crate) resolutions: Vec<(String, UserId, String)>,
    /// When.
    pub(crate) at: DateTime<Utc>,
    /// Time for the serial, read inside the transaction.
    pub(crate) clock: crate::hub::Clock,
    /// The ticket's audience may have changed: queue its inboxes (durably,
    /// in this transaction) to be brought up to date.
    pub(crate) inbox_queue: bool,
    /// For an inbox document: whose it is and which tickets it now lists
    /// (`true`) or no longer lists (`false`), kept in the inbox mirror.
    pub(crate) inbox_mirror: Option<(UserId, Vec<(DocId, bool)>)>,
    /// The document's part; `None` when nothing was merged.
    pub(crate) seal: Option<Seal>,
}

/// What a commit returns.
pub(crate) struct Committed {
    pub(crate) serial: Option<Serial>,
    pub(crate) snapshot_len: Option<usize>,
    pub(crate) doc: Option<Box<dyn Any + Send>>,
}

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

/// The relay's storage, as the sync path uses it.
pub(crate) trait Storage: Send + Sync + std::fmt::Debug {
    /// A document's stored bytes.
    fn load_document(&self, id: DocId) -> Fut<'_, Option<StoredDoc>>;
    /// Stores one document's sync step in one durable transaction.
    fn commit_document(&self, batch: DocBatch) -> Fut<'_, Committed>;
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
    fn log_refusal(
        &self,
        entry: SecurityEntry,
        review: Option<(ReviewRow, Vec<u8>)>,
    ) -> Fut<'_, ()>;
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
}

/// The `meta` key saying the inbox mirror was filled from the inbox documents.
const MIRROR_READY: &str = "inbox_mirror_ready";

/// Over this many bytes of chunks (or the snapshot's size, if larger) a
/// document is compacted into one snapshot.
pub(crate) const COMPACT_AFTER: u64 = 64 * 1024;

impl Storage for Db {
    fn load_document(&self, id: DocId) -> Fut<'_, Option<StoredDoc>> {
        Box::pin(self.read(move |c| records::load_document(c, id)))
    }

    fn commit_document(&self, batch: DocBatch) -> Fut<'_, Committed> {
        Box::pin(self.write(move |tx| {
            let DocBatch {
                doc_id: id,
                create,
                bind,
                serial_due,
                changes,
                verdicts,
                reviews,
                resolutions,
                at,
                clock,
                seal,
                inbox_queue,
                inbox_mirror,
            } = batch;
            if let Some(kind) = create {
                records::insert_document(tx, id, kind, at)?;
            }
            for (actor, device, user) in &bind {
                records::bind_actor(tx, actor, device, user, at)?;
            }
            let serial = match serial_due {
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
            let mut committed = Committed {
                serial,
                snapshot_len: None,
                doc: None,
            };
            if let Some(seal) = seal {
                let stored: i64 = tx
                    .query_row(
                        "SELECT chunk_bytes FROM documents WHERE doc_id = ?1",
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .unwrap_or(0);
                let sealed = seal(serial, u64::try_from(stored).unwrap_or(0))?;
                if let Some(snapshot) = &sealed.snapshot {
                    records::compact(tx, id, snapshot)?;
                    committed.snapshot_len = Some(snapshot.len());
                } else if !sealed.chunk.is_empty() {
                    records::append_chunk(tx, id, &sealed.chunk, at)?;
                }
                if let Some(row) = &sealed.register {
                    records::upsert_ticket(tx, row)?;
                }
                if let Some(access) = &sealed.access {
                    records::set_access(tx, id, access)?;
                }
                for (doc, user) in &sealed.grants {
                    records::grant_access(tx, *doc, user, "rw")?;
                }
                committed.doc = Some(sealed.doc);
            }
            for c in &changes {
                records::insert_change(tx, c)?;
            }
            for v in &verdicts {
                records::insert_verdict(tx, v)?;
            }
            for (r, payload) in &reviews {
                records::insert_review(tx, r, payload.as_deref())?;
            }
            for (event, by, how) in &resolutions {
                records::resolve_review(tx, id, event, by, how, at)?;
            }
            if inbox_queue {
                records::inboxes::queue(tx, id)?;
            }
            if let Some((user, entries)) = &inbox_mirror {
                records::inboxes::set_entries(tx, user, entries)?;
            }
            Ok(committed)
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

    fn log_refusal(&self, e: SecurityEntry, review: Option<(ReviewRow, Vec<u8>)>) -> Fut<'_, ()> {
        Box::pin(self.write(move |tx| {
            if let Some((r, payload)) = &review {
                records::insert_review(tx, r, Some(payload))?;
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
