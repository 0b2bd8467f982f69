//! Test helpers: a small in-test relay (a plain Automerge peer speaking the
//! automerge-repo messages, judging with `schema::Policy::judge` and writing
//! verdicts under its own actor) and a simulated network with no sleeps.

use std::collections::{BTreeMap, BTreeSet};

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, Automerge, ReadDoc};
use chrono::{DateTime, TimeZone, Utc};
use schema::inbox::{Access, DocKind, InboxEntry};
use schema::ticket::{Channel, Reported, TicketHeader, Urgency};
use schema::wire::{DocumentId, Message, PROTOCOL_V1, PeerId};
use schema::{
    Action, DeviceId, DocId, Event, EventData, EventId, Kind, Outcome, Policy, Principal,
    Projection, Role, UserId, VerdictRecord,
};

use crate::device::{Device, Identity, Session};
use crate::engine::Input;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

pub(crate) fn principal(user: &str, role: Role) -> Principal {
    Principal {
        user: UserId::new(user).unwrap(),
        role,
        department: role.default_department(),
        device: DeviceId::new(format!("dev-{user}")).unwrap(),
    }
}

pub(crate) fn event(by: &Principal, action: Action, data: EventData) -> Event {
    Event {
        id: EventId::random(),
        action: action.as_str().to_owned(),
        by: by.user.clone(),
        device: by.device.clone(),
        at: t0(),
        data,
    }
}

/// The in-test relay, connected to one device at a time.
#[derive(Debug)]
pub(crate) struct TestRelay {
    pub(crate) peer: PeerId,
    actor: ActorId,
    pub(crate) docs: BTreeMap<DocId, Automerge>,
    states: BTreeMap<DocId, sync::State>,
    read_only: BTreeSet<DocId>,
    /// Documents the user may sync (the inbox always).
    pub(crate) allowed: BTreeSet<DocId>,
    pub(crate) inbox: DocId,
    /// The connected device's principal (its actor binding).
    pub(crate) device: Principal,
    client: Option<PeerId>,
    /// Changes received from the device, in total.
    pub(crate) changes_in: usize,
    /// Change-rejected notices sent.
    pub(crate) rejections: usize,
    policy: Policy,
}

impl TestRelay {
    pub(crate) fn new(device: Principal) -> Self {
        let actor = ActorId::from(b"relay-actor-0001".to_vec());
        let inbox = DocId::random();
        let mut doc = Automerge::new().with_actor(actor.clone());
        doc.transact::<_, _, schema::doc::DocError>(|tx| {
            schema::doc::create_inbox(tx, &device.user)
        })
        .unwrap();
        let mut docs = BTreeMap::new();
        docs.insert(inbox, doc);
        Self {
            peer: PeerId::new("relay").unwrap(),
            actor,
            docs,
            states: BTreeMap::new(),
            read_only: BTreeSet::new(),
            allowed: BTreeSet::from([inbox]),
            inbox,
            device,
            client: None,
            changes_in: 0,
            rejections: 0,
            policy: Policy::default(),
        }
    }

    /// The identity a device gets from `/api/v1/me`.
    pub(crate) fn identity(&self) -> Identity {
        Identity {
            relay: "http://relay.test".into(),
            token: "token".into(),
            principal: self.device.clone(),
            inbox: Some(self.inbox.url()),
            relay_peer_id: Some(self.peer.to_string()),
        }
    }

    /// A repair order issued by the front desk and assigned to `engineer`,
    /// both accepted, listed in the inbox.
    pub(crate) fn assigned_order(&mut self, engineer: &str) -> DocId {
        let desk = principal("frontdesk", Role::FrontDesk);
        let id = DocId::random();
        let header = TicketHeader {
            kind: Kind::Repair,
            household: None,
            location: "3-2-501".into(),
            title: "kitchen tap leaks".into(),
            description: "drips all night".into(),
            reported: Reported {
                by: desk.user.clone(),
                channel: Channel::Phone,
                at: t0(),
            },
        };
        let issue = event(
            &desk,
            Action::Issue,
            EventData {
                category: Some("plumbing".into()),
                urgency: Some(Urgency::Normal),
                ..EventData::default()
            },
        );
        let assign = event(
            &desk,
            Action::Assign,
            EventData {
                assignee: Some(UserId::new(engineer).unwrap()),
                ..EventData::default()
            },
        );
        let mut doc = Automerge::new().with_actor(self.actor.clone());
        doc.transact::<_, _, schema::doc::DocError>(|tx| {
            schema::doc::create_ticket(tx, &header)?;
            schema::doc::append_event(tx, &issue)?;
            schema::doc::append_event(tx, &assign)?;
            for (seq, e) in [(1, &issue), (2, &assign)] {
                schema::doc::put_verdict(
                    tx,
                    &e.id,
                    &VerdictRecord {
                        seq,
                        outcome: Outcome::Accepted,
                        rule: "allowed".into(),
                        reason: "set up by the test".into(),
                        at: t0(),
                    },
                )?;
            }
            Ok(())
        })
        .unwrap();
        self.docs.insert(id, doc);
        self.list(id, Access::ReadWrite);
        id
    }

