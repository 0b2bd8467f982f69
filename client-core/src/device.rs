//! The device: one store, one identity, the role actions and the sync session.
//!
//! [`Device`] is what the CLI and the integration tests hold. Every action is
//! checked with [`schema::Policy::check`] against what the device knows (the
//! official projection plus its own pending events) and refused, with the
//! rule's name and reason, before any change is made; an allowed action is one
//! Automerge change, committed to the store in one transaction together with
//! its pending row.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use automerge::transaction::CommitOptions;
use automerge::{ActorId, Automerge, Change};
use chrono::{DateTime, Utc};
use schema::doc::{DocError, ShapeError};
use schema::lifecycle::creation_action;
use schema::projection::Pending;
use schema::ticket::{Channel, Note, Reported, TicketHeader, Urgency};
use schema::wire::PeerId;
use schema::{
    Action, Department, DeviceId, DocId, DocUrl, Event, EventData, EventId, Kind, Policy,
    Principal, Projection, Role, Ticket, UserId, VerdictRecord,
};

use crate::store::{
    self, DocRow, Listing, LoadReport, PendingRow, QuarantineRow, Store, StoreError,
};

mod photos;
mod session;
mod sync_log;

pub use session::{Session, SyncSummary};

/// Why the device refused an action: the rule's stable name and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, thiserror::Error)]
#[error("{rule}: {reason}")]
pub struct Refused {
    /// `not_assignee`, `wrong_state`, `read_only`, …
    pub rule: String,
    /// For people.
    pub reason: String,
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The action is not allowed; nothing was written.
    #[error("refused: {0}")]
    Refused(Refused),
    /// The store failed; nothing was written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The device has no identity yet.
    #[error("the device is not enrolled: run enroll first")]
    NotEnrolled,
    /// No document matches what was given.
    #[error("no ticket {0:?} on this device")]
    UnknownTicket(String),
    /// The document is not a ticket (or not fetched yet).
    #[error("document {doc} is not a readable ticket: {source}")]
    NotATicket {
        /// The document.
        doc: DocId,
        /// Why.
        #[source]
        source: ShapeError,
    },
    /// Automerge refused a write.
    #[error("writing the document: {0}")]
    Doc(#[from] DocError),
    /// A photo named in an action is not in the store.
    #[error("photo {0} is not in the device store: add it first")]
    UnknownPhoto(String),
    /// The relay could not be reached or answered with an error.
    #[error(transparent)]
    Relay(#[from] crate::relay::RelayError),
    /// Another part of the device panicked while holding the store.
    #[error("the store lock is poisoned")]
    Poisoned,
}

impl From<Refused> for DeviceError {
    fn from(r: Refused) -> Self {
        DeviceError::Refused(r)
    }
}

/// Who the device acts for, and where its relay is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Identity {
    /// The relay's base URL (`http://host:port`).
    pub relay: String,
    /// The device token.
    pub token: String,
    /// The user, role, department and device.
    pub principal: Principal,
    /// The user's inbox document.
    pub inbox: Option<DocUrl>,
    /// The relay's peer id, as `/api/v1/me` gives it.
    pub relay_peer_id: Option<String>,
}

/// A ticket as the device shows it: the official state and, separately, the
/// device's own pending events.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TicketView {
    /// The document.
    pub url: DocUrl,
    /// The serial number, once the relay gave one.
    pub serial: Option<String>,
    /// The ticket as read.
    pub ticket: Ticket,
    /// The official projection: accepted events in verdict order.
    pub official: Projection,
    /// The projection with this device's pending events applied on top.
    pub with_pending: Projection,
    /// This device's pending events, each with whether it would stand.
    pub pending: Vec<PendingView>,
    /// Whether the user may only read it.
    pub read_only: bool,
    /// What could not be read from the store.
    pub load: LoadReport,
}

/// One pending event as shown.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PendingView {
    /// The event.
    pub event: Event,
    /// `None` if it applies on top of the official state; the rule otherwise.
    pub refused: Option<Refused>,
}

impl From<Pending> for PendingView {
    fn from(p: Pending) -> Self {
        Self {
            event: p.event,
            refused: p.refused.map(|f| Refused {
                rule: f.rule.name().to_owned(),
                reason: f.reason,
            }),
        }
    }
}

