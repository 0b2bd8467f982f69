//! Judging one batch of incoming changes to one document: the pure half of
//! the sync path (DESIGN.md §5). No IO and no async: given the document, what
//! the relay kept of it from the last commit, the changes and who sent them,
//! it decides which changes break a hard rule, merges the rest into a fork,
//! reads the fork back and judges every new event. The hub stores the result.
//!
//! **Architecture Invariant:** an entry (event, note, attachment) a change
//! adds is found by the list element the change inserted, never by comparing
//! ids or counts, so an entry slipped in on an old branch or in the middle of
//! a list is checked like any other; its id must be new to the whole
//! document, every branch included.

use std::collections::{HashMap, HashSet};

use automerge::{ActorId, Automerge, Change, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use schema::doc::{self, Entry, read_ticket};
use schema::inbox::DocKind;
use schema::{
    Action, DeviceId, Event, Outcome, Policy, Principal, Projection, Role, Series, Ticket, UserId,
    VerdictRecord,
};

use crate::validate::{self, HardRule, Inserted, Layout, Rejection};

/// A ticket as the judge sees it before a batch: every id already in it (on
/// any branch), the official projection, the next verdict seq.
#[derive(Clone, Debug)]
pub struct Summary {
    /// The document's heads this summary describes.
    pub heads: Vec<ChangeHash>,
    /// Ids of every event, note and attachment (one namespace).
    pub ids: HashSet<String>,
    pub official: Projection,
    pub had_serial: bool,
    pub next_seq: u64,
}

impl Summary {
    pub fn of(t: &Ticket, policy: &Policy, heads: Vec<ChangeHash>) -> Self {
        let ids = (t.events.iter().map(|e| e.id.as_str()))
            .chain(t.notes.iter().map(|n| n.id.as_str()))
            .chain(t.attachments.iter().map(|a| a.id.as_str()))
            .map(str::to_owned)
            .collect();
        Self {
            heads,
            ids,
            official: Projection::official(t, policy),
            had_serial: t.server.serial.is_some(),
            next_seq: t.next_seq(),
        }
    }
}

/// One incoming change with what the ledger needs.
#[derive(Clone, Debug)]
pub struct Incoming {
    pub hash: ChangeHash,
    pub actor: ActorId,
    pub bytes: Vec<u8>,
    pub authored_at: DateTime<Utc>,
}

/// Before this (2001-09-09 in milliseconds), a change's time is taken to be
/// in seconds: automerge-repo's JavaScript clients write seconds, ours
/// milliseconds, and no ticket predates the product.
const SECONDS_BEFORE: i64 = 1_000_000_000_000;

/// A change's authored time, read in milliseconds or seconds (a time
/// before 2001-09-09 in milliseconds is taken as seconds); 0 (no time)
/// stays the epoch.
pub fn authored_at(timestamp: i64) -> DateTime<Utc> {
    let ms = if timestamp.abs() < SECONDS_BEFORE {
        timestamp.saturating_mul(1000)
    } else {
        timestamp
    };
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Incoming {
    pub fn of(c: &mut Change) -> Self {
        Self {
            hash: c.hash(),
            actor: c.actor_id().clone(),
            bytes: c.bytes().to_vec(),
            authored_at: authored_at(c.timestamp()),
        }
    }
}

/// A judged event, with the change that carried it.
#[derive(Clone, Debug)]
pub struct Judged {
    pub event: Event,
    pub record: VerdictRecord,
    pub change: ChangeHash,
}

/// What judging one batch produced.
#[derive(Debug, Default)]
pub struct Ingest {
    /// The document with every accepted change merged (`None`: nothing merged).
    pub trial: Option<Automerge>,
    pub accepted: Vec<Incoming>,
    pub rejected: Vec<(Incoming, Rejection)>,
    pub judged: Vec<Judged>,
    /// Actors first seen in this batch, to be bound to the sender.
    pub new_actors: Vec<ActorId>,
    pub official: Option<Projection>,
    pub ticket: Option<Ticket>,
    pub serial_due: Option<Series>,
    pub kind: Option<DocKind>,
    /// Changes whose dependencies are neither in the document nor in the batch.
    pub waiting: Vec<Change>,
    /// The ticket's summary after the batch (heads to be set once committed).
    pub summary: Option<Summary>,
}

impl Ingest {
    /// The worst verdict among the events a change carried ("accepted" if none).
    pub fn outcome_of(&self, change: &ChangeHash) -> Outcome {
        worst(
            self.judged
                .iter()
                .filter(|j| &j.change == change)
                .map(|j| j.record.outcome),
        )
    }
}

/// The worst verdict among a change's events ("accepted" if it carried none).
pub fn worst(outcomes: impl Iterator<Item = Outcome>) -> Outcome {
    outcomes.max().unwrap_or(Outcome::Accepted)
}

/// Who an actor is bound to, if anyone (a lookup the caller may cache).
pub type Bindings<'a> = dyn Fn(&ActorId) -> Result<Option<(DeviceId, UserId)>, String> + 'a;

/// Everything judging a batch depends on besides the document.
pub struct Context<'a> {
    pub author: &'a Principal,
    pub relay_actor: &'a ActorId,
    pub policy: &'a Policy,
    pub limits: &'a validate::Limits,
    pub bindings: &'a Bindings<'a>,
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("author", &self.author)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Validates, merges and judges `changes` against `doc`. `summary` is what
/// the relay kept of the ticket at its last commit (ignored unless it
/// describes `doc`'s heads).
pub fn judge_batch(
    doc: &Automerge,
    mut summary: Option<Summary>,
    changes: Vec<Change>,
    cx: &Context<'_>,
) -> Ingest {
    let (ready, waiting) = validate::applicable(doc, changes);
    let mut out = Ingest {
        waiting,
        ..Ingest::default()
    };
    let mut layout = Layout::of(doc);
    let mut refused: HashSet<ChangeHash> = HashSet::new();
    let mut valid: Vec<Change> = Vec::new();
    let mut inserted: HashMap<ChangeHash, Vec<Inserted>> = HashMap::new();
    let mut bound_here: HashSet<ActorId> = HashSet::new();
    for mut change in ready {
        let info = Incoming::of(&mut change);
        let verdict = (|| -> Result<Vec<Inserted>, Rejection> {
            if let Some(dep) = change.deps().iter().find(|d| refused.contains(d)) {
                return Err(Rejection::new(
                    HardRule::AppendOnly,
                    format!("it depends on refused change {dep}"),
                ));
            }
            let actor = change.actor_id();
            if actor == cx.relay_actor {
                return Err(Rejection::new(
                    HardRule::ActorNotBound,
                    "the relay's own actor is not a device's",
                ));
            }
            let binding = (cx.bindings)(actor).map_err(|e| {
                Rejection::new(HardRule::Malformed, format!("binding lookup failed: {e}"))
            })?;
            match binding {
                Some((device, _)) if device != cx.author.device => {
                    return Err(Rejection::new(
                        HardRule::ActorNotBound,
                        format!(
                            "actor {} belongs to device {device}, not {}",
                            actor.to_hex_string(),
                            cx.author.device
                        ),
                    ));
                }
                Some(_) => {}
                None => {
                    bound_here.insert(actor.clone());
                }
            }
            validate::check_ops(&change, &mut layout, cx.author.role, cx.limits)
        })();
        match verdict {
            Ok(entries) => {
                inserted.insert(info.hash, entries);
                valid.push(change);
            }
            Err(r) => {
                refused.insert(info.hash);
                out.rejected.push((info, r));
            }
        }
    }
    out.new_actors = bound_here.into_iter().collect();
    // Merge into a fork and read it back; refuse what does not read right.
    loop {
        if valid.is_empty() {
            return out;
        }
        let mut trial = doc.fork();
        let applied = validate::guarded("merging changes", || trial.apply_changes(valid.clone()));
        let failed = match applied {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(Rejection::new(
                HardRule::Malformed,
                format!("automerge refused it: {e}"),
            )),
            Err(r) => Some(r),
        };
        if let Some(r) = failed {
            for mut c in valid.drain(..) {
                out.rejected.push((Incoming::of(&mut c), r.clone()));
            }
            return out;
        }
        match post_check(doc, &mut summary, &trial, &valid, &inserted, cx) {
            Ok(checked) => {
                out.accepted = valid.iter_mut().map(Incoming::of).collect();
                out.judged = checked.judged;
                out.official = checked.official;
                out.ticket = checked.ticket;
                out.serial_due = checked.serial_due;
                out.kind = checked.kind;
                out.summary = checked.summary;
                out.trial = Some(trial);
                return out;
            }
            Err((bad, r)) => {
                // Refuse the offending change and everything after it that depends on it.
                refused.insert(bad);
                let mut keep = Vec::new();
                for mut c in valid.drain(..) {
                    if c.hash() == bad || c.deps().iter().any(|d| refused.contains(d)) {
                        refused.insert(c.hash());
                        out.rejected.push((Incoming::of(&mut c), r.clone()));
                    } else {
                        keep.push(c);
                    }
                }
                valid = keep;
            }
        }
    }
}

struct Checked {
    judged: Vec<Judged>,
    official: Option<Projection>,
    ticket: Option<Ticket>,
    serial_due: Option<Series>,
    kind: Option<DocKind>,
    summary: Option<Summary>,
}

impl Checked {
    fn not_a_ticket(kind: Option<DocKind>) -> Self {
        Self {
            judged: Vec::new(),
            official: None,
            ticket: None,
            serial_due: None,
            kind,
            summary: None,
        }
    }
}

type Refusal = (ChangeHash, Rejection);

/// A batch that is one line of changes by an author who may not edit the
/// ticket's header (a phone's offline work: each change on the one before),
/// judged from one read of the fork: the ticket at a change is the ticket
/// at the last one without the entries the changes after it inserted. The
/// hard rules make that exact: such an author's changes only insert new
/// entries (never touch `server`, the header, or another change's entry),
/// so nothing else differs between the two reads.
struct Chain {
    full: Ticket,
    /// For each change, the ids of the entries the changes after it inserted.
    later: Vec<HashSet<String>>,
}

impl Chain {
    fn of(
        trial: &Automerge,
        trial_heads: &[ChangeHash],
        valid: &[Change],
        entries: &[Vec<Entry>],
        author: &Principal,
    ) -> Option<Self> {
        let last = valid.last()?;
        let linear = valid
            .windows(2)
            .all(|w| w[1].deps() == [w[0].hash()].as_slice());
        if valid.len() < 2
            || !linear
            || trial_heads != [last.hash()]
            || validate::edits_headers(author.role)
        {
            return None;
        }
        // A fork that does not read is judged change by change, which names
        // the change at fault and the rule it breaks.
        let Ok(full) = read_ticket(trial, None) else {
            return None;
        };
        let mut later = vec![HashSet::new(); valid.len()];
        for i in (0..valid.len().saturating_sub(1)).rev() {
            let mut ids = later[i + 1].clone();
            ids.extend(entries[i + 1].iter().map(|e| e.id().as_str().to_owned()));
            later[i] = ids;
        }
        Some(Self { full, later })
    }

    /// The ticket as change `i` of the line saw it.
    fn at(&self, i: usize) -> Ticket {
        let later = &self.later[i];
        let mut t = self.full.clone();
        if !later.is_empty() {
            t.events.retain(|e| !later.contains(e.id.as_str()));
            t.notes.retain(|n| !later.contains(n.id.as_str()));
            t.attachments.retain(|a| !later.contains(a.id.as_str()));
        }
        t
    }
}

/// Reads the entries `h` inserted, from the list elements it created.
fn entries_of(
    trial: &Automerge,
    h: ChangeHash,
    inserted: &[Inserted],
) -> Result<Vec<Entry>, Refusal> {
    let bad = |r: Rejection| (h, r);
    inserted
        .iter()
        .map(|ins| {
            let v = ReadDoc::hydrate(trial, &ins.obj, Some(&[h])).map_err(|e| {
                bad(Rejection::new(
                    HardRule::BadShape,
                    format!("an entry of `{}` cannot be read: {e}", ins.list.key()),
                ))
            })?;
            doc::entry_from_value(ins.list, &v)
                .map_err(|e| bad(Rejection::new(HardRule::BadShape, e.to_string())))
        })
        .collect()
}

/// The hard rules on the entries a change adds: each id new to the whole
/// document (`known`, which takes them), each by the change's author, each
/// attachment's hash well formed.
fn check_entries(
    h: ChangeHash,
    entries: &[Entry],
    known: &mut HashSet<String>,
    author: &Principal,
) -> Result<(), Refusal> {
    let bad = |r: Rejection| (h, r);
    for entry in entries {
        let id = entry.id().as_str();
        if known.contains(id) {
            return Err(bad(Rejection::new(
                HardRule::DuplicateId,
                format!("the document already has an entry with id {id}"),
            )));
        }
        let (by, device) = entry.author();
        if by != &author.user || device != &author.device {
            return Err(bad(Rejection::new(
                HardRule::ForgedAuthor,
                format!(
                    "an entry claims to be by {by} on {device}, but {} on {} sent it",
                    author.user, author.device
                ),
            )));
        }
        if let Entry::Attachment(a) = entry
            && !schema::judge::is_sha256_hex(&a.sha256)
        {
            return Err(bad(Rejection::new(
                HardRule::BadShape,
                "an attachment's sha256 is not 64 lowercase hex digits",
            )));
        }
        known.insert(id.to_owned());
    }
    Ok(())
}

/// DESIGN.md §3: an engineer who was assigned and has been transferred away
/// (as the change's own view of the ticket shows) keeps read access only:
/// work recorded before they learned of it still flushes, new notes and
/// attachments do not.
fn check_not_read_only(
    h: ChangeHash,
    at: &Ticket,
    entries: &[Entry],
    author: &Principal,
    policy: &Policy,
) -> Result<(), Refusal> {
    if author.role != Role::Engineer || !entries.iter().any(|e| !matches!(e, Entry::Event(_))) {
        return Ok(());
    }
    let seen = Projection::official(at, policy);
    let former = seen.assignee.as_ref() != Some(&author.user)
        && seen.engineers().into_iter().any(|e| e == &author.user);
    if former {
        return Err((
            h,
            Rejection::new(
                HardRule::ReadOnly,
                format!(
                    "the ticket was taken from {} before this change was made; it is read-only for them",
                    author.user
                ),
            ),
        ));
    }
    Ok(())
}

/// Reads the fork back at each new change: every entry it adds must be new
/// to the document and by the change's author, and the document must read
/// as its schema. Then judges each new event against what its author saw.
fn post_check(
    before: &Automerge,
    summary: &mut Option<Summary>,
    trial: &Automerge,
    valid: &[Change],
    inserted: &HashMap<ChangeHash, Vec<Inserted>>,
    cx: &Context<'_>,
) -> Result<Checked, Refusal> {
    let (author, policy) = (cx.author, cx.policy);
    let kind = doc::doc_kind(trial);
    let first = valid
        .first()
        .map(Change::hash)
        .unwrap_or_else(|| ChangeHash([0; 32]));
    match kind {
        Some(DocKind::Ticket) => {}
        Some(DocKind::Household) => {
            doc::read_household(trial)
                .map_err(|e| (first, Rejection::new(HardRule::BadShape, e.to_string())))?;
            return Ok(Checked::not_a_ticket(kind));
        }
        Some(DocKind::HouseholdPrivate) => {
            doc::read_household_private(trial)
                .map_err(|e| (first, Rejection::new(HardRule::BadShape, e.to_string())))?;
            return Ok(Checked::not_a_ticket(kind));
        }
        _ => {
            return Err((
                first,
                Rejection::new(HardRule::BadShape, "not a document type devices may write"),
            ));
        }
    }
    // The ticket before the batch: from the summary kept at the last commit
    // when the document has not moved since, else read in full.
    let exists = doc::doc_kind(before).is_some();
    let before_heads = before.get_heads();
    let old: Option<Summary> = match summary.take() {
        Some(s) if exists && s.heads == before_heads => Some(s),
        _ if exists => {
            let t = read_ticket(before, None)
                .map_err(|e| (first, Rejection::new(HardRule::BadShape, e.to_string())))?;
            Some(Summary::of(&t, policy, before_heads))
        }
        _ => None,
    };
    let is_new = old.is_none();
    let (mut known, mut official, had_serial, mut seq) = match old {
        Some(s) => (s.ids, s.official, s.had_serial, s.next_seq),
        None => (
            HashSet::new(),
            Projection::new(
                read_ticket(trial, None)
                    .map(|t| t.header.kind)
                    .unwrap_or(schema::Kind::Repair),
            ),
            false,
            1,
        ),
    };
    let trial_heads = trial.get_heads();
    let mut all_entries = Vec::with_capacity(valid.len());
    for change in valid {
        let h = change.hash();
        all_entries.push(entries_of(
            trial,
            h,
            inserted.get(&h).map_or(&[], Vec::as_slice),
        )?);
    }
    let chain = Chain::of(trial, &trial_heads, valid, &all_entries, author);
    let mut last: Option<(ChangeHash, Ticket)> = None;
    let mut judged = Vec::new();
    let mut serial_due = None;
    for (i, (change, entries)) in valid.iter().zip(&all_entries).enumerate() {
        let h = change.hash();
        let bad = |r: Rejection| (h, r);
        check_entries(h, entries, &mut known, author)?;
        let at = match chain.as_ref() {
            Some(chain) => Ok(chain.at(i)),
            // At the fork's own heads the plain read is the same and cheaper.
            None if trial_heads == [h] => read_ticket(trial, None),
            None => read_ticket(trial, Some(&[h])),
        }
        .map_err(|e| bad(Rejection::new(HardRule::BadShape, e.to_string())))?;
        debug_assert_eq!(
            Ok(&at),
            read_ticket(trial, Some(&[h])).as_ref(),
            "the ticket derived from one read differs from the read at the change"
        );
        let entries = entries.as_slice();
        if is_new && at.header.reported.by != author.user {
            return Err(bad(Rejection::new(
                HardRule::ForgedAuthor,
                format!(
                    "the ticket says it was reported by {}, but {} sent it",
                    at.header.reported.by, author.user
                ),
            )));
        }
        if is_new
            && let Some(c) = &at.header.caller
            && !schema::ticket::is_masked(&c.phone)
        {
            return Err(bad(Rejection::new(
                HardRule::BadShape,
                "a ticket carries the caller's number masked (138****1234); the relay keeps the full number apart",
            )));
        }
        check_not_read_only(h, &at, entries, author, policy)?;
        let new: HashSet<&str> = entries
            .iter()
            .filter(|e| matches!(e, Entry::Event(_)))
            .map(|e| e.id().as_str())
            .collect();
        // Judged in document order, as the author's view lists them.
        let new_events: Vec<Event> = at
            .events
            .iter()
            .filter(|e| new.contains(e.id.as_str()))
            .cloned()
            .collect();
        if new_events.len() != new.len() {
            return Err(bad(Rejection::new(
                HardRule::BadShape,
                "an event the change adds is not in its own view of the ticket",
            )));
        }
        for e in new_events {
            let seen = Projection::seen_before(&at, author, &e.id, policy);
            let v = policy.judge(author, &seen, &official, &e);
            let record = VerdictRecord {
                seq,
                outcome: v.outcome,
                rule: v.rule.name().to_owned(),
                reason: v.reason,
                at: cx.now,
            };
            seq += 1;
            official.fold_one(&e, &record, policy);
            if v.outcome == Outcome::Accepted
                && e.action() == Some(Action::Issue)
                && !had_serial
                && serial_due.is_none()
            {
                serial_due = Series::for_kind(at.header.kind);
            }
            judged.push(Judged {
                event: e,
                record,
                change: h,
            });
        }
        last = Some((h, at));
    }
    let ticket = match last {
        Some((h, t)) if trial_heads == [h] => t,
        _ => read_ticket(trial, None)
            .map_err(|e| (first, Rejection::new(HardRule::BadShape, e.to_string())))?,
    };
    let summary = Summary {
        heads: Vec::new(),
        ids: known,
        official: official.clone(),
        had_serial,
        next_seq: seq,
    };
    Ok(Checked {
        judged,
        official: Some(official),
        ticket: Some(ticket),
        serial_due,
        kind,
        summary: Some(summary),
    })
}

#[cfg(test)]
mod tests;
