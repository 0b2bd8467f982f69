//! Convergence on the simulated network: three to six devices of different
//! people (engineers, the engineering supervisor, the front desk, the
//! customer-service supervisor) work on a few orders in a random schedule,
//! each trying what its role might try and syncing with the in-test relay at
//! random moments: sometimes only part of an exchange, sometimes dropping the
//! connection mid-way and resuming later, sometimes acting while connected.
//! Time is a virtual clock; nothing sleeps. Once everyone has synced until
//! nothing moves, every replica holds the relay's document and shows its
//! official projection, nothing anyone recorded is lost, verdicts are numbered
//! 1..n, and no event is judged twice.
//!
//! `PROPTEST_CASES` sets the number of cases (64 by default).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::{ChangeHash, ReadDoc};
use proptest::prelude::*;
use schema::ticket::{ContactResult, Material, Satisfaction, Urgency};
use schema::wire::Message;
use schema::{Action, DocId, EventData, EventId, Fen, Kind, Projection, Role, Status, UserId};

use super::{Device, DeviceError, Report, Session};
use crate::actions::{self, Completion};
use crate::engine::Input;
use crate::testkit::{TestRelay, member_device, principal, reset_virtual_clock, virtual_now};

/// Who may be on the team; a team of `n` is the first `n`.
const PEOPLE: [(&str, Role); 6] = [
    ("eng1", Role::Engineer),
    ("engsup", Role::EngineeringSupervisor),
    ("frontdesk", Role::FrontDesk),
    ("eng2", Role::Engineer),
    ("csup", Role::Supervisor),
    ("eng3", Role::Engineer),
];

/// At most this many tickets reported from devices per case (keeps cases quick).
const MAX_REPORTS: usize = 2;

/// One step of the schedule. Indices are taken modulo what exists when the step runs.
#[derive(Clone, Debug)]
enum Step {
    /// Device `who` tries an action its role might take on one of its tickets.
    Act {
        who: usize,
        ticket: usize,
        pick: u8,
        extra: u8,
    },
    /// Device `who` exchanges messages with the relay (connecting first if
    /// needed): at most `budget` deliveries, or until quiet with `None`; the
    /// bits of `order` choose the direction when both ways have mail. Then it
    /// drops the connection (undelivered messages are lost) or stays connected.
    Sync {
        who: usize,
        budget: Option<u8>,
        order: u32,
        drop: bool,
    },
}

/// Team size, the engineer each initial order is assigned to, and the schedule.
#[derive(Clone, Debug)]
struct Scenario {
    team: usize,
    orders: Vec<usize>,
    steps: Vec<Step>,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..6usize, 0..8usize, any::<u8>(), any::<u8>()).prop_map(
            |(who, ticket, pick, extra)| Step::Act { who, ticket, pick, extra }
        ),
        2 => (
            0..6usize,
            proptest::option::weighted(0.6, 1..16u8),
            any::<u32>(),
            any::<bool>()
        )
            .prop_map(|(who, budget, order, drop)| Step::Sync { who, budget, order, drop }),
    ]
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        3..=6usize,
        prop::collection::vec(0..3usize, 1..=3),
        prop::collection::vec(step(), 1..80),
    )
        .prop_map(|(team, orders, steps)| Scenario {
            team,
            orders,
            steps,
        })
}

/// A device's open connection: its session and the messages on their way to the relay.
#[derive(Debug)]
struct Link {
    session: Session,
    up: VecDeque<Message>,
}

#[derive(Debug)]
struct Phone {
    user: UserId,
    role: Role,
    device: Device,
    link: Option<Link>,
}

/// Something a device recorded: an event or a note, and the change carrying it.
#[derive(Debug)]
struct Made {
    who: usize,
    doc: DocId,
    id: EventId,
    change: ChangeHash,
    note: bool,
}

/// What a device tries.
enum Try {
    Act(Action, Box<EventData>),
    Note(String),
    Report,
}

#[derive(Debug)]
struct World {
    relay: TestRelay,
    phones: Vec<Phone>,
    /// Every ticket, in the order it appeared.
    tickets: Vec<DocId>,
    engineers: Vec<UserId>,
    made: Vec<Made>,
    reports: usize,
}

