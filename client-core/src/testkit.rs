//! Test helpers: the relay's own core ([`relay_core`]) on a simulated network
//! with no sleeps, and a virtual clock.
//!
//! The relay here is the real one minus its IO: every document is a
//! [`relay_core::Document`], so admission, the hard rules, judging, the
//! verdicts the relay seals into the document, serial numbers and the
//! messages sent are the relay's own; a small in-memory store stands in for
//! SQLite (it seals each commit as the relay's store does), and inboxes follow
//! each ticket's audience by the rule the relay uses
//! (`schema::access::inbox_audience`).
//!
//! What the tests add on top, as scenario knobs: a test may share a document
//! with the device beyond the access rules ([`TestRelay::list`]: "read from
//! a shared view"), take it off the inbox or revoke it ([`TestRelay::delist`]),
//! and edit documents as the relay ([`TestRelay::edit`]).
//!
//! The relay serves one device (the scenario tests: `handle`, `push`,
//! `disconnect` speak for it) or a whole team ([`TestRelay::for_team`]).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, Duration, TimeZone, Utc};
use relay_core::document::{JudgeContext, PeerInfo};
use relay_core::{Commit, Document, Effect, Limits, Stored, messages};
use schema::inbox::{Access, DocKind, InboxEntry};
use schema::ticket::{Channel, Reported, TicketHeader, Urgency};
use schema::wire::{Message, PeerId};
use schema::{
    Action, DeviceId, DocId, Event, EventData, EventId, Kind, Policy, Principal, Role, Serial,
    Series, Ticket, UserId,
};

use crate::device::{Device, Identity, Session};
use crate::engine::Input;

pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap()
}

thread_local! {
    static TICKS: Cell<i64> = const { Cell::new(0) };
}

/// The virtual clock: each reading is one minute after the one before, from
/// [`t0`]. Per test thread (`Device::with_clock` takes a plain `fn`), so tests
/// running in parallel do not move each other's time.
pub(crate) fn virtual_now() -> DateTime<Utc> {
    let n = TICKS.with(|t| {
        let n = t.get();
        t.set(n + 1);
        n
    });
    t0() + Duration::minutes(n)
}

