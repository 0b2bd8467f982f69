// Long file: every kind of ticket's lifecycle script beside the code that runs them many at a time.
//! A year of a property's history, written through the relay's own
//! authoring path: every ticket is created and moved through its lifecycle
//! by `Hub::author` as the person who would do it (the front
//! desk records and dispatches, the engineer accepts, starts and completes,
//! the department staff reply, the supervisor closes complaints), judged,
//! numbered and committed exactly as a dashboard user's action is, with the
//! inboxes kept by the same keeper.
//!
//! The relay's clock is a [`HistoryClock`]: the steps of every ticket are
//! laid out over the past `days` days, sorted by time and run many at once
//! (so the group commit batches them), each moving the clock forward to its
//! own time. Most tickets end closed (a repair is issued, dispatched,
//! accepted, started, completed, returned, visited and closed; a complaint is
//! routed, handled, replied to, visited and closed; some orders are voided
//! with a reason); `open_percent` of them stop part way, and those whose
//! steps fall after the end are still open too.
//!
//! `propsync-server admin seed-history` runs it on a data directory, and the
//! benchmark (`propsync-bench --history N`) seeds its relay with it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use schema::lifecycle::Action;
use schema::ticket::{
    Channel, ContactResult, Event, EventData, Kind, Material, Reported, Satisfaction, TicketHeader,
    Urgency,
};
use schema::{Department, DocId, EventId, Fen, Principal, Role, Status, UserId, doc};

use crate::config::TimeSource;
use crate::error::{AppError, AppResult};
use crate::state::Relay;

/// A clock the history moves forward: the relay reads it (pass
/// [`HistoryClock::time_source`] as [`Config::clock`](crate::Config::clock))
/// and each step sets it to its own time, never backwards.
#[derive(Clone, Debug)]
pub struct HistoryClock(Arc<AtomicI64>);

impl HistoryClock {
    /// A clock standing at `at`.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(at.timestamp_millis())))
    }

    /// The clock as the relay's configuration takes it.
    pub fn time_source(&self) -> TimeSource {
        let millis = Arc::clone(&self.0);
        TimeSource::from_fn(move || {
            Utc.timestamp_millis_opt(millis.load(Ordering::Relaxed))
                .single()
                .unwrap_or_default()
        })
    }

    /// The time it shows.
    pub fn now(&self) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(self.0.load(Ordering::Relaxed))
            .single()
            .unwrap_or_default()
    }

    /// Sets the clock to `at` (backwards too).
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::Relaxed);
    }

    /// Moves the clock to `at`, unless it already shows a later time.
    pub fn advance_to(&self, at: DateTime<Utc>) {
        self.0.fetch_max(at.timestamp_millis(), Ordering::Relaxed);
    }
}

/// What history to write.
#[derive(Clone, Debug)]
pub struct Options {
    /// Tickets to create.
    pub tickets: usize,
    /// Over how many days before `end` they were received.
    pub days: u32,
    /// The end of the history (the relay's clock is left there).
    pub end: DateTime<Utc>,
    /// Per cent of tickets that stop part way through their lifecycle
    /// (tickets whose steps fall after `end` stay open as well).
    pub open_percent: u32,
    /// Steps in flight at once.
    pub parallel: usize,
    /// The random seed: the same seed writes the same history.
    pub seed: u64,
    /// The engineers orders go to (empty: every engineer of the property).
    pub engineers: Vec<UserId>,
}

impl Options {
    /// `tickets` over the year up to now, 4 % left open.
    pub fn new(tickets: usize) -> Self {
        Self {
            tickets,
            days: 365,
            end: Utc::now(),
            open_percent: 4,
            parallel: 64,
            seed: 16,
            engineers: Vec::new(),
        }
    }
}

/// Where the seeding is.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    /// Steps (ticket creations and lifecycle events) written.
    pub steps_done: usize,
    /// Steps to write.
    pub steps_total: usize,
    /// Tickets created so far.
    pub tickets_created: usize,
    /// Since the seeding started.
    pub elapsed: Duration,
}

/// What was written.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    /// Tickets created.
    pub tickets: usize,
    /// Steps written (creations included).
    pub steps: usize,
    /// Tickets per kind.
    pub by_kind: BTreeMap<&'static str, usize>,
    /// Tickets per status in the register afterwards.
    pub by_status: BTreeMap<String, usize>,
    /// Tickets still open in the register afterwards.
    pub open: usize,
    /// Tickets planned to end in a terminal state that the register shows
    /// open (a step was not accepted): 0 when the history went as planned.
    pub not_as_planned: usize,
    /// Steps refused by a hard rule (0 when the history went as planned).
    pub refused: usize,
    /// How long it took.
    pub took: Duration,
}