impl World {
    fn new(s: &Scenario) -> Self {
        reset_virtual_clock();
        let people: Vec<_> = PEOPLE[..s.team]
            .iter()
            .map(|(u, r)| principal(u, *r))
            .collect();
        let engineers: Vec<UserId> = people
            .iter()
            .filter(|p| p.role == Role::Engineer)
            .map(|p| p.user.clone())
            .collect();
        let mut relay = TestRelay::for_team(&people, virtual_now);
        let tickets = s
            .orders
            .iter()
            .map(|i| relay.assigned_order(engineers[i % engineers.len()].as_str()))
            .collect();
        let phones = people
            .iter()
            .map(|p| Phone {
                user: p.user.clone(),
                role: p.role,
                device: member_device(&relay, &p.user, virtual_now),
                link: None,
            })
            .collect();
        Self {
            relay,
            phones,
            tickets,
            engineers,
            made: Vec::new(),
            reports: 0,
        }
    }

    fn run(&mut self, step: &Step) {
        let n = self.phones.len();
        match *step {
            Step::Act {
                who,
                ticket,
                pick,
                extra,
            } => self.act(who % n, ticket, pick, extra),
            Step::Sync {
                who,
                budget,
                order,
                drop,
            } => {
                self.exchange(who % n, budget.map(usize::from), order);
                if drop {
                    self.hang_up(who % n);
                }
            }
        }
    }

    /// The tickets a device holds, in the order they appeared.
    fn held(&self, who: usize) -> Vec<DocId> {
        let rows = self.phones[who].device.inbox().unwrap();
        self.tickets
            .iter()
            .copied()
            .filter(|id| rows.iter().any(|r| r.id == *id))
            .collect()
    }

    fn act(&mut self, who: usize, ticket: usize, pick: u8, extra: u8) {
        let held = self.held(who);
        let doc = held.get(ticket % held.len().max(1)).copied();
        let attempt = self.choose(who, doc, pick, extra);
        let device = &self.phones[who].device;
        let done = match (attempt, doc) {
            (Try::Report, _) => {
                if self.reports >= MAX_REPORTS {
                    return;
                }
                let report = Report {
                    kind: Kind::Repair,
                    household: None,
                    location: format!("block {}", extra % 4),
                    title: "found on a round".into(),
                    description: String::new(),
                    category: Some("electrical".into()),
                    urgency: Urgency::Normal,
                };
                device.report(&report).map(|(url, id)| {
                    self.reports += 1;
                    self.tickets.push(url.id());
                    (url.id(), id, false)
                })
            }
            (Try::Note(text), Some(doc)) => device
                .note(&doc.to_string(), &text)
                .map(|id| (doc, id, true)),
            (Try::Act(action, data), Some(doc)) => device
                .act(&doc.to_string(), action, *data)
                .map(|id| (doc, id, false)),
            (_, None) => return,
        };
        let (doc, id, note) = match done {
            Ok(made) => made,
            // The device refused it, or has the ticket listed but not fetched
            // yet: nothing was written; the person moves on.
            Err(DeviceError::Refused(_) | DeviceError::NotATicket { .. }) => return,
            Err(e) => panic!("{} could not act: {e}", self.phones[who].user),
        };
        let pending = device.pending().unwrap();
        let row = pending
            .iter()
            .find(|r| r.event_id == id.as_str())
            .expect("a new action has a pending row");
        let change: ChangeHash = row.change_hash.parse().unwrap();
        self.made.push(Made {
            who,
            doc,
            id,
            change,
            note,
        });
        // Acting while connected: the open session sends the change at once.
        let phone = &mut self.phones[who];
        if let Some(link) = phone.link.as_mut() {
            let (d, _) = phone.device.load(doc).unwrap();
            let c = d.get_change_by_hash(&change).unwrap().clone();
            link.up.extend(link.session.local_change(doc, c).unwrap());
        }
    }

    /// What a person in this role might try next: with `pick` of 128 or more,
    /// the step the ticket (as the device shows it) calls for, if the role has
    /// one; otherwise anything from the role's repertoire, allowed or not.
    fn choose(&self, who: usize, doc: Option<DocId>, pick: u8, extra: u8) -> Try {
        let phone = &self.phones[who];
        let view = doc.and_then(|d| phone.device.show(&d.to_string()).ok());
        let status = view.as_ref().map(|v| v.with_pending.status);
        let open_reviews: Vec<EventId> = view
            .iter()
            .flat_map(|v| &v.official.review)
            .filter(|r| r.resolution.is_none())
            .map(|r| r.event.id.clone())
            .collect();
        let target = open_reviews
            .get(usize::from(extra) % open_reviews.len().max(1))
            .cloned()
            .unwrap_or_else(EventId::random);
        let c = Choices {
            me: phone.user.clone(),
            engineer: self.engineers[usize::from(extra) % self.engineers.len()].clone(),
            target,
            extra,
        };
        if pick >= 128
            && let Some(s) = status
            && let Some(t) = c.natural(phone.role, s, !open_reviews.is_empty())
        {
            return t;
        }
        let mut menu = c.menu(phone.role);
        let i = usize::from(pick) % menu.len();
        menu.swap_remove(i)
    }