/// An on-site ticket to record (`report`).
#[derive(Clone, Debug)]
pub struct Report {
    /// The kind: repair or paid service become orders (`issue`), others matters (`record`).
    pub kind: Kind,
    /// The household file, or none for a public area.
    pub household: Option<DocUrl>,
    /// Where.
    pub location: String,
    /// One line.
    pub title: String,
    /// What was found.
    pub description: String,
    /// Repair category (orders).
    pub category: Option<String>,
    /// Urgency.
    pub urgency: Urgency,
}

/// The device.
#[derive(Debug)]
pub struct Device {
    store: Arc<Mutex<Store>>,
    policy: Policy,
    clock: fn() -> DateTime<Utc>,
}

const META_KEYS: [&str; 9] = [
    "relay",
    "token",
    "user",
    "role",
    "department",
    "device",
    "inbox",
    "relay_peer_id",
    "actor",
];

impl Device {
    /// Opens (creating if needed) the device store at `path`.
    ///
    /// # Errors
    /// When the store cannot be opened or migrated.
    pub fn open(path: &Path) -> Result<Self, DeviceError> {
        Ok(Self::with_store(Store::open(path)?))
    }

    /// Opens (creating if needed) the device store `name` through the SQLite
    /// VFS `vfs` (the field app in the browser).
    ///
    /// # Errors
    /// When the store cannot be opened or migrated.
    pub fn open_vfs(name: &str, vfs: &str) -> Result<Self, DeviceError> {
        Ok(Self::with_store(Store::open_vfs(name, vfs)?))
    }

    /// A device with an in-memory store (tests).
    ///
    /// # Errors
    /// When SQLite fails.
    pub fn open_in_memory() -> Result<Self, DeviceError> {
        Ok(Self::with_store(Store::open_in_memory()?))
    }

    fn with_store(store: Store) -> Self {
        Self {
            store: Arc::new(Mutex::new(store)),
            policy: Policy::default(),
            clock: Utc::now,
        }
    }