/// Who does a step.
#[derive(Clone, Copy, Debug)]
enum Who {
    Desk,
    Supervisor,
    Engineer,
    Cashier,
    Staff(Department),
}

/// One ticket's plan: its kind, its path, when it was received, and how far it gets.
#[derive(Clone, Copy, Debug)]
struct Plan {
    id: DocId,
    seed: u64,
    start: i64,
    engineer: usize,
}

/// One step of a ticket's script.
struct Step {
    after_secs: i64,
    who: Who,
    action: Action,
    data: EventData,
}

/// A small, fast, seeded generator (SplitMix64): the same seed, the same history.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        if hi <= lo {
            return lo;
        }
        let span = u64::try_from(hi - lo).unwrap_or(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }

    /// True `pct` times in a hundred.
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        let n = u64::try_from(xs.len()).unwrap_or(1).max(1);
        &xs[usize::try_from(self.next() % n).unwrap_or(0)]
    }
}

const MIN: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// Repair titles and their categories.
const REPAIRS: &[(&str, &str)] = &[
    ("厨房水龙头漏水", "plumbing"),
    ("卫生间下水道堵塞", "plumbing"),
    ("热水器不出热水", "plumbing"),
    ("客厅灯不亮", "electrical"),
    ("插座跳闸", "electrical"),
    ("楼道灯不亮", "electrical"),
    ("入户门锁坏了", "carpentry"),
    ("窗户关不严", "carpentry"),
    ("空调不制冷", "hvac"),
    ("暖气片不热", "hvac"),
];
const PAID: &[(&str, &str)] = &[
    ("油烟机深度清洗", "cleaning"),
    ("送桶装水", "delivery"),
    ("室内保洁", "cleaning"),
];
const COMPLAINTS: &[(&str, Department)] = &[
    ("晚上十点后装修噪音", Department::Security),
    ("车位被占用", Department::Security),
    ("楼道垃圾未及时清运", Department::Cleaning),
    ("电梯厅地面湿滑", Department::Cleaning),
];
const NEEDS: &[&str] = &["停车证续办", "门禁卡补办", "快递代收", "装修手续咨询"];
const PRAISE: &[&str] = &["感谢维修师傅及时上门", "保安巡逻认真负责"];
const SUGGESTIONS: &[&str] = &["在二号楼增设自行车棚", "小区增加垃圾分类指引"];

fn kind_of(r: &mut Rng) -> Kind {
    match r.next() % 100 {
        0..55 => Kind::Repair,
        55..70 => Kind::Complaint,
        70..85 => Kind::Need,
        85..90 => Kind::Praise,
        90..95 => Kind::Suggestion,
        _ => Kind::PaidService,
    }
}

