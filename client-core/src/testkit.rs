//! Test helpers: a small in-test relay (a plain Automerge peer speaking the
//! automerge-repo messages, judging with `schema::Policy::judge` and writing
//! verdicts under its own actor), a simulated network with no sleeps, and a
//! virtual clock.
//!
//! The relay serves one device (the scenario tests: `handle`, `push`,
//! `disconnect` speak for it) or a whole team ([`TestRelay::for_team`]): each
//! member has its own inbox and, while connected, its own sync state per
//! document; every new event is judged against what its author saw (the
//! ticket at the heads of the change that added it) and the official state;
//! whatever the relay's copy gains is pushed to every other connected peer of
//! that document; and, for a team, inboxes follow each ticket's audience as the
//! real relay's do.

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::sync::{self, SyncDoc};
use automerge::{ActorId, Automerge, ChangeHash, ReadDoc};
use chrono::{DateTime, Duration, TimeZone, Utc};
use schema::inbox::{Access, DocKind, InboxEntry};
use schema::ticket::{Channel, Reported, TicketHeader, Urgency};
use schema::wire::{DocumentId, Message, PROTOCOL_V1, PeerId};
use schema::{
    Action, DeviceId, DocId, Event, EventData, EventId, Kind, Outcome, Policy, Principal,
    Projection, Role, Ticket, UserId, VerdictRecord,
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

/// One connection of a member's device.
#[derive(Debug)]
struct Conn {
    client: PeerId,
    states: BTreeMap<DocId, sync::State>,
    read_only: BTreeSet<DocId>,
}

/// A user of the relay and their device's connection.
#[derive(Debug)]
struct Member {
    principal: Principal,
    inbox: DocId,
    /// Documents the user may sync (the inbox always).
    allowed: BTreeSet<DocId>,
    conn: Option<Conn>,
    /// Messages on their way to the device, in order.
    outbox: VecDeque<Message>,
}

/// The in-test relay.
#[derive(Debug)]
pub(crate) struct TestRelay {
    pub(crate) peer: PeerId,
    actor: ActorId,
    pub(crate) docs: BTreeMap<DocId, Automerge>,
    members: BTreeMap<UserId, Member>,
    /// The member the single-device helpers speak for.
    default: UserId,
    /// Which member each device actor is bound to (its first upload binds it).
    actors: BTreeMap<ActorId, UserId>,
    /// A team relay keeps every inbox listing each ticket's audience.
    follow_access: bool,
    clock: fn() -> DateTime<Utc>,
    /// Changes received from devices, in total.
    pub(crate) changes_in: usize,
    /// Change-rejected notices sent.
    pub(crate) rejections: usize,
    /// Every verdict written, in order: document, event, seq.
    pub(crate) verdict_log: Vec<(DocId, EventId, u64)>,
    policy: Policy,
}

impl TestRelay {
    /// A relay for one device; its inbox lists what the test says.
    pub(crate) fn new(device: Principal) -> Self {
        Self::build(vec![device], false, t0)
    }

    /// A relay for a team: every member's inbox lists the tickets they may
    /// work on (front desk and supervisors: all; engineering supervisors: all
    /// orders; engineers: those they are assigned or created), updated after
    /// every verdict. A former assignee leaves the inbox but may still sync,
    /// so offline work is flushed (and judged) before the device purges it.
    pub(crate) fn for_team(people: &[Principal], clock: fn() -> DateTime<Utc>) -> Self {
        Self::build(people.to_vec(), true, clock)
    }

    fn build(people: Vec<Principal>, follow_access: bool, clock: fn() -> DateTime<Utc>) -> Self {
        let actor = ActorId::from(b"relay-actor-0001".to_vec());
        let mut docs = BTreeMap::new();
        let mut members = BTreeMap::new();
        let default = people[0].user.clone();
        for p in people {
            let inbox = DocId::random();
            let mut doc = Automerge::new().with_actor(actor.clone());
            doc.transact::<_, _, schema::doc::DocError>(|tx| {
                schema::doc::create_inbox(tx, &p.user)
            })
            .unwrap();
            docs.insert(inbox, doc);
            members.insert(
                p.user.clone(),
                Member {
                    principal: p,
                    inbox,
                    allowed: BTreeSet::from([inbox]),
                    conn: None,
                    outbox: VecDeque::new(),
                },
            );
        }
        Self {
            peer: PeerId::new("relay").unwrap(),
            actor,
            docs,
            members,
            default,
            actors: BTreeMap::new(),
            follow_access,
            clock,
            changes_in: 0,
            rejections: 0,
            verdict_log: Vec::new(),
            policy: Policy::default(),
        }
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

    /// A repair order issued by the front desk and assigned to `engineer`,
    /// both accepted; listed in the device's inbox (for a team: in the
    /// inboxes of its audience).
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
        let at = (self.clock)();
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
                        at,
                    },
                )?;
            }
            Ok(())
        })
        .unwrap();
        self.docs.insert(id, doc);
        self.verdict_log.push((id, issue.id, 1));
        self.verdict_log.push((id, assign.id, 2));
        if self.follow_access {
            self.refresh_access(id);
        } else {
            self.list(id, Access::ReadWrite);
        }
        id
    }

    /// Puts a document on the device's inbox.
    pub(crate) fn list(&mut self, id: DocId, access: Access) {
        let user = self.default.clone();
        self.list_for(&user, id, access);
    }

    fn list_for(&mut self, user: &UserId, id: DocId, access: Access) {
        let m = self.members.get_mut(user).unwrap();
        m.allowed.insert(id);
        let inbox = m.inbox;
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
            m.allowed.remove(&id);
        }
        let inbox = m.inbox;
        self.edit(inbox, |tx| schema::doc::inbox_remove(tx, id.url()));
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

    /// The device's connection dropped: per-connection state goes.
    pub(crate) fn disconnect(&mut self) {
        let user = self.default.clone();
        self.disconnect_of(&user);
    }

    /// A member's connection dropped: its sync states and undelivered messages go.
    pub(crate) fn disconnect_of(&mut self, user: &UserId) {
        let m = self.members.get_mut(user).unwrap();
        m.conn = None;
        m.outbox.clear();
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
                m.conn = Some(Conn {
                    client: sender_id.clone(),
                    states: BTreeMap::new(),
                    read_only: BTreeSet::new(),
                });
                m.outbox.push_back(Message::Peer {
                    sender_id: self.peer.clone(),
                    target_id: sender_id,
                    peer_metadata: None,
                    selected_protocol_version: PROTOCOL_V1.into(),
                });
            }
            Message::Request {
                document_id, data, ..
            } => {
                let id = DocId::from(&document_id);
                if let Some(c) = self.members.get_mut(user).unwrap().conn.as_mut() {
                    c.read_only.remove(&id);
                    c.states.insert(id, sync::State::new());
                }
                self.sync(user, id, &data, true);
            }
            Message::Sync {
                document_id, data, ..
            } => {
                let id = DocId::from(&document_id);
                self.sync(user, id, &data, false);
            }
            _ => {}
        }
    }

    fn sync(&mut self, user: &UserId, id: DocId, data: &[u8], request: bool) {
        let member = self.members.get_mut(user).unwrap();
        let Some(conn) = member.conn.as_mut() else {
            return;
        };
        if !self.docs.contains_key(&id) && !request && !member.allowed.contains(&id) {
            // An on-site ticket the device made: the relay takes it.
            self.docs
                .insert(id, Automerge::new().with_actor(self.actor.clone()));
            member.allowed.insert(id);
        }
        if !member.allowed.contains(&id) || !self.docs.contains_key(&id) {
            member.outbox.push_back(Message::DocUnavailable {
                sender_id: self.peer.clone(),
                target_id: conn.client.clone(),
                document_id: DocumentId::from(id),
            });
            return;
        }
        if conn.read_only.contains(&id) {
            return;
        }
        let msg = sync::Message::decode(data).unwrap();
        let doc = &self.docs[&id];
        let before = doc.get_heads();
        let mut fork = doc.fork();
        let state = conn.states.entry(id).or_default();
        fork.receive_sync_message(state, msg).unwrap();
        let new: Vec<_> = fork
            .get_changes(&before)
            .into_iter()
            .filter(|c| c.actor_id() != &self.actor)
            .collect();
        self.changes_in += new.len();
        for c in &new {
            self.actors
                .entry(c.actor_id().clone())
                .or_insert_with(|| user.clone());
        }
        if !new.is_empty() && schema::doc::doc_type(&fork).as_deref() == Some("ticket") {
            let old_server = schema::doc::read_ticket(doc, None).map(|t| t.server).ok();
            let new_server = schema::doc::read_ticket(&fork, None).map(|t| t.server).ok();
            if old_server.is_some() && old_server != new_server {
                self.reject(
                    user,
                    id,
                    &new,
                    "touches_server",
                    "only the relay writes server",
                );
                return;
            }
        }
        fork.set_actor(self.actor.clone());
        let judged = self.judge(id, &mut fork, &before, user);
        let changed = fork.get_heads() != before;
        self.docs.insert(id, fork);
        self.reply(user, id);
        if changed {
            self.push_others(user, id);
        }
        if judged && self.follow_access {
            self.refresh_access(id);
        }
    }

    fn reject(
        &mut self,
        user: &UserId,
        id: DocId,
        changes: &[automerge::Change],
        rule: &str,
        reason: &str,
    ) {
        self.rejections += 1;
        let m = self.members.get_mut(user).unwrap();
        let Some(conn) = m.conn.as_mut() else { return };
        conn.read_only.insert(id);
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
        m.outbox.push_back(Message::Ephemeral {
            sender_id: self.peer.clone(),
            target_id: conn.client.clone(),
            count: 1,
            session_id: "relay-session".into(),
            document_id: DocumentId::from(id),
            data,
        });
    }

    /// Judges every event the new changes (those after `before`) add, change
    /// by change in causal order: against what the author saw (the ticket at
    /// the change's heads, with the author's own unjudged events) and the
    /// official state; writes the verdicts with the next seqs. Whether it wrote any.
    fn judge(
        &mut self,
        id: DocId,
        doc: &mut Automerge,
        before: &[ChangeHash],
        sender: &UserId,
    ) -> bool {
        let Ok(latest) = schema::doc::read_ticket(doc, None) else {
            return false;
        };
        let old: BTreeSet<EventId> = schema::doc::read_ticket(doc, Some(before))
            .map(|t| t.events.into_iter().map(|e| e.id).collect())
            .unwrap_or_default();
        let mut judged: BTreeSet<EventId> = BTreeSet::new();
        let mut now = Projection::official(&latest, &self.policy);
        let mut seq = latest.next_seq();
        let mut verdicts = Vec::new();
        for change in doc.get_changes(before) {
            if change.actor_id() == &self.actor {
                continue;
            }
            let author = self.actors.get(change.actor_id()).unwrap_or(sender).clone();
            let author = self.members[&author].principal.clone();
            let Ok(at) = schema::doc::read_ticket(doc, Some(&[change.hash()])) else {
                continue;
            };
            for e in &at.events {
                if old.contains(&e.id)
                    || judged.contains(&e.id)
                    || latest.server.verdicts.contains_key(&e.id)
                {
                    continue;
                }
                let seen = Projection::seen_before(&at, &author, &e.id, &self.policy);
                let v = self.policy.judge(&author, &seen, &now, e);
                let record = VerdictRecord {
                    seq,
                    outcome: v.outcome,
                    rule: v.rule.name().into(),
                    reason: v.reason,
                    at: (self.clock)(),
                };
                seq += 1;
                now.fold_one(e, &record, &self.policy);
                judged.insert(e.id.clone());
                verdicts.push((e.id.clone(), record));
            }
        }
        if verdicts.is_empty() {
            return false;
        }
        doc.transact::<_, _, schema::doc::DocError>(|tx| {
            for (e, v) in &verdicts {
                schema::doc::put_verdict(tx, e, v)?;
            }
            Ok(())
        })
        .unwrap();
        self.verdict_log
            .extend(verdicts.into_iter().map(|(e, v)| (id, e, v.seq)));
        true
    }

    /// Keeps every member's inbox listing this ticket exactly when its audience includes them.
    fn refresh_access(&mut self, id: DocId) {
        let Ok(t) = schema::doc::read_ticket(&self.docs[&id], None) else {
            return;
        };
        let p = Projection::official(&t, &self.policy);
        let users: Vec<UserId> = self.members.keys().cloned().collect();
        for user in users {
            let m = &self.members[&user];
            let want = in_audience(&m.principal, &t, &p);
            let inbox = m.inbox;
            let listed = schema::doc::read_inbox(&self.docs[&inbox])
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
            self.push_to(&user, inbox);
        }
    }

    /// A sync message for a member's device, if it has anything to learn.
    fn reply(&mut self, user: &UserId, id: DocId) {
        let m = self.members.get_mut(user).unwrap();
        let Some(conn) = m.conn.as_mut() else { return };
        let doc = &self.docs[&id];
        let state = conn.states.entry(id).or_default();
        if let Some(msg) = doc.generate_sync_message(state) {
            m.outbox.push_back(Message::Sync {
                sender_id: self.peer.clone(),
                target_id: conn.client.clone(),
                document_id: DocumentId::from(id),
                data: msg.encode(),
            });
        }
    }

    /// Pushes a document to a member's device if it syncs it on this connection.
    fn push_to(&mut self, user: &UserId, id: DocId) {
        let syncing = self.members[user]
            .conn
            .as_ref()
            .is_some_and(|c| c.states.contains_key(&id) && !c.read_only.contains(&id));
        if syncing {
            self.reply(user, id);
        }
    }

    fn push_others(&mut self, sender: &UserId, id: DocId) {
        let others: Vec<UserId> = self
            .members
            .keys()
            .filter(|u| *u != sender)
            .cloned()
            .collect();
        for user in others {
            self.push_to(&user, id);
        }
    }

    /// Pushes a document the relay changed to the connected device.
    pub(crate) fn push(&mut self, id: DocId) -> Vec<Message> {
        let user = self.default.clone();
        self.reply(&user, id);
        self.members
            .get_mut(&user)
            .unwrap()
            .outbox
            .drain(..)
            .collect()
    }

    /// The relay's copy of a ticket.
    pub(crate) fn ticket(&self, id: DocId) -> Ticket {
        schema::doc::read_ticket(&self.docs[&id], None).unwrap()
    }

    /// Whether the relay's copy of a document holds this change.
    pub(crate) fn has_change(&self, id: DocId, hash: &ChangeHash) -> bool {
        self.docs[&id].get_change_by_hash(hash).is_some()
    }
}

/// Whether a member's inbox lists a ticket (a team relay).
fn in_audience(p: &Principal, t: &Ticket, official: &Projection) -> bool {
    match p.role {
        Role::FrontDesk | Role::Supervisor | Role::Manager => true,
        Role::EngineeringSupervisor | Role::Dispatcher => t.header.kind.is_order(),
        _ => official.assignee.as_ref() == Some(&p.user) || t.header.reported.by == p.user,
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