    /// Uses another clock for device times (tests).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> DateTime<Utc>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Store>, DeviceError> {
        self.store.lock().map_err(|_| DeviceError::Poisoned)
    }

    pub(crate) fn shared_store(&self) -> Arc<Mutex<Store>> {
        Arc::clone(&self.store)
    }

    /// Enrols with the relay: asks `/api/v1/me` who the token belongs to and
    /// keeps the answer. The Automerge actor is made once and kept.
    ///
    /// # Errors
    /// When the relay refuses the token or cannot be reached, or the store fails.
    #[cfg(not(target_family = "wasm"))]
    pub async fn enroll(&self, relay: &str, token: &str) -> Result<Identity, DeviceError> {
        let me = crate::relay::Client::new(relay, token)?.me().await?;
        self.enrolled(relay, token, me)
    }

    /// Keeps what the relay's `/api/v1/me` said about `token` as this
    /// device's identity (the field app fetches it itself).
    ///
    /// # Errors
    /// When the store fails.
    pub fn enrolled(
        &self,
        relay: &str,
        token: &str,
        me: crate::relay::Me,
    ) -> Result<Identity, DeviceError> {
        let identity = Identity {
            relay: relay.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            principal: Principal {
                user: me.user,
                role: me.role,
                department: me.department,
                device: me.device,
            },
            inbox: Some(me.inbox),
            relay_peer_id: me.relay_peer_id,
        };
        self.set_identity(&identity)?;
        Ok(identity)
    }

    /// Sets who the device acts for (what [`Device::enroll`] does after asking the relay).
    ///
    /// # Errors
    /// When the store fails.
    pub fn set_identity(&self, id: &Identity) -> Result<(), DeviceError> {
        let mut store = self.lock()?;
        store.write(|tx| {
            let p = &id.principal;
            let inbox = id.inbox.map(|u| u.to_string()).unwrap_or_default();
            let values = [
                id.relay.as_str(),
                id.token.as_str(),
                p.user.as_str(),
                p.role.as_str(),
                p.department.as_str(),
                p.device.as_str(),
                inbox.as_str(),
                id.relay_peer_id.as_deref().unwrap_or(""),
            ];
            for (k, v) in META_KEYS.iter().zip(values) {
                store::meta_put(tx, k, v)?;
            }
            if store::meta_get(tx, "actor")?.is_none() {
                store::meta_put(tx, "actor", &ActorId::random().to_hex_string())?;
            }
            if let Some(inbox) = id.inbox {
                store::doc_ensure(tx, inbox.id(), Listing::Listed)?;
            }
            Ok(())
        })?;
        Ok(())
    }

    /// Who the device acts for.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`] before enrolment; store failures.
    pub fn identity(&self) -> Result<Identity, DeviceError> {
        let store = self.lock()?;
        read_identity(store.conn())
    }

    /// The device's Automerge actor.
    ///
    /// # Errors
    /// [`DeviceError::NotEnrolled`] before enrolment.
    pub fn actor(&self) -> Result<ActorId, DeviceError> {
        let store = self.lock()?;
        read_actor(store.conn())
    }

    /// Finds a document by URL, bare id or serial number.
    ///
    /// # Errors
    /// [`DeviceError::UnknownTicket`] when the device holds no such document.
    pub fn resolve(&self, ticket: &str) -> Result<DocId, DeviceError> {
        let store = self.lock()?;
        let unknown = || DeviceError::UnknownTicket(ticket.chars().take(80).collect());
        let id = if let Ok(url) = ticket.parse::<DocUrl>() {
            url.id()
        } else if let Ok(id) = ticket.parse::<DocId>() {
            id
        } else {
            store::doc_by_serial(store.conn(), ticket)?.ok_or_else(unknown)?
        };
        store::doc(store.conn(), id)?.ok_or_else(unknown)?;
        Ok(id)
    }

    /// Loads a document from the store, with what could not be read.
    ///
    /// # Errors
    /// When the device is not enrolled or the store fails.
    pub fn load(&self, id: DocId) -> Result<(Automerge, LoadReport), DeviceError> {
        let store = self.lock()?;
        let actor = read_actor(store.conn())?;
        Ok(store::load_doc(store.conn(), id, &actor)?)
    }

    /// Every document the device holds, with its inbox label and status.
    ///
    /// # Errors
    /// When the store fails.
    pub fn inbox(&self) -> Result<Vec<DocRow>, DeviceError> {
        let store = self.lock()?;
        Ok(store::docs(store.conn())?)
    }

    /// The device's local actions the relay has not judged (or received) yet.
    ///
    /// # Errors
    /// When the store fails.
    pub fn pending(&self) -> Result<Vec<PendingRow>, DeviceError> {
        let store = self.lock()?;
        Ok(store::pending(store.conn())?)
    }

    /// Local changes the relay would not take.
    ///
    /// # Errors
    /// When the store fails.
    pub fn quarantine(&self) -> Result<Vec<QuarantineRow>, DeviceError> {
        let store = self.lock()?;
        Ok(store::quarantine(store.conn())?)
    }

    /// The ticket, official and pending separately.
    ///
    /// # Errors
    /// When the ticket is unknown or unreadable.
    pub fn show(&self, ticket: &str) -> Result<TicketView, DeviceError> {
        let id = self.resolve(ticket)?;
        let identity = self.identity()?;
        let (doc, load) = self.load(id)?;
        let t = schema::doc::read_ticket(&doc, None)
            .map_err(|source| DeviceError::NotATicket { doc: id, source })?;
        let official = Projection::official(&t, &self.policy);
        let (with_pending, pending) =
            Projection::with_pending(&t, &identity.principal, &self.policy);
        let row = store::doc(self.lock()?.conn(), id)?;
        Ok(TicketView {
            url: id.url(),
            serial: t.server.serial.map(|s| s.to_string()),
            official,
            with_pending,
            pending: pending.into_iter().map(PendingView::from).collect(),
            read_only: row.is_some_and(|r| r.read_only),
            ticket: t,
            load,
        })
    }

    /// Takes a lifecycle action on a ticket: checked first, then one change.
    ///
    /// Photos named in `data.photos` must be in the store ([`Device::add_photo`]);
    /// each is also added to the ticket's `attachments` in the same change.
    ///
    /// # Errors
    /// [`DeviceError::Refused`] with the rule and reason when the person may
    /// not take it (nothing is written); store and document failures.
    pub fn act(
        &self,
        ticket: &str,
        action: Action,
        data: EventData,
    ) -> Result<EventId, DeviceError> {
        let id = self.resolve(ticket)?;
        let identity = self.identity()?;
        let me = &identity.principal;
        let (mut doc, _) = self.load(id)?;
        let t = schema::doc::read_ticket(&doc, None)
            .map_err(|source| DeviceError::NotATicket { doc: id, source })?;
        self.refuse_if_read_only(id)?;
        let now = (self.clock)();
        let event = Event {
            id: EventId::random(),
            action: action.as_str().to_owned(),
            by: me.user.clone(),
            device: me.device.clone(),
            at: now,
            data,
        };
        let (seen, _) = Projection::with_pending(&t, me, &self.policy);
        self.policy.check(me, &seen, &event).map_err(|f| Refused {
            rule: f.rule.name().to_owned(),
            reason: f.reason,
        })?;
        let attachments =
            self.attachments_for(&event, &t.attachments, &format!("{action} photo"), now)?;
        let change = commit(&mut doc, now, |tx| {
            for a in &attachments {
                schema::doc::append_attachment(tx, a)?;
            }
            schema::doc::append_event(tx, &event)
        })?;
        self.keep(
            id,
            &doc,
            &change,
            event.id.as_str(),
            "event",
            action.as_str(),
            now,
            None,
        )?;
        Ok(event.id)
    }

    /// Adds a note to a ticket (allowed in every state, never on a read-only ticket).
    ///
    /// # Errors
    /// [`DeviceError::Refused`] on a read-only ticket; store and document failures.
    pub fn note(&self, ticket: &str, text: &str) -> Result<EventId, DeviceError> {
        let id = self.resolve(ticket)?;
        let me = self.identity()?.principal;
        let (mut doc, _) = self.load(id)?;
        schema::doc::read_ticket(&doc, None)
            .map_err(|source| DeviceError::NotATicket { doc: id, source })?;
        self.refuse_if_read_only(id)?;
        if text.trim().is_empty() || text.len() > 10_000 {
            return Err(Refused {
                rule: "invalid_data".into(),
                reason: "a note needs text, at most 10,000 bytes".into(),
            }
            .into());
        }
        let now = (self.clock)();
        let note = Note {
            id: EventId::random(),
            by: me.user.clone(),
            device: me.device.clone(),
            at: now,
            text: text.to_owned(),
        };
        let change = commit(&mut doc, now, |tx| schema::doc::append_note(tx, &note))?;
        self.keep(
            id,
            &doc,
            &change,
            note.id.as_str(),
            "note",
            "note",
            now,
            None,
        )?;
        Ok(note.id)
    }

    /// Records an on-site ticket: a new document whose first change holds the
    /// ticket and its creation event (`issue` for orders, `record` for matters).
    ///
    /// # Errors
    /// [`DeviceError::Refused`] when the person may not create it or data is
    /// missing; store and document failures.
    pub fn report(&self, r: &Report) -> Result<(DocUrl, EventId), DeviceError> {
        self.report_with_photos(r, &[])
    }

    /// [`Device::report`] with photos already in the store ([`Device::add_photo`]):
    /// they are named in the creation event and added to the ticket's
    /// attachments in the same change.
    ///
    /// # Errors
    /// As [`Device::report`]; [`DeviceError::UnknownPhoto`] for a photo not in the store.
    pub fn report_with_photos(
        &self,
        r: &Report,
        photos: &[String],
    ) -> Result<(DocUrl, EventId), DeviceError> {
        let me = self.identity()?.principal;
        let actor = self.actor()?;
        let now = (self.clock)();
        let action = creation_action(r.kind);
        let event = Event {
            id: EventId::random(),
            action: action.as_str().to_owned(),
            by: me.user.clone(),
            device: me.device.clone(),
            at: now,
            data: EventData {
                category: r.category.clone(),
                urgency: Some(r.urgency),
                photos: photos.to_vec(),
                ..EventData::default()
            },
        };
        self.policy
            .check(&me, &Projection::new(r.kind), &event)
            .map_err(|f| Refused {
                rule: f.rule.name().to_owned(),
                reason: f.reason,
            })?;
        let attachments = self.attachments_for(&event, &[], "report photo", now)?;
        let header = TicketHeader {
            kind: r.kind,
            household: r.household,
            location: r.location.clone(),
            title: r.title.clone(),
            description: r.description.clone(),
            reported: Reported {
                by: me.user.clone(),
                channel: Channel::OnSite,
                at: now,
            },
            caller: None,
        };
        let id = DocId::random();
        let mut doc = Automerge::new().with_actor(actor);
        let change = commit(&mut doc, now, |tx| {
            schema::doc::create_ticket(tx, &header)?;
            for a in &attachments {
                schema::doc::append_attachment(tx, a)?;
            }
            schema::doc::append_event(tx, &event)
        })?;
        self.keep(
            id,
            &doc,
            &change,
            event.id.as_str(),
            "event",
            action.as_str(),
            now,
            Some(r.title.as_str()),
        )?;
        Ok((id.url(), event.id))
    }

    fn refuse_if_read_only(&self, id: DocId) -> Result<(), DeviceError> {
        let store = self.lock()?;
        if store::doc(store.conn(), id)?.is_some_and(|r| r.read_only) {
            return Err(Refused {
                rule: "read_only".into(),
                reason: "this ticket is read-only for you (it was transferred away)".into(),
            }
            .into());
        }
        Ok(())
    }

    /// Commits one local change and its pending row in one transaction.
    #[allow(clippy::too_many_arguments, reason = "all of one pending row")]
    fn keep(
        &self,
        id: DocId,
        doc: &Automerge,
        change: &Change,
        event_id: &str,
        kind: &str,
        action: &str,
        at: DateTime<Utc>,
        new_ticket: Option<&str>,
    ) -> Result<(), DeviceError> {
        let mut store = self.lock()?;
        store.write(|tx| {
            match new_ticket {
                Some(title) => {
                    store::doc_ensure(tx, id, Listing::Local)?;
                    store::doc_describe(tx, id, "ticket", Some(title), None)?;
                }
                None => store::doc_ensure(tx, id, Listing::Listed)?,
            }
            store::chunk_append(tx, id, change.raw_bytes())?;
            store::pending_add(
                tx,
                event_id,
                id,
                kind,
                action,
                change,
                &schema::doc::rfc3339(at),
            )?;
            store::compact_if_needed(tx, id, doc)?;
            Ok(())
        })?;
        Ok(())
    }

    /// The device clock's time now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// The verdicts the store has seen for a ticket.
    ///
    /// # Errors
    /// When the store fails.
    pub fn verdict_count(&self, id: DocId) -> Result<u64, DeviceError> {
        Ok(store::verdict_count(self.lock()?.conn(), id)?)
    }

    /// The policy the device checks actions with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

