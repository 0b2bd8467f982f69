//! The projection: a pure fold of accepted events, in verdict order, into what
//! a person needs to see: status, assignee and assignment history, due times,
//! labour and materials, money, satisfaction and the return visits made, the
//! review items, and the flags computed from a given clock.
//!
//! **Architecture Invariant:** the projection is a function of the judged
//! events alone. Two replicas holding the same verdicts compute the same
//! projection, whatever order the events arrived in.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DocUrl, EventId, UserId};
use crate::judge::{Failure, Outcome};
use crate::lifecycle::{self, Action, Status, To, Transition};
use crate::money::Fen;
use crate::policy::Policy;
use crate::role::{Department, Principal};
use crate::ticket::{
    ContactResult, Event, Kind, Material, Satisfaction, Ticket, Urgency, VerdictRecord,
};

/// A flag computed from the clock; flags are not states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Flag {
    /// Past the due time of the current step.
    Overdue,
    /// A complaint open for a week or more (重点跟进).
    Focus,
    /// A return visit is due.
    ReturnVisitDue,
    /// Raised to the work meeting.
    Escalated,
}

impl Flag {
    /// Every flag.
    pub const ALL: [Flag; 4] = [
        Flag::Overdue,
        Flag::Focus,
        Flag::ReturnVisitDue,
        Flag::Escalated,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Overdue => "OVERDUE",
            Flag::Focus => "FOCUS",
            Flag::ReturnVisitDue => "RETURN_VISIT_DUE",
            Flag::Escalated => "ESCALATED",
        }
    }
}

/// One engineer's spell on an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    /// The engineer.
    pub engineer: UserId,
    /// Who assigned (or the engineer, for a grab).
    pub by: UserId,
    /// When (device time of the event).
    pub at: DateTime<Utc>,
    /// The reason given, for transfers.
    pub reason: Option<String>,
    /// When the spell ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// What ended it (`transfer`, `hand_back`).
    pub ended_by: Option<Action>,
}

/// Money collected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collection {
    /// Amount.
    pub amount: Fen,
    /// Receipt number.
    pub receipt: String,
    /// Payment method.
    pub method: String,
    /// Cashier.
    pub by: UserId,
    /// When (device time).
    pub at: DateTime<Utc>,
}

/// A charge waived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// Amount waived.
    pub amount: Fen,
    /// Why.
    pub reason: String,
    /// Who approved it.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
}

/// An escalation to the work meeting.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    /// Why it was raised.
    pub reason: String,
    /// Who raised it.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
    /// The meeting's decision.
    pub decision: Option<String>,
    /// Who owns the decision.
    pub owner: Option<UserId>,
    /// By when.
    pub due_at: Option<DateTime<Utc>>,
    /// When it was resolved.
    pub resolved_at: Option<DateTime<Utc>>,
}

/// The named follow-up of a FOCUS complaint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    /// Who follows up.
    pub owner: UserId,
    /// The next step.
    pub next_step: String,
    /// By when.
    pub due_at: DateTime<Utc>,
    /// Who set it.
    pub by: UserId,
}

/// A return visit that concluded: the resident was reached, or was not
/// reached after the policy's number of attempts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// When the visit fell due (`visit_due` of its cycle).
    pub due: Option<DateTime<Utc>>,
    /// When the concluding attempt was made (the event's own time).
    pub at: DateTime<Utc>,
    /// Who made it.
    pub by: UserId,
    /// Whether the resident was reached.
    pub reached: bool,
    /// The resident's satisfaction, when reached and asked.
    pub satisfaction: Option<Satisfaction>,
    /// Attempts in this cycle, the concluding one included.
    pub attempts: u32,
}

/// A supervisor's check mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckMark {
    /// The checker.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
    /// Remarks.
    pub remarks: Option<String>,
}

/// How a review item was resolved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// `override` or `dismiss`.
    pub action: Action,
    /// Who decided.
    pub by: UserId,
    /// When.
    pub at: DateTime<Utc>,
    /// Why.
    pub reason: String,
}