/// A ticket's header and its whole script (creation first), from its seed.
/// The header's `reported.by` is the engineer as a placeholder: the step
/// that creates the ticket puts its author there.
fn script(plan: &Plan, engineer: &UserId, open_percent: u32) -> (TicketHeader, Vec<Step>) {
    let mut r = Rng(plan.seed);
    let kind = kind_of(&mut r);
    let building = r.range(1, 9);
    let unit = format!("B{building}-{}{:02}", r.range(1, 19), r.range(1, 5));
    let channel = *r.pick(&[
        Channel::Phone,
        Channel::Phone,
        Channel::WalkIn,
        Channel::App,
    ]);
    let urgency = if r.chance(8) {
        Urgency::Urgent
    } else {
        Urgency::Normal
    };
    let step = |after_secs: i64, who: Who, action: Action, data: EventData| Step {
        after_secs,
        who,
        action,
        data,
    };
    let reason = |s: &str| EventData {
        reason: Some(s.to_owned()),
        ..EventData::default()
    };
    let visit = |r: &mut Rng| EventData {
        contact_result: Some(ContactResult::Reached),
        satisfaction: Some(if r.chance(85) {
            Satisfaction::Satisfied
        } else {
            Satisfaction::Basic
        }),
        ..EventData::default()
    };
    let (title, mut steps) = match kind {
        Kind::Repair | Kind::PaidService => {
            let paid = kind == Kind::PaidService;
            let (title, category) = *r.pick(if paid { PAID } else { REPAIRS });
            let create = EventData {
                category: Some(category.to_owned()),
                urgency: Some(urgency),
                paid: paid.then_some(true),
                ..EventData::default()
            };
            let mut steps = vec![step(0, Who::Desk, Action::Issue, create)];
            if !paid && r.chance(3) {
                steps.push(step(
                    r.range(5 * MIN, HOUR),
                    Who::Desk,
                    Action::Void,
                    reason("重复录入 / entered twice"),
                ));
            } else {
                let assign = EventData {
                    assignee: Some(engineer.clone()),
                    ..EventData::default()
                };
                steps.push(step(
                    r.range(5 * MIN, HOUR),
                    Who::Desk,
                    Action::Assign,
                    assign,
                ));
                steps.push(step(
                    r.range(5 * MIN, 2 * HOUR),
                    Who::Engineer,
                    Action::Accept,
                    EventData::default(),
                ));
                steps.push(step(
                    r.range(30 * MIN, DAY),
                    Who::Engineer,
                    Action::Start,
                    EventData::default(),
                ));
                if r.chance(10) {
                    steps.push(step(
                        r.range(20 * MIN, 2 * HOUR),
                        Who::Engineer,
                        Action::Hold,
                        reason("等配件 / awaiting parts"),
                    ));
                    steps.push(step(
                        r.range(DAY, 5 * DAY),
                        Who::Engineer,
                        Action::Resume,
                        EventData::default(),
                    ));
                }
                let quote = Fen::new(r.range(30, 300) * 100);
                steps.push(step(
                    r.range(30 * MIN, 3 * HOUR),
                    Who::Engineer,
                    Action::Complete,
                    EventData {
                        result: Some("已处理并试用正常 / fixed and tested".into()),
                        labour_min: Some(r.range(15, 180)),
                        materials: Some(if r.chance(60) {
                            vec![Material {
                                name: "配件 / part".into(),
                                qty: r.range(1, 4),
                                unit_fen: Fen::new(r.range(2, 80) * 100),
                            }]
                        } else {
                            Vec::new()
                        }),
                        quote_fen: paid.then_some(quote),
                        ..EventData::default()
                    },
                ));
                steps.push(step(
                    r.range(HOUR, 2 * DAY),
                    Who::Desk,
                    Action::Return,
                    EventData {
                        copy_received: Some(true),
                        ..EventData::default()
                    },
                ));
                if paid {
                    steps.push(step(
                        r.range(HOUR, DAY),
                        Who::Cashier,
                        Action::Collect,
                        EventData {
                            amount_fen: Some(quote),
                            receipt: Some(format!("R{:08}", r.range(0, 99_999_999))),
                            method: Some("wechat".into()),
                            ..EventData::default()
                        },
                    ));
                }
                steps.push(step(
                    r.range(HOUR, 3 * DAY),
                    Who::Desk,
                    Action::ReturnVisit,
                    visit(&mut r),
                ));
                steps.push(step(
                    r.range(MIN, 10 * MIN),
                    Who::Desk,
                    Action::Close,
                    EventData::default(),
                ));
            }
            (title.to_owned(), steps)
        }
        Kind::Complaint => {
            let (title, dept) = *r.pick(COMPLAINTS);
            let staff = Who::Staff(dept);
            let steps = vec![
                step(
                    0,
                    Who::Desk,
                    Action::Record,
                    EventData {
                        urgency: Some(urgency),
                        ..EventData::default()
                    },
                ),
                step(
                    r.range(5 * MIN, 30 * MIN),
                    Who::Desk,
                    Action::Route,
                    EventData {
                        department: Some(dept),
                        ..EventData::default()
                    },
                ),
                step(
                    r.range(10 * MIN, 4 * HOUR),
                    staff,
                    Action::Accept,
                    EventData::default(),
                ),
                step(
                    r.range(HOUR, 2 * DAY),
                    staff,
                    Action::Reply,
                    EventData {
                        result: Some("已现场处理并告知住户 / handled on site".into()),
                        ..EventData::default()
                    },
                ),
                step(
                    r.range(2 * HOUR, 2 * DAY),
                    Who::Desk,
                    Action::ReturnVisit,
                    visit(&mut r),
                ),
                step(
                    r.range(MIN, HOUR),
                    Who::Supervisor,
                    Action::Close,
                    EventData::default(),
                ),
            ];
            (title.to_owned(), steps)
        }
        Kind::Need => {
            let title = *r.pick(NEEDS);
            let steps = vec![
                step(
                    0,
                    Who::Desk,
                    Action::Record,
                    EventData {
                        urgency: Some(Urgency::Normal),
                        ..EventData::default()
                    },
                ),
                step(
                    r.range(MIN, 30 * MIN),
                    Who::Desk,
                    Action::Answer,
                    EventData {
                        result: Some("已电话答复 / answered on the call".into()),
                        ..EventData::default()
                    },
                ),
            ];
            (title.to_owned(), steps)
        }
        Kind::Praise | Kind::Suggestion => {
            let title = *r.pick(if kind == Kind::Praise {
                PRAISE
            } else {
                SUGGESTIONS
            });
            let steps = vec![
                step(
                    0,
                    Who::Desk,
                    Action::Record,
                    EventData {
                        urgency: Some(Urgency::Low),
                        ..EventData::default()
                    },
                ),
                step(
                    r.range(HOUR, DAY),
                    Who::Desk,
                    Action::Acknowledge,
                    EventData::default(),
                ),
                step(
                    r.range(MIN, 10 * MIN),
                    Who::Desk,
                    Action::Close,
                    EventData::default(),
                ),
            ];
            (title.to_owned(), steps)
        }
    };
    // Some tickets stop part way (awaiting a visit, a reply, a part).
    let keep = r.range(1, i64::try_from(steps.len()).unwrap_or(1));
    if r.chance(u64::from(open_percent)) {
        steps.truncate(usize::try_from(keep).unwrap_or(1));
    }
    let at = Utc
        .timestamp_opt(plan.start, 0)
        .single()
        .unwrap_or_default();
    let header = TicketHeader {
        kind,
        household: None,
        location: unit,
        title,
        description: String::new(),
        reported: Reported {
            by: engineer.clone(),
            channel,
            at,
        },
        caller: None,
    };
    (header, steps)
}

