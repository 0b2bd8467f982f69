//! The rule check: does this event, by this principal, stand?
//!
//! DESIGN.md §5: an event is judged twice, against the projection its author
//! saw (the document at the change's dependencies plus the author's own
//! pending events) and against the projection now. Not allowed in what the
//! author saw: `rejected`. Allowed then but not now: `conflict`. Allowed in
//! both: `accepted`. Every outcome names the rule and gives a reason a person
//! can read.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::lifecycle::{self, Action, Field, Guard, Transition};
use crate::policy::Policy;
use crate::projection::Projection;
use crate::role::{Principal, Role};
use crate::ticket::{ContactResult, Event, EventData, Kind, Satisfaction};

/// What the relay decided about an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Allowed when made and still valid: it counts.
    Accepted,
    /// Allowed when made, but the ticket has moved on: review queue.
    Conflict,
    /// Not allowed even in the state its author saw: review queue.
    Rejected,
}

impl Outcome {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Conflict => "conflict",
            Outcome::Rejected => "rejected",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Outcome {
    type Err = crate::role::UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "accepted" => Ok(Outcome::Accepted),
            "conflict" => Ok(Outcome::Conflict),
            "rejected" => Ok(Outcome::Rejected),
            _ => Err(crate::role::UnknownName::new("outcome", s)),
        }
    }
}

/// The rule behind a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The transition table allows it.
    Allowed,
    /// The event names an action this version does not know.
    UnknownAction,
    /// The event's `by` is not the principal acting.
    AuthorMismatch,
    /// The action does not exist for this kind of ticket.
    NotForKind,
    /// The author's role may not take this action (here).
    RoleNotAllowed,
    /// The ticket is closed, voided, cancelled, withdrawn or merged.
    TerminalState,
    /// The action does not start from the ticket's state.
    WrongState,
    /// Required data is missing.
    MissingData(Field),
    /// Data is present but out of range or malformed.
    InvalidData(Field),
    /// A guard does not hold.
    Guard(Guard),
}

impl Rule {
    /// The rule's stable name, as stored in verdicts and shown in the review queue.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Allowed => "allowed",
            Rule::UnknownAction => "unknown_action",
            Rule::AuthorMismatch => "author_mismatch",
            Rule::NotForKind => "not_for_kind",
            Rule::RoleNotAllowed => "role_not_allowed",
            Rule::TerminalState => "terminal_state",
            Rule::WrongState => "wrong_state",
            Rule::MissingData(_) => "missing_data",
            Rule::InvalidData(_) => "invalid_data",
            Rule::Guard(g) => match g {
                Guard::Assignee | Guard::AssigneeIfEngineer => "not_assignee",
                Guard::SelfAssign => "grab_for_someone_else",
                Guard::NewAssignee => "same_assignee",
                Guard::RoutedDepartment => "wrong_department",
                Guard::NewDepartment => "same_department",
                Guard::NotTheEngineer => "engineer_cannot_visit",
                Guard::PaidOnly => "paid_only",
                Guard::FreeOnly => "free_only",
                Guard::PaidNeedsQuote => "quote_required",
                Guard::CollectsOutstanding => "amount_mismatch",
                Guard::WaiveLimit => "waive_limit",
                Guard::VoidBeforeDispatch => "void_after_dispatch",
                Guard::CancelWithWork => "cancel_with_work",
                Guard::Dissatisfied => "not_dissatisfied",
                Guard::FocusNeedsSupervisor => "focus_needs_supervisor",
                Guard::SatisfactionWhenReached => "satisfaction_required",
                Guard::OpenReviewItem => "no_open_review_item",
                Guard::Overridable => "not_overridable",
                Guard::NotEscalated => "already_escalated",
                Guard::EscalationOpen => "no_open_escalation",
            },
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rule that does not hold, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Which rule.
    pub rule: Rule,
    /// A sentence for people.
    pub reason: String,
}

