//! What one sync step of one document stores, all or nothing, and the
//! document's own part of it (the seal): the relay's verdicts, the serial
//! number once the store has taken it, the receipt time, written into the
//! document inside the store's transaction; the bytes to store; the register
//! row and the access rows the new state implies.
//!
//! **Architecture Invariant:** a commit is data. The store decides how it is
//! written (one transaction, the serial counter row-locked or written by the
//! one writer), never what is written.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, ChangeHash};
use chrono::{DateTime, SubsecRound, Utc};
use schema::doc::{self, DocError};
use schema::inbox::DocKind;
use schema::ticket::Channel;
use schema::{
    Action, Department, DeviceId, DocId, DocUrl, EventId, Fen, Kind, Outcome, Projection, Serial,
    Series, Status, Ticket, UserId, VerdictRecord,
};

use crate::ledger::{ChangeEntry, Resolution, ReviewEntry, VerdictEntry};

/// Over this many bytes of chunks (or the snapshot's size, if larger) a
/// document is compacted into one snapshot.
pub const COMPACT_AFTER: u64 = 64 * 1024;

/// Everything one sync step of one document stores, all or nothing.
#[derive(Debug)]
pub struct Commit {
    pub doc: DocId,
    /// The document's kind, when the commit creates it.
    pub create: Option<DocKind>,
    /// Actors first seen in this step, bound to the sending device.
    pub bind: Vec<(ActorId, DeviceId, UserId)>,
    /// The series a serial number is due in (an order's creation was accepted).
    pub serial_due: Option<Series>,
    pub changes: Vec<ChangeEntry>,
    pub verdicts: Vec<VerdictEntry>,
    pub reviews: Vec<ReviewEntry>,
    pub resolutions: Vec<Resolution>,
    pub at: DateTime<Utc>,
    /// The ticket's audience may have changed: queue its inboxes (durably,
    /// in this transaction) to be brought up to date.
    pub inbox_queue: bool,
    /// For an inbox document: whose it is and which tickets it now lists
    /// (`true`) or no longer lists (`false`), kept in the inbox mirror.
    pub inbox_mirror: Option<(UserId, Vec<(DocId, bool)>)>,
    /// The document's part; `None` when nothing was merged.
    pub seal: Option<Seal>,
}

impl Commit {
    /// A commit of `doc` at `at` with nothing in it yet.
    pub fn new(doc: DocId, at: DateTime<Utc>) -> Self {
        Self {
            doc,
            create: None,
            bind: Vec::new(),
            serial_due: None,
            changes: Vec::new(),
            verdicts: Vec::new(),
            reviews: Vec::new(),
            resolutions: Vec::new(),
            at,
            inbox_queue: false,
            inbox_mirror: None,
            seal: None,
        }
    }
}

/// Who may still sync a ticket besides the roles that see everything: its
/// assignee, and engineers it was taken from (to flush offline work).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grant {
    /// The current assignee: listed, reads and writes.
    Assignee,
    /// A former assignee: may still sync, not listed.
    Former,
}

impl Grant {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Grant::Assignee => "rw",
            Grant::Former => "flush",
        }
    }
}

/// A ticket's row in the register (a read model kept in the same commit).
#[derive(Clone, Debug, PartialEq)]
pub struct Register {
    pub doc: DocId,
    pub kind: Kind,
    pub status: Status,
    pub serial: Option<Serial>,
    pub title: String,
    pub location: String,
    pub household: Option<DocUrl>,
    pub assignee: Option<UserId>,
    pub department: Option<Department>,
    pub created_by: UserId,
    pub channel: Channel,
    pub reported_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub paid: bool,
    pub projection: Projection,
    /// The blobs the ticket references (attachments and event photos).
    pub blobs: Vec<String>,
}