/// The people who act in the history.
struct Cast {
    desk: Principal,
    supervisor: Principal,
    cashier: Principal,
    engineers: Vec<Principal>,
    staff: Vec<(Department, Principal)>,
}

impl Cast {
    async fn of(relay: &Relay, engineers: &[UserId]) -> AppResult<Self> {
        let users = relay.hub.store.users().await?;
        let people: Vec<Principal> = users
            .iter()
            .filter(|u| !u.disabled)
            .map(|u| {
                Principal::new(
                    u.username.clone(),
                    u.role,
                    crate::admin::web_device(&u.username),
                )
                .in_department(u.department)
            })
            .collect();
        let first = |role: Role, prefer: &str| {
            people
                .iter()
                .filter(|p| p.role == role)
                .min_by_key(|p| (p.user.as_str() != prefer, p.user.clone()))
                .cloned()
                .ok_or_else(|| {
                    AppError::Conflict(format!(
                        "the property has no {} to write history with",
                        role.as_str()
                    ))
                })
        };
        let engs: Vec<Principal> = people
            .iter()
            .filter(|p| {
                p.role == Role::Engineer && (engineers.is_empty() || engineers.contains(&p.user))
            })
            .cloned()
            .collect();
        if engs.is_empty() {
            return Err(AppError::Conflict(
                "the property has no engineer to write history with".into(),
            ));
        }
        let mut staff = Vec::new();
        for d in [Department::Security, Department::Cleaning] {
            let p = people
                .iter()
                .find(|p| p.role == Role::DepartmentStaff && p.department == d)
                .cloned()
                .ok_or_else(|| {
                    AppError::Conflict(format!(
                        "the property has no {} staff to write history with",
                        d.as_str()
                    ))
                })?;
            staff.push((d, p));
        }
        Ok(Self {
            desk: first(Role::FrontDesk, "frontdesk")?,
            supervisor: first(Role::Supervisor, "supervisor")?,
            cashier: first(Role::Cashier, "cashier")?,
            engineers: engs,
            staff,
        })
    }

    fn who(&self, who: Who, plan: &Plan) -> AppResult<&Principal> {
        match who {
            Who::Desk => Ok(&self.desk),
            Who::Supervisor => Ok(&self.supervisor),
            Who::Cashier => Ok(&self.cashier),
            Who::Engineer => Ok(&self.engineers[plan.engineer % self.engineers.len()]),
            Who::Staff(d) => self
                .staff
                .iter()
                .find(|(x, _)| *x == d)
                .map(|(_, p)| p)
                .ok_or_else(|| AppError::Internal(format!("no {} staff", d.as_str()))),
        }
    }
}