/// Makes one change on `doc` with `f`, stamped with `at`.
fn commit(
    doc: &mut Automerge,
    at: DateTime<Utc>,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), DocError>,
) -> Result<Change, DeviceError> {
    let mut tx = doc.transaction();
    f(&mut tx)?;
    tx.commit_with(CommitOptions::default().with_time(at.timestamp_millis()));
    doc.get_last_local_change().ok_or_else(|| {
        DeviceError::Doc(DocError::Shape(ShapeError {
            path: String::new(),
            problem: "the action made no change".into(),
        }))
    })
}

fn read_actor(conn: &rusqlite::Connection) -> Result<ActorId, DeviceError> {
    let hex = store::meta_get(conn, "actor")?.ok_or(DeviceError::NotEnrolled)?;
    let bytes = hex::decode(&hex).map_err(|_| StoreError::Bad("actor".into()))?;
    Ok(ActorId::from(bytes))
}

fn read_identity(conn: &rusqlite::Connection) -> Result<Identity, DeviceError> {
    let get = |k: &str| -> Result<String, DeviceError> {
        store::meta_get(conn, k)?.ok_or(DeviceError::NotEnrolled)
    };
    let bad = |what: &str| StoreError::Bad(what.to_owned());
    let role: Role = get("role")?.parse().map_err(|_| bad("role"))?;
    let department: Department = get("department")?.parse().map_err(|_| bad("department"))?;
    let inbox = get("inbox")?;
    let peer = get("relay_peer_id")?;
    Ok(Identity {
        relay: get("relay")?,
        token: get("token")?,
        principal: Principal {
            user: UserId::new(get("user")?).map_err(|_| bad("user"))?,
            role,
            department,
            device: DeviceId::new(get("device")?).map_err(|_| bad("device"))?,
        },
        inbox: if inbox.is_empty() {
            None
        } else {
            Some(inbox.parse().map_err(|_| bad("inbox"))?)
        },
        relay_peer_id: if peer.is_empty() { None } else { Some(peer) },
    })
}

/// This device's peer id for the relay: stable per device.
pub(crate) fn peer_id(identity: &Identity, actor: &ActorId) -> Result<PeerId, DeviceError> {
    let hex = actor.to_hex_string();
    PeerId::new(format!(
        "{}-{}",
        identity.principal.device,
        hex.get(..8).unwrap_or(&hex)
    ))
    .map_err(|e| StoreError::Bad(format!("peer id: {e}")).into())
}

/// A verdict row for the store.
pub(crate) fn verdicts_of(t: &Ticket) -> impl Iterator<Item = (&EventId, &VerdictRecord)> {
    t.server.verdicts.iter()
}

#[cfg(test)]
mod convergence_tests;
#[cfg(test)]
mod tests;