    /// Moves messages between a device and the relay, connecting first if needed.
    fn exchange(&mut self, who: usize, budget: Option<usize>, order: u32) {
        let phone = &mut self.phones[who];
        let link = phone.link.get_or_insert_with(|| {
            let mut session = Session::new(&phone.device).unwrap();
            let hello = session.handle(Input::Connected).unwrap();
            Link {
                session,
                up: hello.into(),
            }
        });
        for n in 0..100_000usize {
            if budget.is_some_and(|b| n >= b) {
                return;
            }
            let up = !link.up.is_empty();
            let down = self.relay.has_mail(&phone.user);
            let go_up = up && (!down || (order >> (n % 32)) & 1 == 0);
            if go_up {
                let m = link.up.pop_front().unwrap();
                self.relay.receive(&phone.user, m);
            } else if down {
                let m = self.relay.next_for(&phone.user).unwrap();
                link.up
                    .extend(link.session.handle(Input::Received(m)).unwrap());
            } else {
                return;
            }
        }
        panic!("{}'s exchange with the relay did not go quiet", phone.user);
    }

    /// The connection drops; whatever was in flight is lost.
    fn hang_up(&mut self, who: usize) {
        let phone = &mut self.phones[who];
        if let Some(mut link) = phone.link.take() {
            link.session.handle(Input::Disconnected).unwrap();
            self.relay.disconnect_of(&phone.user);
        }
    }

    fn relay_heads(&self) -> BTreeMap<DocId, Vec<ChangeHash>> {
        self.relay.heads()
    }

    /// Everyone syncs in turn, each until quiet, until a whole round leaves the relay as it was.
    fn settle(&mut self) {
        for _ in 0..20 {
            let before = self.relay_heads();
            for who in 0..self.phones.len() {
                self.exchange(who, None, 0);
                let link = self.phones[who].link.as_ref().unwrap();
                assert!(
                    link.session.is_idle(),
                    "{} is not idle after a full exchange: {:?}",
                    self.phones[who].user,
                    link.session.engine()
                );
                self.hang_up(who);
            }
            if self.relay_heads() == before {
                return;
            }
        }
        panic!("the team did not settle in 20 rounds");
    }