/// Writes `opts.tickets` tickets' history into `relay`, whose clock must be
/// `clock` (set back to the history's first day, then moved forward by each
/// step; it is left at `opts.end`). The
/// property's people must exist (the demo property's are enough: a front
/// desk, a supervisor, a cashier, engineers, security and cleaning staff).
/// `progress` is called about once a second.
///
/// # Errors
/// Storage errors, or a property without the people the history needs.
pub async fn seed(
    relay: &Relay,
    clock: &HistoryClock,
    opts: &Options,
    progress: &(dyn Fn(&Progress) + Sync),
) -> AppResult<Summary> {
    let started = Instant::now();
    let cast = Arc::new(Cast::of(relay, &opts.engineers).await?);
    let end = opts.end.timestamp();
    let span = i64::from(opts.days.max(1)) * DAY;
    let mut seeds = Rng(opts.seed);
    let open = opts.open_percent.min(100);
    let plans: Vec<Plan> = (0..opts.tickets)
        .map(|_| {
            let seed = seeds.next();
            // Received on a day of the year, 08:00 to 20:00 in China
            // (00:00 to 12:00 UTC).
            let first_day = (end - span).div_euclid(DAY) * DAY;
            let start = first_day + seeds.range(0, span / DAY) * DAY + seeds.range(0, 12 * HOUR);
            let engineer = usize::try_from(seeds.next() % 1_000_003).unwrap_or(0);
            Plan {
                id: DocId::random(),
                seed,
                start,
                engineer,
            }
        })
        .collect();
    // Every step at its time; those after the end are never written.
    let mut steps: Vec<(i64, u32, u8)> = Vec::with_capacity(plans.len() * 6);
    let mut planned_terminal = vec![false; plans.len()];
    let mut summary = Summary::default();
    for (i, plan) in plans.iter().enumerate() {
        let (header, script) = script(plan, &cast.engineers[0].user, open);
        *summary.by_kind.entry(header.kind.as_str()).or_default() += 1;
        let mut at = plan.start;
        let mut all = true;
        for (k, s) in script.iter().enumerate() {
            at += s.after_secs;
            if at > end {
                all = false;
                break;
            }
            steps.push((
                at,
                u32::try_from(i).unwrap_or(u32::MAX),
                u8::try_from(k).unwrap_or(u8::MAX),
            ));
        }
        planned_terminal[i] = all
            && script
                .last()
                .is_some_and(|s| matches!(s.action, Action::Close | Action::Void | Action::Answer));
    }
    steps.sort_unstable();
    let total = steps.len();
    clock.set(
        Utc.timestamp_opt(end - span, 0)
            .single()
            .unwrap_or_default(),
    );

    // Documents nobody touched for a moment leave memory, as on a serving relay.
    let sweeper = relay.hub.clone();
    let sweep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tick.tick().await;
            sweeper.evict_idle(Duration::from_secs(1)).await;
        }
    });

    let done: Arc<Vec<AtomicU8>> = Arc::new((0..plans.len()).map(|_| AtomicU8::new(0)).collect());
    let moved = Arc::new(tokio::sync::Notify::new());
    let refused = Arc::new(AtomicUsize::new(0));
    let plans = Arc::new(plans);
    let mut run = futures_util::stream::iter(steps.into_iter().map(|(at, i, k)| {
        let (relay, clock, cast) = (relay.clone(), clock.clone(), Arc::clone(&cast));
        let (done, moved, refused, plans) = (
            Arc::clone(&done),
            Arc::clone(&moved),
            Arc::clone(&refused),
            Arc::clone(&plans),
        );
        async move {
            let i = i as usize;
            // A ticket's steps run in order; earlier steps are all admitted
            // before this one (the stream is sorted by time), so this ends.
            loop {
                let wait = moved.notified();
                tokio::pin!(wait);
                wait.as_mut().enable();
                if done[i].load(Ordering::Acquire) == k {
                    break;
                }
                wait.await;
            }
            let plan = &plans[i];
            let when = Utc.timestamp_opt(at, 0).single().unwrap_or_default();
            clock.advance_to(when);
            let (header, mut script) = script(plan, &cast.who(Who::Engineer, plan)?.user, open);
            let s = script.swap_remove(usize::from(k));
            let p = cast.who(s.who, plan)?.clone();
            let event = Event {
                id: EventId::random(),
                action: s.action.as_str().to_owned(),
                by: p.user.clone(),
                device: p.device.clone(),
                at: when,
                data: s.data,
            };
            let rejection = if k == 0 {
                let header = TicketHeader {
                    reported: Reported {
                        by: p.user.clone(),
                        ..header.reported
                    },
                    ..header
                };
                relay
                    .hub
                    .author(&p, plan.id, true, None, move |t| {
                        doc::create_ticket(t, &header)?;
                        doc::append_event(t, &event)
                    })
                    .await?
            } else {
                relay
                    .hub
                    .author(&p, plan.id, false, None, move |t| doc::append_event(t, &event))
                    .await?
            };
            if let Some(r) = rejection {
                refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(ticket = %plan.id, rule = r.rule.name(), reason = %r.reason, "a history step was refused");
            }
            done[i].store(k + 1, Ordering::Release);
            moved.notify_waiters();
            AppResult::Ok(k == 0)
        }
    }))
    .buffer_unordered(opts.parallel.max(1));
    let mut steps_done = 0;
    let mut created = 0;
    let mut shown = Instant::now();
    let result: AppResult<()> = async {
        while let Some(r) = run.next().await {
            steps_done += 1;
            created += usize::from(r?);
            if shown.elapsed() >= Duration::from_secs(1) {
                shown = Instant::now();
                progress(&Progress {
                    steps_done,
                    steps_total: total,
                    tickets_created: created,
                    elapsed: started.elapsed(),
                });
            }
        }
        Ok(())
    }
    .await;
    drop(run);
    sweep.abort();
    result?;
    clock.advance_to(opts.end);
    relay.hub.keep_inboxes().await;
    progress(&Progress {
        steps_done,
        steps_total: total,
        tickets_created: created,
        elapsed: started.elapsed(),
    });

    let rows = relay.hub.store.ticket_rows().await?;
    let index: BTreeMap<DocId, usize> = plans.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
    for row in &rows {
        let Some(&i) = index.get(&row.doc_id) else {
            continue;
        };
        let status: Option<Status> = row.status.parse().ok();
        let is_open = status.is_none_or(|s| !s.is_terminal());
        summary.open += usize::from(is_open);
        summary.not_as_planned += usize::from(is_open && planned_terminal[i]);
        *summary.by_status.entry(row.status.clone()).or_default() += 1;
    }
    summary.tickets = created;
    summary.steps = steps_done;
    summary.refused = refused.load(Ordering::Relaxed);
    summary.took = started.elapsed();
    Ok(summary)
}