/// Sets the virtual clock back to [`t0`].
pub(crate) fn reset_virtual_clock() {
    TICKS.with(|t| t.set(0));
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

/// A user of the relay and their device's connection.
#[derive(Debug)]
struct Member {
    principal: Principal,
    conn: u64,
    inbox: DocId,
    /// Documents a test shared beyond the access rules.
    shared: BTreeSet<DocId>,
    /// Documents a test revoked whatever the rules say.
    revoked: BTreeSet<DocId>,
    /// The peer id the device announced, while connected.
    client: Option<PeerId>,
    /// `change-rejected` notices sent on this connection.
    ephemeral: u64,
    /// Messages on their way to the device, in order.
    outbox: VecDeque<Message>,
}

/// The in-test relay.
#[derive(Debug)]
pub(crate) struct TestRelay {
    pub(crate) peer: PeerId,
    actor: ActorId,
    docs: BTreeMap<DocId, Document>,
    members: BTreeMap<UserId, Member>,
    /// The member the single-device helpers speak for.
    default: UserId,
    /// Which device each actor is bound to (its first upload binds it).
    actors: HashMap<ActorId, (DeviceId, UserId)>,
    /// A team relay keeps every inbox listing each ticket's audience.
    follow_access: bool,
    clock: fn() -> DateTime<Utc>,
    serials: BTreeMap<Series, u32>,
    /// Changes received from devices, in total.
    pub(crate) changes_in: usize,
    /// Change-rejected notices sent.
    pub(crate) rejections: usize,
    /// Every verdict written, in order: document, event, seq.
    pub(crate) verdict_log: Vec<(DocId, EventId, u64)>,
    policy: Policy,
    limits: Limits,
    /// Documents members hold unchanged (confirmed by digest, not synced in
    /// this connection): a change to one is announced to them.
    watchers: BTreeMap<DocId, BTreeSet<UserId>>,
}

impl TestRelay {
    /// A relay for one device; its inbox lists what the test says.
    pub(crate) fn new(device: Principal) -> Self {
        Self::build(vec![device], false, t0)
    }

    /// A relay for a team: every member's inbox lists the tickets whose
    /// audience they are in (the relay's rule), updated after every verdict.
    /// A former assignee leaves the inbox but may still sync, so offline work
    /// is flushed (and judged) before the device purges it.
    pub(crate) fn for_team(people: &[Principal], clock: fn() -> DateTime<Utc>) -> Self {
        Self::build(people.to_vec(), true, clock)
    }

    fn build(people: Vec<Principal>, follow_access: bool, clock: fn() -> DateTime<Utc>) -> Self {
        let actor = ActorId::from(b"relay-actor-0001".to_vec());
        let default = people[0].user.clone();
        let mut relay = Self {
            peer: PeerId::new("relay").unwrap(),
            actor,
            docs: BTreeMap::new(),
            members: BTreeMap::new(),
            default,
            actors: HashMap::new(),
            follow_access,
            clock,
            serials: BTreeMap::new(),
            changes_in: 0,
            rejections: 0,
            verdict_log: Vec::new(),
            policy: Policy::default(),
            limits: Limits::default(),
            watchers: BTreeMap::new(),
        };
        for (conn, p) in (1..).zip(people) {
            let inbox = DocId::random();
            let user = p.user.clone();
            relay.relay_write(inbox, Some(DocKind::Inbox), |tx| {
                schema::doc::create_inbox(tx, &user)
            });
            relay.members.insert(
                p.user.clone(),
                Member {
                    principal: p,
                    conn,
                    inbox,
                    shared: BTreeSet::new(),
                    revoked: BTreeSet::new(),
                    client: None,
                    ephemeral: 0,
                    outbox: VecDeque::new(),
                },
            );
        }
        relay
    }

    /// The identity the single device gets from `/api/v1/me`.
    pub(crate) fn identity(&self) -> Identity {
        self.identity_of(&self.default)
    }

    /// The identity a member's device gets from `/api/v1/me`.
    pub(crate) fn identity_of(&self, user: &UserId) -> Identity {
        let m = &self.members[user];
        Identity {
            relay: "http://relay.test".into(),
            token: format!("token-{user}"),
            principal: m.principal.clone(),
            inbox: Some(m.inbox.url()),
            relay_peer_id: Some(self.peer.to_string()),
        }
    }

    /// A member's inbox document.
    pub(crate) fn inbox_of(&self, user: &UserId) -> DocId {
        self.members[user].inbox
    }

    /// The relay's copy of a document.
    pub(crate) fn doc(&self, id: DocId) -> &Automerge {
        self.docs[&id].doc()
    }

    /// Every document's heads, sorted.
    pub(crate) fn heads(&self) -> BTreeMap<DocId, Vec<ChangeHash>> {
        self.docs
            .iter()
            .map(|(id, d)| {
                let mut h = d.doc().get_heads();
                h.sort();
                (*id, h)
            })
            .collect()
    }

    /// The relay's copy of a document, if it has one.
    pub(crate) fn try_doc(&self, id: DocId) -> Option<&Automerge> {
        self.docs.get(&id).map(Document::doc)
    }

    /// A repair order issued by the front desk and assigned to `engineer`,
    /// both accepted (made through the relay's own judging, as the desk's
    /// dashboard makes them); listed in the device's inbox (for a team: in
    /// the inboxes of its audience).
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
            caller: None,
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
        let mut doc = Document::empty(id, &self.actor);
        let now = (self.clock)();
        let actor = ActorId::from(b"frontdesk-web-01".to_vec());
        let step = {
            let bindings = |_: &ActorId| Ok(None);
            let cx = JudgeContext {
                relay: &self.actor,
                policy: &self.policy,
                limits: &self.limits,
                bindings: &bindings,
                now,
            };
            doc.author(&desk, actor.clone(), None, &cx, |tx| {
                schema::doc::create_ticket(tx, &header)?;
                schema::doc::append_event(tx, &issue)?;
                schema::doc::append_event(tx, &assign)
            })
            .unwrap()
        };
        self.actors
            .insert(actor, (desk.device.clone(), desk.user.clone()));
        let mut step = step;
        assert!(step.rejection.is_none(), "{:?}", step.rejection);
        let commit = step.commit.take().unwrap();
        let stored = self.store(commit);
        doc.committed(&mut step, stored);
        self.docs.insert(id, doc);
        if self.follow_access {
            self.refresh_access(id);
        } else {
            self.list(id, Access::ReadWrite);
        }
        id
    }

    /// Shares a document with the device (beyond the access rules) and puts
    /// it on its inbox.
    pub(crate) fn list(&mut self, id: DocId, access: Access) {
        let user = self.default.clone();
        self.members.get_mut(&user).unwrap().shared.insert(id);
        self.list_for(&user, id, access);
    }

    fn list_for(&mut self, user: &UserId, id: DocId, access: Access) {
        let inbox = self.members[user].inbox;
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

    /// Takes a document off the device's inbox; `revoke` also refuses to sync it.
    pub(crate) fn delist(&mut self, id: DocId, revoke: bool) {
        let m = self.members.get_mut(&self.default).unwrap();
        if revoke {
            m.shared.remove(&id);
            m.revoked.insert(id);
        }
        let inbox = m.inbox;
        self.edit(inbox, |tx| schema::doc::inbox_remove(tx, id.url()));
    }

    /// An edit by the relay's own actor, stored and sent to every peer of
    /// the document that is connected.
    pub(crate) fn edit(
        &mut self,
        id: DocId,
        f: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), schema::doc::DocError>,
    ) {
        self.relay_write(id, None, f);
    }

    fn relay_write(
        &mut self,
        id: DocId,
        create: Option<DocKind>,
        f: impl FnOnce(
            &mut automerge::transaction::Transaction<'_>,
        ) -> Result<(), schema::doc::DocError>,
    ) {
        let now = (self.clock)();
        let mut doc = self
            .docs
            .remove(&id)
            .unwrap_or_else(|| Document::empty(id, &self.actor));
        let commit = doc.relay_write(&self.actor, now, create, f).unwrap();
        let stored = self.store(commit);
        doc.relay_committed(stored).unwrap();
        let effects = doc.fan_out(&self.peer, None);
        self.docs.insert(id, doc);
        self.deliver(effects);
        self.announce(id, None);
    }

    /// Tells the members who hold `id` unchanged that it changed (but not
    /// `author`, whose change it is): as the relay does.
    fn announce(&mut self, id: DocId, author: Option<&UserId>) {
        let Some(users) = self.watchers.remove(&id) else {
            return;
        };
        for user in users {
            if Some(&user) == author {
                continue;
            }
            let m = self.members.get_mut(&user).unwrap();
            let Some(client) = m.client.clone() else {
                continue;
            };
            m.outbox.push_back(Message::Ephemeral {
                sender_id: self.peer.clone(),
                target_id: client,
                count: 1,
                session_id: "relay".into(),
                document_id: id.into(),
                data: schema::wire::Stale { docs: vec![id] }.encode(),
            });
        }
    }

    /// Stores a commit as the relay's store does: a serial number if one is
    /// due, the seal written into the document.
    fn store(&mut self, mut commit: Commit) -> Stored {
        let serial = commit
            .serial_due
            .filter(|_| commit.seal.is_some())
            .map(|series| {
                let n = self.serials.entry(series).or_insert(0);
                *n += 1;
                Serial::new(series, 2026, *n).unwrap()
            });
        self.verdict_log.extend(
            commit
                .verdicts
                .iter()
                .map(|v| (v.doc, v.event.clone(), v.seq)),
        );
        let doc = commit
            .seal
            .take()
            .map(|s| s.seal(commit.doc, serial, 0).unwrap().doc);
        Stored {
            serial,
            snapshot_len: None,
            doc,
        }
    }

    /// The device's connection dropped: per-connection state goes.
    pub(crate) fn disconnect(&mut self) {
        let user = self.default.clone();
        self.disconnect_of(&user);
    }

    /// A member's connection dropped: its sync states and undelivered messages go.
    pub(crate) fn disconnect_of(&mut self, user: &UserId) {
        let m = self.members.get_mut(user).unwrap();
        m.client = None;
        m.outbox.clear();
        let conn = m.conn;
        let mut gone = Vec::new();
        for (id, doc) in &mut self.docs {
            if doc.leave(conn) {
                gone.push(*id);
            }
        }
        for id in gone {
            self.docs.remove(&id);
        }
        for w in self.watchers.values_mut() {
            w.remove(user);
        }
    }

    /// Handles a message from the device; returns the replies to it.
    pub(crate) fn handle(&mut self, msg: Message) -> Vec<Message> {
        let user = self.default.clone();
        self.receive(&user, msg);
        self.members
            .get_mut(&user)
            .unwrap()
            .outbox
            .drain(..)
            .collect()
    }

    /// Takes the next message on its way to a member's device.
    pub(crate) fn next_for(&mut self, user: &UserId) -> Option<Message> {
        self.members.get_mut(user).unwrap().outbox.pop_front()
    }

    /// Whether messages wait for a member's device.
    pub(crate) fn has_mail(&self, user: &UserId) -> bool {
        !self.members[user].outbox.is_empty()
    }

    /// Handles a message from a member's device (the connection is bound to
    /// the member, whatever the message claims); replies and pushes go to the
    /// members' outboxes.
    pub(crate) fn receive(&mut self, user: &UserId, msg: Message) {
        match msg {
            Message::Join { sender_id, .. } => {
                let m = self.members.get_mut(user).unwrap();
                m.client = Some(sender_id.clone());
                m.outbox.push_back(messages::peer(&self.peer, sender_id));
            }
            Message::Request {
                document_id, data, ..
            } => self.sync(user, DocId::from(&document_id), &data, true),
            Message::Sync {
                document_id, data, ..
            } => self.sync(user, DocId::from(&document_id), &data, false),
            Message::Ephemeral {
                document_id, data, ..
            } => self.digests(user, &document_id, &data),
            _ => {}
        }
    }

    /// A member's heads digests: answered, as the relay does, with the
    /// documents whose heads differ or that the relay does not have.
    fn digests(&mut self, user: &UserId, on: &schema::wire::DocumentId, data: &[u8]) {
        let limits = schema::wire::Limits::default();
        let Some(q) = schema::wire::HeadsDigests::decode(data, &limits) else {
            return;
        };
        let docs = q
            .docs
            .iter()
            .copied()
            .filter(|(id, digest)| {
                self.docs
                    .get(id)
                    .is_none_or(|d| schema::wire::heads_digest(&d.doc().get_heads()) != *digest)
            })
            .map(|(id, _)| id)
            .collect::<Vec<_>>();
        for (id, _) in &q.docs {
            if !docs.contains(id) {
                self.watchers.entry(*id).or_default().insert(user.clone());
            }
        }
        let m = self.members.get_mut(user).unwrap();
        let Some(client) = m.client.clone() else {
            return;
        };
        m.outbox.push_back(Message::Ephemeral {
            sender_id: self.peer.clone(),
            target_id: client,
            count: 1,
            session_id: "relay".into(),
            document_id: on.clone(),
            data: schema::wire::Stale { docs }.encode(),
        });
    }

    /// A member's sync message for a document, through the relay's core.
    fn sync(&mut self, user: &UserId, id: DocId, data: &[u8], fresh: bool) {
        let m = &self.members[user];
        let Some(client) = m.client.clone() else {
            return;
        };
        let info = PeerInfo {
            conn: m.conn,
            peer_id: client.clone(),
            principal: m.principal.clone(),
            session: None,
        };
        let admitted = !m.revoked.contains(&id)
            && match self.docs.get(&id) {
                None => Document::may_start(&info.principal, fresh),
                Some(d) => d.admits(&info, false) || m.shared.contains(&id),
            };
        if !admitted {
            self.members
                .get_mut(user)
                .unwrap()
                .outbox
                .push_back(messages::unavailable(&self.peer, &client, id));
            return;
        }
        if let Some(w) = self.watchers.get_mut(&id) {
            // Syncing it now: a peer of the document, told of changes by sync.
            w.remove(user);
        }
        let mut doc = self
            .docs
            .remove(&id)
            .unwrap_or_else(|| Document::empty(id, &self.actor));
        let msg = relay_core::document::decode_sync(data).expect("an honest device");
        let received = doc.receive(&info, msg, fresh).expect("an honest device");
        let mut rejection = None;
        let mut judged = false;
        if !received.chunks.is_empty() {
            let known = self.actors.clone();
            let bindings = move |a: &ActorId| Ok(known.get(a).cloned());
            let cx = JudgeContext {
                relay: &self.actor,
                policy: &self.policy,
                limits: &self.limits,
                bindings: &bindings,
                now: (self.clock)(),
            };
            let mut step = doc.judge(info.conn, &received.chunks, &cx);
            self.changes_in += step.received;
            for a in &step.bound {
                self.actors.insert(
                    a.clone(),
                    (info.principal.device.clone(), info.principal.user.clone()),
                );
            }
            if let Some(commit) = step.commit.take() {
                judged = !commit.verdicts.is_empty();
                let stored = self.store(commit);
                doc.committed(&mut step, stored);
                self.announce(id, Some(user));
            }
            rejection = step.rejection.take();
        }
        let r = doc.replies(&self.peer, info.conn, rejection);
        let (effects, gone) = (r.effects, r.gone);
        if !gone {
            self.docs.insert(id, doc);
        }
        self.deliver(effects);
        if judged && self.follow_access {
            self.refresh_access(id);
        }
    }

    /// Puts the core's messages in the members' outboxes.
    fn deliver(&mut self, effects: Vec<Effect>) {
        for e in effects {
            let (conn, msg) = match e {
                Effect::Send(conn, msg) => (conn, msg),
                Effect::Reject {
                    conn,
                    peer,
                    doc,
                    rejection,
                    changes,
                } => {
                    self.rejections += 1;
                    let Some(m) = self.members.values_mut().find(|m| m.conn == conn) else {
                        continue;
                    };
                    m.ephemeral += 1;
                    let msg = messages::change_rejected(
                        &self.peer,
                        &peer,
                        doc,
                        &rejection,
                        &changes,
                        m.ephemeral,
                    );
                    (conn, msg)
                }
            };
            if let Some(m) = self
                .members
                .values_mut()
                .find(|m| m.conn == conn && m.client.is_some())
            {
                m.outbox.push_back(msg);
            }
        }
    }

    /// Keeps every member's inbox listing this ticket exactly when they are
    /// in its audience (the relay's rule: `schema::access::inbox_audience`).
    fn refresh_access(&mut self, id: DocId) {
        let Some(schema::access::DocClass::Ticket(meta)) = self.docs[&id].class().cloned() else {
            return;
        };
        let (named, department) = schema::access::inbox_audience(&meta);
        let users: Vec<UserId> = self.members.keys().cloned().collect();
        for user in users {
            let m = &self.members[&user];
            let want = named.contains(&user)
                || department.is_some_and(|d| {
                    m.principal.role == Role::DepartmentStaff && m.principal.department == d
                });
            let inbox = m.inbox;
            let listed = schema::doc::read_inbox(self.doc(inbox))
                .unwrap()
                .docs
                .contains_key(&id.url());
            if want == listed {
                continue;
            }
            if want {
                self.list_for(&user, id, Access::ReadWrite);
            } else {
                self.edit(inbox, |tx| schema::doc::inbox_remove(tx, id.url()));
            }
        }
    }

    /// Pushes a document the relay changed to the connected device.
    pub(crate) fn push(&mut self, id: DocId) -> Vec<Message> {
        let user = self.default.clone();
        let effects = self
            .docs
            .get_mut(&id)
            .map(|d| d.fan_out(&self.peer, None))
            .unwrap_or_default();
        self.deliver(effects);
        self.members
            .get_mut(&user)
            .unwrap()
            .outbox
            .drain(..)
            .collect()
    }

    /// The relay's copy of a ticket.
    pub(crate) fn ticket(&self, id: DocId) -> Ticket {
        schema::doc::read_ticket(self.doc(id), None).unwrap()
    }

    /// Whether the relay's copy of a document holds this change.
    pub(crate) fn has_change(&self, id: DocId, hash: &ChangeHash) -> bool {
        self.doc(id).get_change_by_hash(hash).is_some()
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

/// A team member's device, enrolled with the test relay, on the given clock.
pub(crate) fn member_device(
    relay: &TestRelay,
    user: &UserId,
    clock: fn() -> DateTime<Utc>,
) -> Device {
    let d = Device::open_in_memory().unwrap().with_clock(clock);
    d.set_identity(&relay.identity_of(user)).unwrap();
    d
}
