//! Entry points for the fuzz targets in `server/fuzz/`: thin wrappers over
//! crate-private checks (the hard rules, token verification). Not part of
//! the relay's API; hidden from its docs.

use automerge::patches::PatchLog;
use automerge::transaction::Transaction;
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, Utc};
use schema::doc;
use schema::ticket::{Attachment, Channel, Note, Reported, TicketHeader, Urgency};
use schema::{
    Department, DeviceId, Event, EventData, EventId, Kind, Policy, Principal, Role, UserId,
};

use crate::auth::{self, Keys};
use relay_core::batch;
use relay_core::validate::{self, Limits};

/// What the hard rules made of one sync message's chunks.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Checked {
    /// Changes that passed the hard rules.
    pub passed: usize,
    /// Changes refused, or the whole message refused.
    pub refused: usize,
}

/// Unpacks `chunks` as a sync message's changes and judges them against
/// `doc` as the relay judges a batch from an engineer (`eng1`'s phone, or
/// the given role): hard rules, trial merge (under the relay's guard), the
/// read-back and the verdicts. Must never panic.
///
/// # Panics
/// When the relay would merge a batch after which the ticket no longer
/// reads (for instance an id twice): that is a finding.
pub fn validate_changes(doc: &Automerge, chunks: &[&[u8]], role: Role) -> Checked {
    let limits = Limits::default();
    let changes = match validate::changes_in(chunks.iter().copied(), &limits) {
        Ok(c) => c,
        Err(_) => {
            return Checked {
                passed: 0,
                refused: 1,
            };
        }
    };
    judge(doc, changes, role)
}

fn judge(doc: &Automerge, changes: Vec<automerge::Change>, role: Role) -> Checked {
    let limits = Limits::default();
    let author = Principal {
        user: UserId::new("eng1").expect("a user id"),
        role,
        department: Department::Engineering,
        device: DeviceId::new("eng1-phone").expect("a device id"),
    };
    let relay = ActorId::from([0xee; 16]);
    let unbound = |_: &ActorId| Ok(None);
    let cx = batch::Context {
        author: &author,
        relay_actor: &relay,
        policy: &Policy::default(),
        limits: &limits,
        bindings: &unbound,
        now: Utc::now(),
    };
    let out = batch::judge_batch(doc, None, changes, &cx);
    if let Some(trial) = &out.trial
        && schema::doc::doc_kind(trial) == Some(schema::inbox::DocKind::Ticket)
    {
        let read = schema::doc::read_ticket(trial, None);
        assert!(
            read.is_ok(),
            "the relay merged a batch that does not read: {read:?}"
        );
    }
    Checked {
        passed: out.accepted.len(),
        refused: out.rejected.len(),
    }
}

/// A ticket with a history (issued, assigned to eng1, accepted, a note and
/// an attachment), and every version of it: the ground for changes built on
/// old heads (automerge's `changeAt`).
#[derive(Debug)]
pub struct Branches {
    doc: Automerge,
    history: Vec<Vec<ChangeHash>>,
    ids: Vec<EventId>,
}

impl Branches {
    /// Builds the history.
    ///
    /// # Panics
    /// Never: the fixture's writes are well formed.
    pub fn new() -> Self {
        let desk = ActorId::from([1; 16]);
        let phone = ActorId::from([2; 16]);
        let mut doc = Automerge::new().with_actor(desk);
        let mut history = Vec::new();
        let mut ids = Vec::new();
        let at = Utc::now();
        let entry = |action: &str, by: &str, data: EventData| Event {
            id: EventId::random(),
            action: action.into(),
            by: UserId::new(by).expect("a user id"),
            device: DeviceId::new(format!("{by}-phone")).expect("a device id"),
            at,
            data,
        };
        let mut step = |doc: &mut Automerge, f: &mut dyn FnMut(&mut Transaction<'_>)| {
            let mut tx = doc.transaction();
            f(&mut tx);
            tx.commit();
            history.push(doc.get_heads());
        };
        let issue = entry(
            "issue",
            "frontdesk",
            EventData {
                category: Some("general".into()),
                urgency: Some(Urgency::Normal),
                ..EventData::default()
            },
        );
        let assign = entry(
            "assign",
            "frontdesk",
            EventData {
                assignee: Some(UserId::new("eng1").expect("a user id")),
                ..EventData::default()
            },
        );
        ids.extend([issue.id.clone(), assign.id.clone()]);
        step(&mut doc, &mut |tx| {
            doc::create_ticket(
                tx,
                &TicketHeader {
                    kind: Kind::Repair,
                    household: None,
                    location: "B2-301".into(),
                    title: "Door lock jammed".into(),
                    description: String::new(),
                    reported: Reported {
                        by: UserId::new("frontdesk").expect("a user id"),
                        channel: Channel::WalkIn,
                        at,
                    },
                    caller: None,
                },
            )
            .expect("create");
            doc::append_event(tx, &issue).expect("issue");
            doc::append_event(tx, &assign).expect("assign");
        });
        doc.set_actor(phone);
        let accept = entry("accept", "eng1", EventData::default());
        ids.push(accept.id.clone());
        step(&mut doc, &mut |tx| {
            doc::append_event(tx, &accept).expect("accept")
        });
        let note = Note {
            id: EventId::random(),
            by: UserId::new("eng1").expect("a user id"),
            device: DeviceId::new("eng1-phone").expect("a device id"),
            at,
            text: "spring broken".into(),
        };
        ids.push(note.id.clone());
        step(&mut doc, &mut |tx| {
            doc::append_note(tx, &note).expect("note")
        });
        let photo = attachment(EventId::random(), "eng1");
        ids.push(photo.id.clone());
        step(&mut doc, &mut |tx| {
            doc::append_attachment(tx, &photo).expect("photo")
        });
        Self { doc, history, ids }
    }