/// Opens the relay's state on `data` with a [`HistoryClock`], seeds the
/// demo property if the directory is fresh, and writes the history.
///
/// # Errors
/// Storage errors, or a property without the people the history needs.
pub async fn seed_data_dir(
    data: &std::path::Path,
    opts: &Options,
    progress: &(dyn Fn(&Progress) + Sync),
) -> AppResult<Summary> {
    // The property's people (and their device tokens) are made at the end
    // of the history, so the tokens are valid now; the history then sets
    // the clock back to its start.
    let clock = HistoryClock::new(opts.end);
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let mut config = crate::Config::new(data.to_owned(), listen);
    config.clock = clock.time_source();
    let relay = crate::open(config).await?;
    crate::demo::seed(&relay).await?;
    seed(&relay, &clock, opts, progress).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small history goes as planned: every step accepted, every ticket
    /// planned to end closed is closed, both serial series continuous, and
    /// about the planned share left open.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_year_goes_as_planned_with_continuous_serials() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let opts = Options {
            open_percent: 10,
            ..Options::new(300)
        };
        let s = seed_data_dir(dir.path(), &opts, &|_: &Progress| {})
            .await
            .expect("the history is written");
        assert_eq!((s.refused, s.not_as_planned), (0, 0), "{s:?}");
        assert!(s.tickets >= 290, "{s:?}");
        assert!(s.steps > 3 * s.tickets, "{s:?}");
        assert!(s.open >= 10 && s.open <= 80, "{s:?}");
        assert!(
            s.by_status.get("CLOSED").copied().unwrap_or(0) > s.tickets / 2,
            "{s:?}"
        );
        assert_eq!(s.by_kind.len(), 6, "every kind: {s:?}");
        let report = crate::ops::verify(dir.path(), &mut |_| {}).expect("verify runs");
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert!(report.serials_checked > 100, "{report:?}");
    }
}