    /// Puts a document on the device's inbox.
    pub(crate) fn list(&mut self, id: DocId, access: Access) {
        self.allowed.insert(id);
        let inbox = self.inbox;
        self.edit(inbox, |tx| {
            schema::doc::inbox_put(
                tx,
                id.url(),
                &InboxEntry {
                    kind: DocKind::Ticket,
                    access,
                    label: "order".into(),
                },
            )
        });
    }

    /// Takes a document off the inbox; `revoke` also refuses to sync it.
    pub(crate) fn delist(&mut self, id: DocId, revoke: bool) {
        let inbox = self.inbox;
        self.edit(inbox, |tx| schema::doc::inbox_remove(tx, id.url()));
        if revoke {
            self.allowed.remove(&id);
        }
    }

    /// An edit by the relay's own actor.
    pub(crate) fn edit(
        &mut self,
        id: DocId,
        f: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), schema::doc::DocError>,
    ) {
        let doc = self.docs.get_mut(&id).unwrap();
        doc.transact::<_, _, schema::doc::DocError>(f).unwrap();
    }

    /// The connection dropped: per-connection state goes.
    pub(crate) fn disconnect(&mut self) {
        self.client = None;
        self.states.clear();
        self.read_only.clear();
    }

    pub(crate) fn handle(&mut self, msg: Message) -> Vec<Message> {
        match msg {
            Message::Join { sender_id, .. } => {
                self.client = Some(sender_id.clone());
                vec![Message::Peer {
                    sender_id: self.peer.clone(),
                    target_id: sender_id,
                    peer_metadata: None,
                    selected_protocol_version: PROTOCOL_V1.into(),
                }]
            }
            Message::Request {
                document_id, data, ..
            } => {
                let id = DocId::from(&document_id);
                self.read_only.remove(&id);
                self.states.insert(id, sync::State::new());
                self.sync(id, &data, true)
            }
            Message::Sync {
                document_id, data, ..
            } => {
                let id = DocId::from(&document_id);
                self.sync(id, &data, false)
            }
            _ => Vec::new(),
        }
    }

    fn target(&self) -> PeerId {
        self.client.clone().unwrap()
    }

    fn sync(&mut self, id: DocId, data: &[u8], request: bool) -> Vec<Message> {
        if !self.docs.contains_key(&id) && !request && !self.allowed.contains(&id) {
            // An on-site ticket the device made: the relay takes it.
            self.docs
                .insert(id, Automerge::new().with_actor(self.actor.clone()));
            self.allowed.insert(id);
        }
        if !self.allowed.contains(&id) || !self.docs.contains_key(&id) {
            return vec![Message::DocUnavailable {
                sender_id: self.peer.clone(),
                target_id: self.target(),
                document_id: DocumentId::from(id),
            }];
        }
        if self.read_only.contains(&id) {
            return Vec::new();
        }
        let msg = sync::Message::decode(data).unwrap();
        let doc = self.docs.get(&id).unwrap();
        let before = doc.get_heads();
        let mut fork = doc.fork();
        let state = self.states.entry(id).or_default();
        fork.receive_sync_message(state, msg).unwrap();
        let new: Vec<_> = fork
            .get_changes(&before)
            .into_iter()
            .filter(|c| c.actor_id() != &self.actor)
            .collect();
        self.changes_in += new.len();
        if !new.is_empty() && schema::doc::doc_type(&fork).as_deref() == Some("ticket") {
            let old_server = schema::doc::read_ticket(doc, None).map(|t| t.server).ok();
            let new_server = schema::doc::read_ticket(&fork, None).map(|t| t.server).ok();
            if old_server.is_some() && old_server != new_server {
                return self.reject(id, &new, "touches_server", "only the relay writes server");
            }
        }
        fork.set_actor(self.actor.clone());
        self.judge(&mut fork);
        self.docs.insert(id, fork);
        self.reply(id)
    }

    fn reject(
        &mut self,
        id: DocId,
        changes: &[automerge::Change],
        rule: &str,
        reason: &str,
    ) -> Vec<Message> {
        self.read_only.insert(id);
        self.rejections += 1;
        #[derive(serde::Serialize)]
        struct Notice<'a> {
            #[serde(rename = "type")]
            kind: &'a str,
            rule: &'a str,
            reason: &'a str,
            changes: Vec<String>,
        }
        let mut data = Vec::new();
        ciborium::into_writer(
            &Notice {
                kind: "change-rejected",
                rule,
                reason,
                changes: changes.iter().map(|c| c.hash().to_string()).collect(),
            },
            &mut data,
        )
        .unwrap();
        vec![Message::Ephemeral {
            sender_id: self.peer.clone(),
            target_id: self.target(),
            count: 1,
            session_id: "relay-session".into(),
            document_id: DocumentId::from(id),
            data,
        }]
    }

    fn judge(&self, doc: &mut Automerge) {
        let Ok(t) = schema::doc::read_ticket(doc, None) else {
            return;
        };
        let mut verdicts = Vec::new();
        let mut now = Projection::official(&t, &self.policy);
        for (seq, e) in (t.next_seq()..).zip(t.pending()) {
            let seen = Projection::seen_before(&t, &self.device, &e.id, &self.policy);
            let v = self.policy.judge(&self.device, &seen, &now, e);
            let record = VerdictRecord {
                seq,
                outcome: v.outcome,
                rule: v.rule.name().into(),
                reason: v.reason,
                at: t0(),
            };
            now.fold_one(e, &record, &self.policy);
            verdicts.push((e.id.clone(), record));
        }
        if verdicts.is_empty() {
            return;
        }
        doc.transact::<_, _, schema::doc::DocError>(|tx| {
            for (id, v) in &verdicts {
                schema::doc::put_verdict(tx, id, v)?;
            }
            Ok(())
        })
        .unwrap();
    }

    fn reply(&mut self, id: DocId) -> Vec<Message> {
        let doc = self.docs.get(&id).unwrap();
        let state = self.states.entry(id).or_default();
        match doc.generate_sync_message(state) {
            Some(m) => vec![Message::Sync {
                sender_id: self.peer.clone(),
                target_id: self.target(),
                document_id: DocumentId::from(id),
                data: m.encode(),
            }],
            None => Vec::new(),
        }
    }

    /// Pushes a document the relay changed to the connected device.
    pub(crate) fn push(&mut self, id: DocId) -> Vec<Message> {
        if self.client.is_none() {
            return Vec::new();
        }
        self.reply(id)
    }

    /// The relay's copy of a ticket.
    pub(crate) fn ticket(&self, id: DocId) -> schema::Ticket {
        schema::doc::read_ticket(&self.docs[&id], None).unwrap()
    }

    /// Whether the relay's copy of a document holds this change.
    pub(crate) fn has_change(&self, id: DocId, hash: &automerge::ChangeHash) -> bool {
        self.docs[&id].get_change_by_hash(hash).is_some()
    }
}