impl Register {
    /// The register row of ticket `t` with official projection `p`.
    pub fn of(
        doc: DocId,
        t: &Ticket,
        p: &Projection,
        serial: Option<Serial>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            doc,
            kind: t.header.kind,
            status: p.status,
            serial,
            title: t.header.title.clone(),
            location: t.header.location.clone(),
            household: t.header.household,
            assignee: p.assignee.clone(),
            department: p.department,
            created_by: t.header.reported.by.clone(),
            channel: t.header.reported.channel,
            reported_at: t.header.reported.at,
            received_at: p.received_at.unwrap_or(now),
            updated_at: now,
            paid: p.paid,
            projection: p.clone(),
            blobs: ticket_blobs(t),
        }
    }
}

/// The blobs a ticket references: its attachments, its events' photos and
/// the residents' signatures.
pub fn ticket_blobs(t: &Ticket) -> Vec<String> {
    let mut out: Vec<String> = t
        .attachments
        .iter()
        .map(|a| a.sha256.clone())
        .chain(t.events.iter().flat_map(|e| e.data.photos.iter().cloned()))
        .chain(t.events.iter().filter_map(|e| e.data.signature.clone()))
        .filter(|s| schema::judge::is_sha256_hex(s))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A paid order's charge collected by the cashier in this step (an accepted
/// `collect` on a ticket of a household), which the store posts to the
/// household's fee ledger in the same transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    /// The `collect` event: the ledger entries are keyed by it, so a
    /// repeated commit posts nothing twice.
    pub event: EventId,
    pub household: DocId,
    pub kind: Kind,
    pub serial: Option<Serial>,
    pub amount: Fen,
    /// As the event names it (one of `schema::ticket::PAYMENT_METHODS`).
    pub method: String,
    pub by: UserId,
}

/// The collections among `records` (verdicts just written) of ticket `t`.
fn collections(
    t: &Ticket,
    records: &[(EventId, VerdictRecord)],
    serial: Option<Serial>,
) -> Vec<Collection> {
    let Some(household) = t.header.household else {
        return Vec::new();
    };
    records
        .iter()
        .filter(|(_, r)| r.outcome == Outcome::Accepted)
        .filter_map(|(id, _)| t.event(id))
        .filter(|e| e.action() == Some(Action::Collect))
        .filter_map(|e| {
            Some(Collection {
                event: e.id.clone(),
                household: household.id(),
                kind: t.header.kind,
                serial,
                amount: e.data.amount_fen.filter(|a| a.get() > 0)?,
                method: e.data.method.clone()?,
                by: e.by.clone(),
            })
        })
        .collect()
}