    /// A change built from `input`: its first bytes choose the version it
    /// is built on, what it adds (event, note or attachment), whether it
    /// reuses an id already in the document and which, and who it claims
    /// wrote it; the rest overwrite bytes of the change.
    pub fn change(&self, input: &[u8]) -> Vec<u8> {
        let byte = |i: usize| input.get(i).copied().unwrap_or(0);
        let heads = &self.history[usize::from(byte(0)) % self.history.len()];
        let id = if byte(1) & 1 == 1 {
            self.ids[usize::from(byte(2)) % self.ids.len()].clone()
        } else {
            EventId::random()
        };
        let by = ["eng1", "eng2", "manager"][usize::from(byte(3)) % 3];
        let action =
            ["accept", "start", "close", "hand_back", "complete"][usize::from(byte(4)) % 5];
        let mut doc = self.doc.fork().with_actor(ActorId::from([3; 16]));
        let Ok(mut tx) = doc.transaction_at(PatchLog::inactive(), heads) else {
            return Vec::new();
        };
        let at = Utc::now();
        let written = match byte(1) >> 6 {
            0 | 1 => doc::append_event(
                &mut tx,
                &Event {
                    id,
                    action: action.into(),
                    by: UserId::new(by).expect("a user id"),
                    device: DeviceId::new(format!("{by}-phone")).expect("a device id"),
                    at,
                    data: EventData::default(),
                },
            ),
            2 => doc::append_note(
                &mut tx,
                &Note {
                    id,
                    by: UserId::new(by).expect("a user id"),
                    device: DeviceId::new(format!("{by}-phone")).expect("a device id"),
                    at,
                    text: "branch".into(),
                },
            ),
            _ => doc::append_attachment(&mut tx, &attachment(id, by)),
        };
        if written.is_err() {
            return Vec::new();
        }
        let (Some(hash), _) = tx.commit() else {
            return Vec::new();
        };
        let mut bytes = doc
            .get_change_by_hash(&hash)
            .map(|c| c.raw_bytes().to_vec())
            .unwrap_or_default();
        for pair in input.get(5..).unwrap_or_default().chunks_exact(3) {
            if bytes.is_empty() {
                break;
            }
            let at = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % bytes.len();
            bytes[at] = pair[2];
        }
        bytes
    }

    /// Judges `change` against the latest version as eng1's phone.
    pub fn judge(&self, change: &[u8]) -> Checked {
        validate_changes(&self.doc, &[change], Role::Engineer)
    }
}

impl Default for Branches {
    fn default() -> Self {
        Self::new()
    }
}

fn attachment(id: EventId, by: &str) -> Attachment {
    Attachment {
        id,
        sha256: "ab".repeat(32),
        mime: "image/jpeg".into(),
        size: 10,
        caption: String::new(),
        by: UserId::new(by).expect("a user id"),
        device: DeviceId::new(format!("{by}-phone")).expect("a device id"),
        at: Utc::now(),
    }
}

/// A key set with one fresh key, and a token it signed for `manager` on
/// `manager-web` valid from `now` for an hour.
///
/// # Panics
/// Never: the key set is not empty.
pub fn keys_and_token(now: DateTime<Utc>) -> (Keys, String) {
    let keys = Keys::new(vec![auth::new_key()]);
    let token = keys
        .issue(
            "manager",
            "manager-web",
            "session",
            now,
            chrono::Duration::hours(1),
        )
        .unwrap_or_default();
    (keys, token)
}

#[cfg(test)]
mod tests;