/// Delivers messages both ways until nobody has anything to send.
pub(crate) fn pump(session: &mut Session, relay: &mut TestRelay, mut to_relay: Vec<Message>) {
    for _ in 0..10_000 {
        if to_relay.is_empty() {
            return;
        }
        let mut to_device = Vec::new();
        for m in to_relay.drain(..) {
            to_device.extend(relay.handle(m));
        }
        for m in to_device {
            to_relay.extend(session.handle(Input::Received(m)).unwrap());
        }
    }
    panic!("the simulated network did not go quiet");
}

/// One whole connection: connect, exchange until quiet, disconnect.
pub(crate) fn sync(device: &Device, relay: &mut TestRelay) -> crate::SyncSummary {
    let mut session = Session::new(device).unwrap();
    let hello = session.handle(Input::Connected).unwrap();
    pump(&mut session, relay, hello);
    assert!(
        session.is_idle(),
        "not idle after the exchange: {:?}",
        session.engine()
    );
    session.handle(Input::Disconnected).unwrap();
    relay.disconnect();
    session.summary()
}

/// A device enrolled with the test relay.
pub(crate) fn device_for(relay: &TestRelay) -> Device {
    let d = Device::open_in_memory().unwrap().with_clock(t0);
    d.set_identity(&relay.identity()).unwrap();
    d
}