    fn check(&self) {
        assert_eq!(
            self.relay.rejections, 0,
            "honest devices are never hard-rejected"
        );
        let policy = schema::Policy::default();
        for phone in &self.phones {
            let who = &phone.user;
            let device = &phone.device;
            let inbox_id = self.relay.inbox_of(who);
            let listed: BTreeSet<DocId> = schema::doc::read_inbox(self.relay.doc(inbox_id))
                .unwrap()
                .docs
                .keys()
                .map(|u| u.id())
                .collect();
            let held: BTreeSet<DocId> = device
                .inbox()
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .filter(|id| *id != inbox_id)
                .collect();
            assert_eq!(held, listed, "{who} holds exactly what its inbox lists");
            for id in held.iter().chain([&inbox_id]) {
                let (mine, report) = device.load(*id).unwrap();
                assert!(report.is_clean(), "{who} {id}: {report:?}");
                let relays = self.relay.doc(*id);
                assert_eq!(
                    sorted(mine.get_heads()),
                    sorted(relays.get_heads()),
                    "{who}'s copy of {id} has the relay's heads"
                );
                if *id == inbox_id {
                    continue;
                }
                let view = device.show(&id.to_string()).unwrap();
                let official = Projection::official(&self.relay.ticket(*id), &policy);
                assert_eq!(view.official, official, "{who}'s official view of {id}");
                assert!(view.pending.is_empty(), "{who} {id}: {:?}", view.pending);
            }
            assert!(
                device.pending().unwrap().is_empty(),
                "{who}: {:?}",
                device.pending().unwrap()
            );
        }
        for m in &self.made {
            let who = &self.phones[m.who].user;
            let t = self.relay.try_doc(m.doc).and_then(|d| {
                schema::doc::read_ticket(d, None)
                    .ok()
                    .filter(|_| d.get_change_by_hash(&m.change).is_some())
            });
            match t {
                Some(t) if m.note => {
                    assert!(
                        t.notes.iter().any(|n| n.id == m.id),
                        "{who}'s note {}",
                        m.id
                    );
                }
                Some(t) => {
                    assert!(t.event(&m.id).is_some(), "{who}'s event {}", m.id);
                    assert!(
                        t.server.verdicts.contains_key(&m.id),
                        "{who}'s event {} has no verdict",
                        m.id
                    );
                }
                None => {
                    let q = self.phones[m.who].device.quarantine().unwrap();
                    assert!(
                        q.iter().any(|r| r.change_hash == m.change.to_string()),
                        "{who}'s {} is neither at the relay nor in the quarantine",
                        m.id
                    );
                }
            }
        }
        let mut judged = BTreeSet::new();
        for (doc, event, seq) in &self.relay.verdict_log {
            assert!(
                judged.insert((*doc, event.clone())),
                "{event} in {doc} was judged twice (seq {seq})"
            );
        }
        for id in &self.tickets {
            let t = self.relay.ticket(*id);
            let mut seqs: Vec<u64> = t.server.verdicts.values().map(|v| v.seq).collect();
            seqs.sort_unstable();
            let n = u64::try_from(seqs.len()).unwrap();
            assert_eq!(seqs, (1..=n).collect::<Vec<_>>(), "verdict seqs of {id}");
            let events: BTreeSet<&EventId> = t.events.iter().map(|e| &e.id).collect();
            let verdicts: BTreeSet<&EventId> = t.server.verdicts.keys().collect();
            assert_eq!(events, verdicts, "every event of {id} has one verdict");
            let doc = self.relay.doc(*id);
            let (_, server) = doc.get(automerge::ROOT, "server").unwrap().unwrap();
            let (_, map) = doc.get(&server, "verdicts").unwrap().unwrap();
            for key in doc.keys(&map) {
                assert_eq!(
                    doc.get_all(&map, &key).unwrap().len(),
                    1,
                    "event {key} of {id} has conflicting verdicts"
                );
            }
        }
    }
}

/// The makings of a device's next try.
struct Choices {
    me: UserId,
    /// An engineer to assign or transfer to.
    engineer: UserId,
    /// A review item to decide (a random id when there is none).
    target: EventId,
    extra: u8,
}

impl Choices {
    fn completion(&self) -> Try {
        let (a, d) = actions::complete(Completion {
            result: "replaced the part".into(),
            labour_min: i64::from(self.extra % 90) + 10,
            materials: (0..self.extra % 3)
                .map(|i| Material {
                    name: format!("part {i}"),
                    qty: i64::from(i) + 1,
                    unit_fen: Fen::new(150),
                })
                .collect(),
            ..Completion::default()
        });
        Try::Act(a, Box::new(d))
    }

    fn with(action: Action, data: EventData) -> Try {
        Try::Act(action, Box::new(data))
    }

    fn reason(action: Action, reason: &str) -> Try {
        Self::with(
            action,
            EventData {
                reason: Some(reason.into()),
                ..EventData::default()
            },
        )
    }

    fn step((a, d): actions::Step) -> Try {
        Try::Act(a, Box::new(d))
    }

    fn decide(&self) -> Try {
        Self::with(
            if self.extra.is_multiple_of(2) {
                Action::Override
            } else {
                Action::Dismiss
            },
            EventData {
                target: Some(self.target.clone()),
                reason: Some("reviewed".into()),
                ..EventData::default()
            },
        )
    }

    fn returned() -> Try {
        Self::with(
            Action::Return,
            EventData {
                copy_received: Some(true),
                ..EventData::default()
            },
        )
    }

    fn visit(&self) -> Try {
        let reached = !self.extra.is_multiple_of(4);
        Self::step(actions::return_visit(
            if reached {
                ContactResult::Reached
            } else {
                ContactResult::Unreachable
            },
            reached.then_some(Satisfaction::Satisfied),
        ))
    }

    fn outsource() -> Try {
        Self::with(
            Action::Outsource,
            EventData {
                contractor: Some("Acme Plumbing".into()),
                reason: Some("needs a specialist".into()),
                ..EventData::default()
            },
        )
    }