/// The judgement of one event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Accepted, conflict or rejected.
    pub outcome: Outcome,
    /// The rule that decided.
    pub rule: Rule,
    /// A sentence for people.
    pub reason: String,
}

/// Judges `event` by `principal` with the default [`Policy`].
///
/// `seen` is the projection its author saw (see
/// [`Projection::seen_before`]); `now` is the official projection at the
/// moment of judging.
pub fn judge(principal: &Principal, seen: &Projection, now: &Projection, event: &Event) -> Verdict {
    Policy::default().judge(principal, seen, now, event)
}

impl Policy {
    /// Judges `event`; see [`judge`].
    pub fn judge(
        &self,
        principal: &Principal,
        seen: &Projection,
        now: &Projection,
        event: &Event,
    ) -> Verdict {
        match self.check(principal, seen, event) {
            Err(f) => Verdict {
                outcome: Outcome::Rejected,
                rule: f.rule,
                reason: f.reason,
            },
            Ok(_) => match self.check(principal, now, event) {
                Err(f) => Verdict {
                    outcome: Outcome::Conflict,
                    rule: f.rule,
                    reason: format!(
                        "allowed when it was made, but the ticket has moved on: {}",
                        f.reason
                    ),
                },
                Ok(t) => Verdict {
                    outcome: Outcome::Accepted,
                    rule: Rule::Allowed,
                    reason: format!(
                        "{} ({}) may {} this {} (it was {})",
                        principal.user, principal.role, t.action, now.kind, now.status
                    ),
                },
            },
        }
    }