/// Why a seal could not be made.
#[derive(Debug, thiserror::Error)]
#[error("writing the relay's change: {0}")]
pub struct SealError(#[from] DocError);

/// The document's part of a commit, made inside the store's transaction
/// once the serial number (if one was due) is known.
#[derive(Debug)]
pub struct Seal {
    pub(crate) trial: Automerge,
    pub(crate) relay: ActorId,
    pub(crate) records: Vec<(EventId, VerdictRecord)>,
    /// A ticket being created gets the relay's receipt time.
    pub(crate) stamp_received: bool,
    /// The ticket after the step and its official projection (tickets only).
    pub(crate) ticket: Option<(Ticket, Projection)>,
    pub(crate) persisted: Vec<ChangeHash>,
    pub(crate) snapshot_len: usize,
    pub(crate) now: DateTime<Utc>,
}

/// What the seal gives the store to write, and the document back.
#[derive(Debug)]
pub struct Sealed {
    /// The new incremental bytes (may be empty).
    pub chunk: Vec<u8>,
    /// A full snapshot replacing every chunk, when the chunks outgrew it.
    pub snapshot: Option<Vec<u8>>,
    /// The ticket's register row, for tickets.
    pub register: Option<Register>,
    /// Who may sync the ticket besides the roles that see everything.
    pub access: Option<Vec<(UserId, Grant)>>,
    /// Extra grants (the household file of an engineer's ticket).
    pub grants: Vec<(DocId, UserId)>,
    /// The ticket as committed (the relay's verdicts, serial and receipt
    /// time included): the reports' read model, for tickets.
    pub ticket: Option<Ticket>,
    /// Charges collected in this step, for the household fee ledger.
    pub collections: Vec<Collection>,
    /// The document as committed.
    pub doc: Automerge,
}

impl Seal {
    /// Writes the relay's change (verdicts, `serial`, the receipt time) into
    /// the document and returns what to store. `stored` is how many bytes
    /// of chunks the store holds for the document (for compaction).
    ///
    /// # Errors
    /// When automerge refuses the relay's writes (a serial already set).
    pub fn seal(
        self,
        doc_id: DocId,
        serial: Option<Serial>,
        stored: u64,
    ) -> Result<Sealed, SealError> {
        let Seal {
            mut trial,
            relay,
            records,
            stamp_received,
            ticket,
            persisted,
            snapshot_len,
            now,
        } = self;
        trial.set_actor(relay);
        if !records.is_empty() || serial.is_some() || stamp_received {
            let mut t = trial.transaction();
            for (event, record) in &records {
                doc::put_verdict(&mut t, event, record)?;
            }
            if let Some(s) = serial {
                doc::set_serial(&mut t, s)?;
            }
            if stamp_received {
                doc::set_received_at(&mut t, now)?;
            }
            t.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
        }
        let chunk = trial.save_after(&persisted);
        let snapshot = (stored + chunk.len() as u64 > (snapshot_len as u64).max(COMPACT_AFTER))
            .then(|| trial.save());
        // The ticket as the document now reads: times to the millisecond,
        // as the document keeps them.
        let ticket = ticket.map(|(mut t, p)| {
            for (event, record) in &records {
                let mut record = record.clone();
                record.at = record.at.trunc_subsecs(3);
                t.server.verdicts.insert(event.clone(), record);
            }
            if let Some(s) = serial {
                t.server.serial = Some(s);
            }
            if stamp_received {
                t.server.received_at = Some(now.trunc_subsecs(3));
            }
            (t, p)
        });
        let collections = match &ticket {
            Some((t, _)) => collections(t, &records, serial.or(t.server.serial)),
            None => Vec::new(),
        };
        let (register, access, grants) = match &ticket {
            Some((t, p)) => {
                let access = p
                    .engineers()
                    .into_iter()
                    .map(|e| {
                        let g = if p.assignee.as_ref() == Some(e) {
                            Grant::Assignee
                        } else {
                            Grant::Former
                        };
                        (e.clone(), g)
                    })
                    .collect();
                let grants = t
                    .header
                    .household
                    .zip(p.assignee.clone())
                    .map(|(h, a)| (h.id(), a))
                    .into_iter()
                    .collect();
                let serial = serial.or(t.server.serial);
                (
                    Some(Register::of(doc_id, t, p, serial, now)),
                    Some(access),
                    grants,
                )
            }
            None => (None, None, Vec::new()),
        };
        Ok(Sealed {
            chunk,
            snapshot,
            register,
            access,
            grants,
            ticket: ticket.map(|(t, _)| t),
            collections,
            doc: trial,
        })
    }
}

/// Runs `f` as the relay on `trial` (inboxes, seeded files) and returns the
/// seal that stores it.
///
/// # Errors
/// `f`'s own error.
pub fn relay_seal(
    mut trial: Automerge,
    relay: ActorId,
    persisted: Vec<ChangeHash>,
    snapshot_len: usize,
    now: DateTime<Utc>,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), DocError>,
) -> Result<Seal, DocError> {
    trial.set_actor(relay.clone());
    let mut t = trial.transaction();
    f(&mut t)?;
    t.commit_with(CommitOptions::default().with_time(now.timestamp_millis()));
    Ok(Seal {
        trial,
        relay,
        records: Vec::new(),
        stamp_received: false,
        ticket: None,
        persisted,
        snapshot_len,
        now,
    })
}