    fn contractor_done() -> Try {
        Self::with(
            Action::Complete,
            EventData {
                result: Some("the contractor fixed it".into()),
                materials: Some(Vec::new()),
                ..EventData::default()
            },
        )
    }

    /// The step a ticket in this state calls for from this role, if any.
    fn natural(&self, role: Role, status: Status, reviews: bool) -> Option<Try> {
        use Status as S;
        Some(match (role, status) {
            (Role::EngineeringSupervisor | Role::Supervisor, _) if reviews => self.decide(),
            (Role::Engineer, S::Issued) => Self::step(actions::grab(&self.me)),
            (Role::Engineer, S::Assigned) => Self::step(actions::accept()),
            (Role::Engineer, S::Accepted) => Self::step(actions::start()),
            (Role::Engineer, S::InProgress) if self.extra.is_multiple_of(6) => {
                Self::reason(Action::Hold, "waiting for parts")
            }
            (Role::Engineer, S::InProgress) if self.extra % 6 == 1 => {
                Self::reason(Action::CannotFix, "needs a new riser")
            }
            (Role::Engineer, S::InProgress) => self.completion(),
            (Role::Engineer | Role::EngineeringSupervisor, S::OnHold) => {
                Self::step(actions::resume())
            }
            (Role::EngineeringSupervisor, S::Unable) if self.extra.is_multiple_of(2) => {
                Self::outsource()
            }
            (Role::EngineeringSupervisor, S::Unable) => {
                Self::reason(Action::CloseUnfixable, "beyond repair")
            }
            (Role::EngineeringSupervisor, S::Outsourced) => Self::contractor_done(),
            (Role::EngineeringSupervisor, S::Assigned | S::Accepted | S::InProgress) => {
                Self::step(actions::transfer(&self.engineer, "rebalancing the day"))
            }
            (Role::EngineeringSupervisor | Role::FrontDesk, S::Issued) => {
                Self::step(actions::assign(&self.engineer))
            }
            (Role::FrontDesk | Role::Supervisor, S::Completed) => Self::returned(),
            (Role::FrontDesk | Role::Supervisor, S::Returned) => self.visit(),
            (Role::FrontDesk | Role::Supervisor, S::ReturnVisited) => {
                Self::with(Action::Close, EventData::default())
            }
            _ => return None,
        })
    }

    /// Everything a person in this role might attempt, in no particular state.
    fn menu(&self, role: Role) -> Vec<Try> {
        let note = Try::Note(format!("note {} by {}", self.extra, self.me));
        match role {
            Role::Engineer => vec![
                Self::step(actions::accept()),
                Self::step(actions::start()),
                self.completion(),
                Self::reason(Action::Hold, "waiting for parts"),
                Self::step(actions::resume()),
                Self::reason(Action::CannotFix, "needs a new riser"),
                Self::reason(Action::HandBack, "not my trade"),
                Self::step(actions::grab(&self.me)),
                Try::Report,
                note,
            ],
            Role::EngineeringSupervisor => vec![
                Self::step(actions::transfer(&self.engineer, "rebalancing the day")),
                Self::step(actions::assign(&self.engineer)),
                Self::reason(Action::Hold, "parts on order"),
                Self::step(actions::resume()),
                Self::outsource(),
                Self::reason(Action::CloseUnfixable, "beyond repair"),
                Self::contractor_done(),
                self.decide(),
                note,
            ],
            Role::FrontDesk => vec![
                Self::step(actions::assign(&self.engineer)),
                Self::returned(),
                self.visit(),
                Self::with(Action::Close, EventData::default()),
                Self::reason(Action::Void, "duplicate"),
                Self::reason(Action::Cancel, "the resident fixed it"),
                Try::Report,
                note,
            ],
            _ => vec![
                Self::reason(Action::Cancel, "not needed"),
                Self::with(Action::Check, EventData::default()),
                Self::reason(Action::Escalate, "slow"),
                self.decide(),
                Self::returned(),
                self.visit(),
                Self::with(Action::Close, EventData::default()),
                Self::reason(Action::Waive, "goodwill"),
                note,
            ],
        }
    }
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(64)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn random_offline_work_by_many_devices_converges(s in scenario()) {
        let mut world = World::new(&s);
        for step in &s.steps {
            world.run(step);
        }
        world.settle();
        world.check();
    }
}