    /// Whether `principal` may take `event` on a ticket in state `p`; the
    /// transition it takes if so. The device calls this before it makes a
    /// change, so a person is told why an action is refused before anything
    /// is written.
    ///
    /// # Errors
    /// The first rule that does not hold, with a reason.
    pub fn check(
        &self,
        principal: &Principal,
        p: &Projection,
        event: &Event,
    ) -> Result<&'static Transition, Failure> {
        let fail = |rule: Rule, reason: String| Err(Failure { rule, reason });
        let Some(action) = event.action() else {
            return fail(
                Rule::UnknownAction,
                format!("{:?} is not a known action", event.action),
            );
        };
        if event.by != principal.user {
            return fail(
                Rule::AuthorMismatch,
                format!(
                    "the event says it is by {} but {} made it",
                    event.by, principal.user
                ),
            );
        }
        let kind = p.kind;
        let rows: Vec<&'static Transition> = lifecycle::rows(action, kind).collect();
        if rows.is_empty() {
            return fail(
                Rule::NotForKind,
                format!("a {kind} ticket has no {action} step"),
            );
        }
        let who = || format!("{} ({})", principal.user, principal.role);
        if !rows.iter().any(|t| t.roles.contains(&principal.role)) {
            return fail(
                Rule::RoleNotAllowed,
                format!("{} may not {action} a {kind}", who()),
            );
        }
        if p.status.is_terminal() && !rows.iter().any(|t| t.from.contains(&p.status)) {
            return fail(
                Rule::TerminalState,
                format!(
                    "the ticket is {}: it accepts only notes and check marks",
                    p.status
                ),
            );
        }
        let Some(t) = rows.iter().copied().find(|t| t.from.contains(&p.status)) else {
            return fail(
                Rule::WrongState,
                format!("a {kind} that is {} cannot {action}", p.status),
            );
        };
        if !t.roles.contains(&principal.role) {
            return fail(
                Rule::RoleNotAllowed,
                format!("{} may not {action} a {kind} that is {}", who(), p.status),
            );
        }
        for &field in t.requires {
            if !field.is_present(&event.data) {
                return fail(Rule::MissingData(field), format!("{action} needs {field}"));
            }
        }
        if let Some((field, why)) = invalid_data(self, &event.data) {
            return fail(Rule::InvalidData(field), format!("{field} {why}"));
        }
        for &guard in t.guards {
            if let Some(reason) = self.guard_fails(guard, principal, p, event) {
                return fail(Rule::Guard(guard), reason);
            }
        }
        Ok(t)
    }

    fn guard_fails(
        &self,
        guard: Guard,
        principal: &Principal,
        p: &Projection,
        event: &Event,
    ) -> Option<String> {
        let me = &principal.user;
        let data = &event.data;
        let assignee = || {
            p.assignee
                .as_ref()
                .map_or("nobody".to_owned(), ToString::to_string)
        };
        let holds = match guard {
            Guard::Assignee => p.assignee.as_ref() == Some(me),
            Guard::AssigneeIfEngineer => {
                principal.role != Role::Engineer || p.assignee.as_ref() == Some(me)
            }
            Guard::SelfAssign => data.assignee.as_ref() == Some(me),
            Guard::NewAssignee => data.assignee.is_some() && data.assignee != p.assignee,
            Guard::RoutedDepartment => p.department == Some(principal.department),
            Guard::NewDepartment => data.department.is_some() && data.department != p.department,
            Guard::NotTheEngineer => !p.worked_on_by(me),
            Guard::PaidOnly => p.paid,
            Guard::FreeOnly => !p.paid,
            Guard::PaidNeedsQuote => !p.paid || data.quote_fen.is_some(),
            Guard::CollectsOutstanding => data.amount_fen == Some(p.outstanding()),
            Guard::WaiveLimit => {
                principal.role == Role::Manager || p.outstanding() <= self.waive_limit_supervisor
            }
            Guard::VoidBeforeDispatch => {
                principal.role != Role::FrontDesk
                    || (p.created_by.as_ref() == Some(me) && p.assignments.is_empty())
            }
            Guard::CancelWithWork => {
                principal.role != Role::FrontDesk || (p.labour_min == 0 && p.materials.is_empty())
            }
            Guard::Dissatisfied => p.satisfaction == Some(Satisfaction::Dissatisfied),
            Guard::FocusNeedsSupervisor => {
                principal.role != Role::FrontDesk || !p.was_focus_by(event.at)
            }
            Guard::SatisfactionWhenReached => {
                data.contact_result != Some(ContactResult::Reached)
                    || p.kind == Kind::Suggestion
                    || data.satisfaction.is_some()
            }
            Guard::OpenReviewItem => data
                .target
                .as_ref()
                .is_some_and(|t| p.open_review_item(t).is_some()),
            Guard::Overridable => data
                .target
                .as_ref()
                .and_then(|t| p.open_review_item(t))
                .is_some_and(|item| {
                    item.event
                        .action()
                        .is_some_and(|a| lifecycle::OVERRIDABLE.contains(&a))
                        && invalid_data(self, &item.event.data).is_none()
                }),
            Guard::NotEscalated => !p.escalation_open(),
            Guard::EscalationOpen => p.escalation_open(),
        };
        if holds {
            return None;
        }
        Some(match guard {
            Guard::Assignee | Guard::AssigneeIfEngineer => {
                format!("{me} is not the assignee of this ticket (assigned to {})", assignee())
            }
            Guard::SelfAssign => format!("{me} may grab an order only for themselves"),
            Guard::NewAssignee => format!("the order is already assigned to {}", assignee()),
            Guard::RoutedDepartment => format!(
                "{me} is in {}, the matter is routed to {}",
                principal.department,
                p.department.map_or("no department".to_owned(), |d| d.to_string())
            ),
            Guard::NewDepartment => "the matter is already routed there".to_owned(),
            Guard::NotTheEngineer => format!("{me} worked on this order and may not do its return visit"),
            Guard::PaidOnly => "only paid orders go to the cashier".to_owned(),
            Guard::FreeOnly => "a paid order needs its charge settled before the return visit".to_owned(),
            Guard::PaidNeedsQuote => "a paid order's completion must state the quoted amount (quote_fen)".to_owned(),
            Guard::CollectsOutstanding => format!(
                "the amount collected ({}) must equal the amount outstanding ({})",
                data.amount_fen.map_or("none".to_owned(), |a| a.to_string()),
                p.outstanding()
            ),
            Guard::WaiveLimit => format!(
                "waiving {} is above a supervisor's limit of {}: a manager must approve",
                p.outstanding(),
                self.waive_limit_supervisor
            ),
            Guard::VoidBeforeDispatch => {
                "the front desk may void only its own order before dispatch; after that a supervisor voids".to_owned()
            }
            Guard::CancelWithWork => "labour or materials are recorded: a supervisor must cancel".to_owned(),
            Guard::Dissatisfied => "only a dissatisfied return visit leads to rework or reopening".to_owned(),
            Guard::FocusNeedsSupervisor => {
                "this complaint was open a week or more (FOCUS): a supervisor must confirm the close".to_owned()
            }
            Guard::SatisfactionWhenReached => "a reached resident's satisfaction must be recorded".to_owned(),
            Guard::OpenReviewItem => "the target is not an open item of this ticket's review queue".to_owned(),
            Guard::Overridable => {
                "only recorded field work can be overridden; money, creation and endings cannot".to_owned()
            }
            Guard::NotEscalated => "the ticket is already escalated".to_owned(),
            Guard::EscalationOpen => "the ticket has no open escalation".to_owned(),
        })
    }
}