/// A conflicting or rejected event, kept for the review queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewItem {
    /// The event, exactly as recorded.
    pub event: Event,
    /// Conflict or rejected.
    pub outcome: Outcome,
    /// The rule's name.
    pub rule: String,
    /// The reason.
    pub reason: String,
    /// The verdict's sequence number.
    pub seq: u64,
    /// The supervisor's decision, once made.
    pub resolution: Option<Resolution>,
}

/// The state of one ticket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(
    missing_docs,
    reason = "field names say what they hold; the module doc says how"
)]
pub struct Projection {
    pub kind: Kind,
    pub status: Status,
    pub paid: bool,
    pub urgency: Option<Urgency>,
    pub category: Option<String>,
    /// Engineering for orders; the routed department for matters.
    pub department: Option<Department>,
    pub created_by: Option<UserId>,
    /// Device time of the creation event.
    pub created_at: Option<DateTime<Utc>>,
    /// Relay time of the creation verdict: the SLA clocks start here.
    pub received_at: Option<DateTime<Utc>>,
    pub assignee: Option<UserId>,
    pub assignments: Vec<Assignment>,
    pub accepted_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    pub completed_by: Option<UserId>,
    pub returned_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub response_due: Option<DateTime<Utc>>,
    pub completion_due: Option<DateTime<Utc>>,
    pub return_due: Option<DateTime<Utc>>,
    pub visit_due: Option<DateTime<Utc>>,
    pub focus_at: Option<DateTime<Utc>>,
    pub hold: Option<(String, DateTime<Utc>)>,
    pub labour_min: i64,
    pub materials: Vec<Material>,
    pub photos: Vec<String>,
    pub result: Option<String>,
    pub contractor: Option<String>,
    pub quote: Option<Fen>,
    pub charge: Fen,
    pub collections: Vec<Collection>,
    pub waivers: Vec<Waiver>,
    pub visit_attempts: u32,
    pub not_reached: bool,
    pub satisfaction: Option<Satisfaction>,
    /// Every concluded return visit, in order (a reopened complaint has one
    /// per cycle). Missing in register rows written before it existed.
    #[serde(default)]
    pub visits: Vec<Visit>,
    pub hand_backs: u32,
    pub transfers: u32,
    pub reopen_count: u32,
    /// The reason given to void, cancel, withdraw or close unfixable.
    pub end_reason: Option<String>,
    /// Rework order, merge target or the order issued for a matter.
    pub linked: Option<DocUrl>,
    pub informed: Vec<Department>,
    pub escalation: Option<Escalation>,
    pub follow_up: Option<FollowUp>,
    pub checks: Vec<CheckMark>,
    pub review: Vec<ReviewItem>,
    /// The highest verdict seq folded.
    pub last_seq: u64,
}

/// A device's pending event and whether it would stand on what the device knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pending {
    /// The event.
    pub event: Event,
    /// `None` if it applies on top of the official state; the rule otherwise.
    pub refused: Option<Failure>,
}