/// The longest text a field may hold.
const MAX_TEXT: usize = 10_000;

/// Range and format checks on whatever data an event carries.
fn invalid_data(policy: &Policy, d: &EventData) -> Option<(Field, &'static str)> {
    if let Some(m) = d.labour_min
        && !(0..=policy.max_labour_min).contains(&m)
    {
        return Some((Field::LabourMin, "must be between 0 and a week of minutes"));
    }
    if let Some(materials) = &d.materials {
        if materials.len() > 200 {
            return Some((Field::Materials, "lists more than 200 items"));
        }
        for m in materials {
            if m.name.trim().is_empty() || m.name.len() > 200 {
                return Some((Field::Materials, "has an item without a name"));
            }
            if m.qty <= 0 || m.qty > 1_000_000 || m.unit_fen.is_negative() || m.cost().is_none() {
                return Some((Field::Materials, "has a quantity or unit cost out of range"));
            }
        }
    }
    if d.method
        .as_deref()
        .is_some_and(|m| !crate::ticket::PAYMENT_METHODS.contains(&m))
    {
        return Some((
            Field::Method,
            "must be cash, wechat, alipay, bank_transfer or card",
        ));
    }
    if d.amount_fen.is_some_and(|a| a.is_negative()) {
        return Some((Field::AmountFen, "must not be negative"));
    }
    if d.quote_fen.is_some_and(|a| a.is_negative()) {
        return Some((Field::AmountFen, "(the quote) must not be negative"));
    }
    let texts = [
        (Field::Reason, &d.reason),
        (Field::Result, &d.result),
        (Field::Category, &d.category),
        (Field::Receipt, &d.receipt),
        (Field::Method, &d.method),
        (Field::Contractor, &d.contractor),
        (Field::NextStep, &d.next_step),
    ];
    if texts
        .iter()
        .any(|(_, t)| t.as_ref().is_some_and(|t| t.len() > MAX_TEXT))
        || [&d.appointment, &d.comments, &d.witness, &d.signature]
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| t.len() > MAX_TEXT))
    {
        return Some((Field::Result, "is longer than 10,000 bytes"));
    }
    if d.photos.len() > 50 || d.photos.iter().any(|h| !is_sha256_hex(h)) {
        return Some((
            Field::Result,
            "photos must be lowercase hex SHA-256 digests",
        ));
    }
    None
}

/// Whether `s` is 64 lowercase hex digits.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether this action, once accepted, is the ticket's creation.
pub fn is_creation(action: Action) -> bool {
    matches!(action, Action::Issue | Action::Record)
}

#[cfg(test)]
mod tests;