impl Projection {
    /// A ticket of this kind before its creation event.
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            status: Status::New,
            paid: kind == Kind::PaidService,
            urgency: None,
            category: None,
            department: None,
            created_by: None,
            created_at: None,
            received_at: None,
            assignee: None,
            assignments: Vec::new(),
            accepted_at: None,
            started_at: None,
            completed_at: None,
            completed_by: None,
            returned_at: None,
            closed_at: None,
            response_due: None,
            completion_due: None,
            return_due: None,
            visit_due: None,
            focus_at: None,
            hold: None,
            labour_min: 0,
            materials: Vec::new(),
            photos: Vec::new(),
            result: None,
            contractor: None,
            quote: None,
            charge: Fen::ZERO,
            collections: Vec::new(),
            waivers: Vec::new(),
            visit_attempts: 0,
            not_reached: false,
            satisfaction: None,
            visits: Vec::new(),
            hand_backs: 0,
            transfers: 0,
            reopen_count: 0,
            end_reason: None,
            linked: None,
            informed: Vec::new(),
            escalation: None,
            follow_up: None,
            checks: Vec::new(),
            review: Vec::new(),
            last_seq: 0,
        }
    }

    /// Folds judged events in verdict order (ties, which a well-formed document
    /// never has, by event id): accepted ones change the state, the others
    /// become review items.
    pub fn fold<'a>(
        kind: Kind,
        judged: impl IntoIterator<Item = (&'a Event, &'a VerdictRecord)>,
        policy: &Policy,
    ) -> Self {
        let mut judged: Vec<_> = judged.into_iter().collect();
        judged.sort_by(|a, b| (a.1.seq, &a.0.id).cmp(&(b.1.seq, &b.0.id)));
        let mut p = Projection::new(kind);
        for (event, verdict) in judged {
            p.fold_one(event, verdict, policy);
        }
        p
    }

    /// Folds one more judged event (its seq must follow the ones folded).
    pub fn fold_one(&mut self, event: &Event, verdict: &VerdictRecord, policy: &Policy) {
        self.last_seq = self.last_seq.max(verdict.seq);
        match verdict.outcome {
            Outcome::Accepted => {
                if let Some(t) = self.transition_for(event) {
                    self.apply(event, t, verdict.at, policy);
                }
            }
            Outcome::Conflict | Outcome::Rejected => self.review.push(ReviewItem {
                event: event.clone(),
                outcome: verdict.outcome,
                rule: verdict.rule.clone(),
                reason: verdict.reason.clone(),
                seq: verdict.seq,
                resolution: None,
            }),
        }
    }

    /// The official projection of a ticket: its judged events only.
    pub fn official(ticket: &Ticket, policy: &Policy) -> Self {
        Self::fold(ticket.header.kind, ticket.judged(), policy)
    }

    /// What a device shows: the official projection with the principal's own
    /// pending events applied on top, each marked with whether it would stand.
    pub fn with_pending(
        ticket: &Ticket,
        principal: &Principal,
        policy: &Policy,
    ) -> (Self, Vec<Pending>) {
        let mut p = Self::official(ticket, policy);
        let mut pending = Vec::new();
        for event in ticket
            .pending()
            .filter(|e| e.by == principal.user && e.device == principal.device)
        {
            let refused = match policy.check(principal, &p, event) {
                Ok(t) => {
                    p.apply(event, t, event.at, policy);
                    None
                }
                Err(f) => Some(f),
            };
            pending.push(Pending {
                event: event.clone(),
                refused,
            });
        }
        (p, pending)
    }

    /// What the author of `event` saw when making it: the official projection
    /// of `ticket` (read at the change's heads) plus the author's pending events
    /// that come before `event` in the document.
    pub fn seen_before(
        ticket: &Ticket,
        author: &Principal,
        event: &EventId,
        policy: &Policy,
    ) -> Self {
        let mut p = Self::official(ticket, policy);
        for e in ticket
            .pending()
            .take_while(|e| &e.id != event)
            .filter(|e| e.by == author.user && e.device == author.device)
        {
            if let Ok(t) = policy.check(author, &p, e) {
                p.apply(e, t, e.at, policy);
            }
        }
        p
    }

    /// The row an accepted event took: the one whose from-state matches, or
    /// (for an event forced through by an override) the first row of its action.
    fn transition_for(&self, event: &Event) -> Option<&'static Transition> {
        let action = event.action()?;
        let mut rows = lifecycle::rows(action, self.kind).peekable();
        let first = rows.peek().copied();
        rows.find(|t| t.from.contains(&self.status)).or(first)
    }

    /// Applies an accepted event. `at` is the relay's time of the verdict (the
    /// event's own time for a device's pending view).
    pub fn apply(&mut self, event: &Event, t: &Transition, at: DateTime<Utc>, policy: &Policy) {
        let d = &event.data;
        let by = event.by.clone();
        let text = |s: &Option<String>| s.clone().unwrap_or_default();
        let mut to = t.to;
        match t.action {
            Action::Issue | Action::Record => {
                self.created_by = Some(by.clone());
                self.created_at = Some(event.at);
                self.received_at = Some(at);
                self.urgency = d.urgency;
                self.category.clone_from(&d.category);
                self.paid = self.kind == Kind::PaidService || d.paid == Some(true);
                self.linked = d.linked;
                let urgency = d.urgency.unwrap_or(Urgency::Normal);
                self.response_due = Some(at + policy.response_due(self.kind, urgency));
                self.completion_due = Some(at + policy.completion_due(self.kind, urgency));
                if self.kind.is_order() {
                    self.department = Some(Department::Engineering);
                }
                if self.kind == Kind::Complaint {
                    self.focus_at = Some(at + policy.focus_after);
                }
            }
            Action::Assign | Action::Grab | Action::Transfer => {
                self.end_assignment(event);
                if t.action == Action::Transfer {
                    self.transfers += 1;
                }
                if let Some(engineer) = d.assignee.clone() {
                    self.assignments.push(Assignment {
                        engineer: engineer.clone(),
                        by,
                        at: event.at,
                        reason: d.reason.clone(),
                        ended_at: None,
                        ended_by: None,
                    });
                    self.assignee = Some(engineer);
                }
                self.hold = None;
            }
            Action::Accept => {
                self.accepted_at.get_or_insert(event.at);
                if !self.kind.is_order() && self.assignee.is_none() {
                    self.assignee = Some(by);
                }
            }
            Action::HandBack => {
                self.end_assignment(event);
                self.assignee = None;
                self.hand_backs += 1;
            }
            Action::Start => {
                self.started_at.get_or_insert(event.at);
            }
            Action::Hold => self.hold = Some((text(&d.reason), at)),
            Action::Resume => {
                if let Some((_, since)) = self.hold.take()
                    && let Some(due) = self.completion_due.as_mut()
                {
                    // The completion clock pauses while on hold.
                    *due += (at - since).max(Duration::zero());
                }
            }
            Action::Complete => {
                self.completed_at = Some(event.at);
                self.completed_by = Some(by);
                self.labour_min = self.labour_min.saturating_add(d.labour_min.unwrap_or(0));
                self.materials.extend(d.materials.iter().flatten().cloned());
                self.photos.extend(d.photos.iter().cloned());
                self.result.clone_from(&d.result);
                if d.quote_fen.is_some() {
                    self.quote = d.quote_fen;
                }
                self.return_due = Some(at + policy.return_due_after);
            }
            Action::CannotFix => self.result.clone_from(&d.reason),
            Action::Outsource => self.contractor.clone_from(&d.contractor),
            Action::CloseUnfixable | Action::Void | Action::Cancel | Action::Withdraw => {
                self.end_reason.clone_from(&d.reason);
                self.closed_at = Some(event.at);
            }
            Action::Return => {
                self.returned_at = Some(event.at);
                // A paid order's visit falls due once the cashier is done.
                if !self.paid {
                    self.visit_due = Some(at + policy.return_visit_after);
                }
            }
            Action::Charge => self.charge = self.quote.unwrap_or(Fen::ZERO),
            Action::Collect => {
                self.collections.push(Collection {
                    amount: d.amount_fen.unwrap_or(Fen::ZERO),
                    receipt: text(&d.receipt),
                    method: text(&d.method),
                    by,
                    at: event.at,
                });
                self.visit_due = Some(at + policy.return_visit_after);
            }
            Action::Waive => {
                self.waivers.push(Waiver {
                    amount: self.outstanding(),
                    reason: text(&d.reason),
                    by,
                    at: event.at,
                });
                self.visit_due = Some(at + policy.return_visit_after);
            }
            Action::ReturnVisit => {
                self.visit_attempts += 1;
                let reached = d.contact_result == Some(ContactResult::Reached);
                if reached {
                    self.satisfaction = d.satisfaction;
                } else if self.visit_attempts >= policy.visit_attempts {
                    self.not_reached = true;
                }
                if reached || self.not_reached {
                    self.visits.push(Visit {
                        due: self.visit_due,
                        at: event.at,
                        by,
                        reached,
                        satisfaction: if reached { d.satisfaction } else { None },
                        attempts: self.visit_attempts,
                    });
                }
                if let To::AfterVisit(done) = to {
                    to = if reached || self.not_reached {
                        To::State(done)
                    } else {
                        To::Stay
                    };
                }
            }
            Action::Close | Action::Answer => {
                self.closed_at = Some(event.at);
                if d.result.is_some() {
                    self.result.clone_from(&d.result);
                }
            }
            Action::Rework | Action::Merge | Action::IssueOrder => {
                self.linked = d.linked;
                if t.action != Action::IssueOrder {
                    self.closed_at = Some(event.at);
                }
            }
            Action::Escalate => {
                self.escalation = Some(Escalation {
                    reason: text(&d.reason),
                    by,
                    at: event.at,
                    decision: None,
                    owner: None,
                    due_at: None,
                    resolved_at: None,
                });
            }
            Action::DecideEscalation => {
                if let Some(e) = self.escalation.as_mut() {
                    e.decision.clone_from(&d.result);
                    e.owner.clone_from(&d.owner);
                    e.due_at = d.due_at;
                }
            }
            Action::ResolveEscalation => {
                if let Some(e) = self.escalation.as_mut() {
                    e.resolved_at = Some(event.at);
                }
            }
            Action::Acknowledge => {}
            Action::Inform => self.informed.extend(d.department),
            Action::Route | Action::Reroute => {
                self.department = d.department;
                self.assignee = None;
                if t.action == Action::Route {
                    let urgency = self.urgency.unwrap_or(Urgency::Normal);
                    self.completion_due = Some(at + policy.completion_due(self.kind, urgency));
                }
            }
            Action::Reply => {
                self.result.clone_from(&d.result);
                self.photos.extend(d.photos.iter().cloned());
                self.visit_due = Some(at + policy.return_visit_after);
            }
            Action::Reopen => {
                self.reopen_count += 1;
                self.satisfaction = None;
                self.visit_attempts = 0;
                self.not_reached = false;
                // The next visit falls due after the next reply.
                self.visit_due = None;
                self.assignee = None;
            }
            Action::FollowUp => {
                if let (Some(owner), Some(next_step), Some(due_at)) =
                    (d.owner.clone(), d.next_step.clone(), d.due_at)
                {
                    self.follow_up = Some(FollowUp {
                        owner,
                        next_step,
                        due_at,
                        by,
                    });
                }
            }
            Action::Check => self.checks.push(CheckMark {
                by,
                at: event.at,
                remarks: d.comments.clone().or_else(|| d.reason.clone()),
            }),
            Action::Override | Action::Dismiss => {
                let target = d
                    .target
                    .as_ref()
                    .and_then(|id| self.open_review_item(id))
                    .cloned();
                if let Some(item) = target {
                    for r in self
                        .review
                        .iter_mut()
                        .filter(|r| r.event.id == item.event.id)
                    {
                        r.resolution = Some(Resolution {
                            action: t.action,
                            by: by.clone(),
                            at: event.at,
                            reason: text(&d.reason),
                        });
                    }
                    if t.action == Action::Override
                        && let Some(forced) = self.transition_for(&item.event)
                    {
                        self.apply(&item.event, forced, at, policy);
                    }
                }
            }
        }
        if let To::State(next) = to {
            self.status = next;
        }
        if let Some(auto) = lifecycle::automatic_after(self.status, self.kind)
            && auto
                .guards
                .iter()
                .all(|g| *g != lifecycle::Guard::PaidOnly || self.paid)
        {
            let sys = Event {
                action: auto.action.as_str().to_owned(),
                ..event.clone()
            };
            self.apply(&sys, auto, at, policy);
        }
    }

    fn end_assignment(&mut self, event: &Event) {
        if let Some(current) = self
            .assignments
            .iter_mut()
            .rev()
            .find(|a| a.ended_at.is_none())
        {
            current.ended_at = Some(event.at);
            current.ended_by = event.action();
        }
    }

    /// Whether `user` was ever assigned to, or completed, this order.
    pub fn worked_on_by(&self, user: &UserId) -> bool {
        self.completed_by.as_ref() == Some(user)
            || self.assignments.iter().any(|a| &a.engineer == user)
    }

    /// Everyone ever assigned, in order, without repeats.
    pub fn engineers(&self) -> Vec<&UserId> {
        let mut seen = BTreeSet::new();
        self.assignments
            .iter()
            .map(|a| &a.engineer)
            .filter(|e| seen.insert(*e))
            .collect()
    }

    /// Money still owed on a paid order: the charge less collections and waivers.
    pub fn outstanding(&self) -> Fen {
        let paid: Fen = self.collections.iter().map(|c| c.amount).sum();
        let waived: Fen = self.waivers.iter().map(|w| w.amount).sum();
        self.charge
            .checked_sub(paid)
            .and_then(|r| r.checked_sub(waived))
            .unwrap_or(Fen::ZERO)
    }

    /// Money collected.
    pub fn income(&self) -> Fen {
        self.collections.iter().map(|c| c.amount).sum()
    }

    /// Materials cost.
    pub fn materials_cost(&self) -> Fen {
        self.materials.iter().filter_map(Material::cost).sum()
    }

    /// The unresolved review item about this event.
    pub fn open_review_item(&self, id: &EventId) -> Option<&ReviewItem> {
        self.review
            .iter()
            .find(|r| &r.event.id == id && r.resolution.is_none())
    }

    /// Whether an escalation is open.
    pub fn escalation_open(&self) -> bool {
        self.escalation
            .as_ref()
            .is_some_and(|e| e.resolved_at.is_none())
    }

    /// Whether this complaint was (or is) FOCUS at `when`.
    pub fn was_focus_by(&self, when: DateTime<Utc>) -> bool {
        self.focus_at.is_some_and(|f| f <= when)
    }

    /// The due time of the step the ticket is waiting on, if it has one.
    pub fn current_due(&self) -> Option<DateTime<Utc>> {
        match self.status {
            Status::Issued | Status::Assigned | Status::Recorded => self.response_due,
            Status::Accepted
            | Status::InProgress
            | Status::Unable
            | Status::Outsourced
            | Status::Routed
            | Status::InHand => self.completion_due,
            Status::Completed => self.return_due,
            _ => None,
        }
    }

    /// Whether the ticket waits for a return visit.
    pub fn awaits_return_visit(&self) -> bool {
        match self.status {
            Status::Returned => !self.paid,
            Status::Paid | Status::Waived | Status::Responded => true,
            _ => false,
        }
    }

    /// The flags at `now`.
    pub fn flags(&self, now: DateTime<Utc>) -> BTreeSet<Flag> {
        let mut flags = BTreeSet::new();
        let open = self.status.is_open();
        if open && self.current_due().is_some_and(|due| due < now) {
            flags.insert(Flag::Overdue);
        }
        if open && self.kind == Kind::Complaint && self.was_focus_by(now) {
            flags.insert(Flag::Focus);
        }
        if self.awaits_return_visit() && self.visit_due.is_some_and(|d| d <= now) {
            flags.insert(Flag::ReturnVisitDue);
        }
        if self.escalation_open() {
            flags.insert(Flag::Escalated);
        }
        flags
    }
}

#[cfg(test)]
mod tests;
