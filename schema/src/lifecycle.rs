//! The ticket lifecycle of DOMAIN.md §3 (orders) and §4 (matters), as data.
//!
//! [`TABLE`] holds one [`Transition`] row per step: from which states, by which
//! roles, with which required data and guards, to which state, and whether the
//! step is judged by the relay's numbering authority. [`judge`](fn@crate::judge)
//! reads the rules from it and [`Projection`](crate::Projection) the targets;
//! nothing else in the crate decides who may do what.
//!
//! **Architecture Invariant:** adding a lifecycle step means adding a row here
//! (and, if it changes money, assignment or dates, an effect in `projection.rs`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::role::{Role, UnknownName};
use crate::ticket::{EventData, Kind, named_enum};

named_enum!(
    /// Where a ticket is in its lifecycle. Flags (overdue, focus, escalated)
    /// are not states; see [`Flag`](crate::Flag).
    Status, "status" {
        /// No creation event accepted yet.
        New = "NEW",
        /// Order: issued, waiting for dispatch.
        Issued = "ISSUED",
        /// Order: assigned to an engineer.
        Assigned = "ASSIGNED",
        /// Order: the engineer accepted it.
        Accepted = "ACCEPTED",
        /// Order: work under way.
        InProgress = "IN_PROGRESS",
        /// Order or matter: paused (awaiting parts, resident absent, …).
        OnHold = "ON_HOLD",
        /// Order: the work is done.
        Completed = "COMPLETED",
        /// Order: the engineer cannot fix it; the engineering supervisor decides.
        Unable = "UNABLE",
        /// Order: handed to an outside contractor.
        Outsourced = "OUTSOURCED",
        /// Order: the engineering copy is back at the front desk.
        Returned = "RETURNED",
        /// Paid order: waiting for the cashier.
        ChargePending = "CHARGE_PENDING",
        /// Paid order: collected.
        Paid = "PAID",
        /// Paid order: charge waived.
        Waived = "WAIVED",
        /// Order: the return visit is done.
        ReturnVisited = "RETURN_VISITED",
        /// Terminal: closed.
        Closed = "CLOSED",
        /// Terminal: a voided order; its number stays in the ledger.
        Voided = "VOIDED",
        /// Terminal: the resident withdrew the order.
        Cancelled = "CANCELLED",
        /// Matter: recorded.
        Recorded = "RECORDED",
        /// Matter (praise, suggestion): acknowledged.
        Acknowledged = "ACKNOWLEDGED",
        /// Matter: routed to a department.
        Routed = "ROUTED",
        /// Matter: the department is handling it.
        InHand = "IN_HAND",
        /// Matter: the department replied.
        Responded = "RESPONDED",
        /// Matter: the return visit is done.
        FollowedUp = "FOLLOWED_UP",
        /// Terminal: the resident withdrew the matter.
        Withdrawn = "WITHDRAWN",
        /// Terminal: a duplicate merged into another matter.
        Merged = "MERGED",
        /// Matter: a repair order was issued for it; closes with the order.
        WithOrder = "WITH_ORDER",
    }
);

impl Status {
    /// Terminal states accept only annotations.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Status::Closed
                | Status::Voided
                | Status::Cancelled
                | Status::Withdrawn
                | Status::Merged
        )
    }

    /// Whether the ticket is still open (created and not terminal).
    pub fn is_open(self) -> bool {
        self != Status::New && !self.is_terminal()
    }
}

named_enum!(
    /// Every lifecycle action an event may name.
    Action, "action" {
        /// Order created (开单).
        Issue = "issue",
        /// Matter created.
        Record = "record",
        /// Dispatch to an engineer (派工).
        Assign = "assign",
        /// An engineer takes an order (抢单).
        Grab = "grab",
        /// The engineer accepts (接单), or a department takes a matter in hand.
        Accept = "accept",
        /// The engineer hands the order back (退单).
        HandBack = "hand_back",
        /// Reassign to another engineer (转单).
        Transfer = "transfer",
        /// Arrive and start (到场/开工).
        Start = "start",
        /// Pause (暂停).
        Hold = "hold",
        /// Resume (恢复).
        Resume = "resume",
        /// Work done (完工).
        Complete = "complete",
        /// Cannot fix (无法修复).
        CannotFix = "cannot_fix",
        /// Engineering supervisor sends the work to a contractor.
        Outsource = "outsource",
        /// Engineering supervisor closes an unfixable order.
        CloseUnfixable = "close_unfixable",
        /// The engineering copy is returned (回单).
        Return = "return",
        /// A paid order goes to the cashier (automatic).
        Charge = "charge",
        /// The cashier collects (收费).
        Collect = "collect",
        /// The charge is waived (减免).
        Waive = "waive",
        /// Return visit (回访).
        ReturnVisit = "return_visit",
        /// Close (结案).
        Close = "close",
        /// Dissatisfied: closed with a linked rework order (返修).
        Rework = "rework",
        /// Void an issued order (作废).
        Void = "void",
        /// Cancel an order (撤单).
        Cancel = "cancel",
        /// Raise to the work meeting (升级/会议督办); a flag, not a state.
        Escalate = "escalate",
        /// The work meeting's decision, owner and deadline.
        DecideEscalation = "decide_escalation",
        /// The escalation is done.
        ResolveEscalation = "resolve_escalation",
        /// A need answered on the call.
        Answer = "answer",
        /// Praise or suggestion acknowledged.
        Acknowledge = "acknowledge",
        /// Pass an acknowledged matter to a department for information.
        Inform = "inform",
        /// Route to a department (转办).
        Route = "route",
        /// Route again: wrong department.
        Reroute = "reroute",
        /// The department replies (反馈).
        Reply = "reply",
        /// The resident withdraws the matter.
        Withdraw = "withdraw",
        /// Merge a duplicate into another matter.
        Merge = "merge",
        /// Reopen after a dissatisfied follow-up.
        Reopen = "reopen",
        /// A repair order was issued for this matter.
        IssueOrder = "issue_order",
        /// Name the follow-up owner and next step (for FOCUS complaints).
        FollowUp = "follow_up",
        /// The supervisor's daily check mark.
        Check = "check",
        /// Accept a conflicting or rejected event after review.
        Override = "override",
        /// Close a review item without applying the event.
        Dismiss = "dismiss",
    }
);

/// Where a transition leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    /// To this state.
    State(Status),
    /// The state does not change (annotations, flags, partial steps).
    Stay,
    /// A return visit: to this state once the resident is reached, or after the
    /// policy's number of unreachable attempts; otherwise the state stays.
    AfterVisit(Status),
}

/// Data an action requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// The engineer (assign, transfer, grab).
    Assignee,
    /// Why (hand back, hold, void, cancel, …).
    Reason,
    /// What was done or said.
    Result,
    /// Labour in minutes.
    LabourMin,
    /// Materials used (may be an empty list, but must be stated).
    Materials,
    /// Repair category.
    Category,
    /// Urgency.
    Urgency,
    /// Target department.
    Department,
    /// Amount in fen.
    AmountFen,
    /// Receipt number.
    Receipt,
    /// Payment method.
    Method,
    /// Reached or unreachable.
    ContactResult,
    /// The contractor's name.
    Contractor,
    /// The linked document (rework order, merge target, order issued).
    Linked,
    /// The event a review decision is about.
    Target,
    /// The responsible person.
    Owner,
    /// The next step.
    NextStep,
    /// A due date.
    DueAt,
    /// The engineering copy was received.
    CopyReceived,
}

impl Field {
    /// The field's key in the event's `data` map.
    pub fn key(self) -> &'static str {
        match self {
            Field::Assignee => "assignee",
            Field::Reason => "reason",
            Field::Result => "result",
            Field::LabourMin => "labour_min",
            Field::Materials => "materials",
            Field::Category => "category",
            Field::Urgency => "urgency",
            Field::Department => "department",
            Field::AmountFen => "amount_fen",
            Field::Receipt => "receipt",
            Field::Method => "method",
            Field::ContactResult => "contact_result",
            Field::Contractor => "contractor",
            Field::Linked => "linked",
            Field::Target => "target",
            Field::Owner => "owner",
            Field::NextStep => "next_step",
            Field::DueAt => "due_at",
            Field::CopyReceived => "copy_received",
        }
    }

    /// Whether `data` has this field (text fields must not be blank).
    pub fn is_present(self, data: &EventData) -> bool {
        let text = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.trim().is_empty());
        match self {
            Field::Assignee => data.assignee.is_some(),
            Field::Reason => text(&data.reason),
            Field::Result => text(&data.result),
            Field::LabourMin => data.labour_min.is_some(),
            Field::Materials => data.materials.is_some(),
            Field::Category => text(&data.category),
            Field::Urgency => data.urgency.is_some(),
            Field::Department => data.department.is_some(),
            Field::AmountFen => data.amount_fen.is_some(),
            Field::Receipt => text(&data.receipt),
            Field::Method => text(&data.method),
            Field::ContactResult => data.contact_result.is_some(),
            Field::Contractor => text(&data.contractor),
            Field::Linked => data.linked.is_some(),
            Field::Target => data.target.is_some(),
            Field::Owner => data.owner.is_some(),
            Field::NextStep => text(&data.next_step),
            Field::DueAt => data.due_at.is_some(),
            Field::CopyReceived => data.copy_received == Some(true),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A condition beyond role, state and data that a transition needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// The author is the ticket's current assignee.
    Assignee,
    /// An engineer must be the assignee; supervisors need not be.
    AssigneeIfEngineer,
    /// The `assignee` named is the author (grab).
    SelfAssign,
    /// The `assignee` named is not the current one.
    NewAssignee,
    /// The author belongs to the department the matter is routed to.
    RoutedDepartment,
    /// The `department` named is not the current one.
    NewDepartment,
    /// The author did not work on the order (return visit).
    NotTheEngineer,
    /// Only for paid orders.
    PaidOnly,
    /// Only for free orders.
    FreeOnly,
    /// A paid order's completion states the quoted amount.
    PaidNeedsQuote,
    /// The amount collected is exactly the amount outstanding.
    CollectsOutstanding,
    /// A supervisor may waive up to the policy's limit; above it, a manager.
    WaiveLimit,
    /// The front desk may void only its own order before any dispatch.
    VoidBeforeDispatch,
    /// With labour or materials recorded, only a supervisor may cancel.
    CancelWithWork,
    /// The return visit found the resident dissatisfied.
    Dissatisfied,
    /// A complaint that was ever FOCUS needs a supervisor to close.
    FocusNeedsSupervisor,
    /// Satisfaction is stated when the resident was reached (complaints, needs).
    SatisfactionWhenReached,
    /// The `target` is an open item in the ticket's review queue.
    OpenReviewItem,
    /// The target records field work ([`OVERRIDABLE`]) with valid data: an
    /// override may confirm work done, never money, creation or an ending.
    Overridable,
    /// No escalation is open yet.
    NotEscalated,
    /// An escalation is open.
    EscalationOpen,
}

/// One step of the lifecycle.
#[derive(Clone, Copy, Debug)]
pub struct Transition {
    /// The action.
    pub action: Action,
    /// Ticket kinds the row applies to.
    pub kinds: &'static [Kind],
    /// States the action may start from.
    pub from: &'static [Status],
    /// Where it leads.
    pub to: To,
    /// Roles that may perform it.
    pub roles: &'static [Role],
    /// Data that must be present.
    pub requires: &'static [Field],
    /// Other conditions.
    pub guards: &'static [Guard],
    /// Judged by the relay's numbering authority (◆ in DOMAIN.md): the step may
    /// be recorded offline but only counts once the relay has accepted it.
    pub authority: bool,
    /// Applied by the relay itself right after the step before it (SYS rows).
    pub automatic: bool,
}

impl Transition {
    /// Whether the step may be taken in a terminal state (annotations only).
    pub fn is_annotation(&self) -> bool {
        self.from.contains(&Status::Closed)
    }
}

use Action as A;
use Field as F;
use Guard as G;
use Role::{
    Cashier as CASH, DepartmentStaff as DH, Dispatcher as DSP, Engineer as ENG,
    EngineeringSupervisor as ES, FrontDesk as REC, Manager as MGR, Supervisor as CSS,
    System as SYS,
};
use Status as S;

const ORDERS: &[Kind] = &[Kind::Repair, Kind::PaidService];
const MATTERS: &[Kind] = &[Kind::Complaint, Kind::Praise, Kind::Suggestion, Kind::Need];
const ALL_KINDS: &[Kind] = Kind::ALL;
const ROUTABLE: &[Kind] = &[Kind::Complaint, Kind::Suggestion, Kind::Need];

/// Every state but `New`: annotations may be made on any created ticket.
const ANY: &[Status] = &[
    S::Issued,
    S::Assigned,
    S::Accepted,
    S::InProgress,
    S::OnHold,
    S::Completed,
    S::Unable,
    S::Outsourced,
    S::Returned,
    S::ChargePending,
    S::Paid,
    S::Waived,
    S::ReturnVisited,
    S::Closed,
    S::Voided,
    S::Cancelled,
    S::Recorded,
    S::Acknowledged,
    S::Routed,
    S::InHand,
    S::Responded,
    S::FollowedUp,
    S::Withdrawn,
    S::Merged,
    S::WithOrder,
];
/// Every open state.
const OPEN: &[Status] = &[
    S::Issued,
    S::Assigned,
    S::Accepted,
    S::InProgress,
    S::OnHold,
    S::Completed,
    S::Unable,
    S::Outsourced,
    S::Returned,
    S::ChargePending,
    S::Paid,
    S::Waived,
    S::ReturnVisited,
    S::Recorded,
    S::Acknowledged,
    S::Routed,
    S::InHand,
    S::Responded,
    S::FollowedUp,
    S::WithOrder,
];

#[allow(
    clippy::too_many_arguments,
    reason = "one argument per column keeps the table below readable as a table"
)]
const fn row(
    action: Action,
    kinds: &'static [Kind],
    from: &'static [Status],
    to: To,
    roles: &'static [Role],
    requires: &'static [Field],
    guards: &'static [Guard],
    authority: bool,
) -> Transition {
    Transition {
        action,
        kinds,
        from,
        to,
        roles,
        requires,
        guards,
        authority,
        automatic: false,
    }
}

/// The whole lifecycle. Row comments give DOMAIN.md's row numbers.
#[rustfmt::skip]
pub static TABLE: &[Transition] = &[
    // §3 Repair and paid-service orders.
    // 1: issue; on-site discoveries by engineers and department staff too.
    row(A::Issue, ORDERS, &[S::New], To::State(S::Issued), &[REC, CSS, DSP, ENG, ES, DH], &[F::Category, F::Urgency], &[], true),
    // 2: assign.
    row(A::Assign, ORDERS, &[S::Issued], To::State(S::Assigned), &[REC, DSP, ES, CSS], &[F::Assignee], &[], false),
    // 2b: grab; the first grab to reach the relay wins, a later one is a conflict.
    row(A::Grab, ORDERS, &[S::Issued], To::State(S::Assigned), &[ENG], &[F::Assignee], &[G::SelfAssign], true),
    // 3: accept.
    row(A::Accept, ORDERS, &[S::Assigned], To::State(S::Accepted), &[ENG], &[], &[G::Assignee], false),
    // 4: hand back.
    row(A::HandBack, ORDERS, &[S::Assigned, S::Accepted], To::State(S::Issued), &[ENG], &[F::Reason], &[G::Assignee], false),
    // 5 and 10: transfer / reassign, also after "cannot fix".
    row(A::Transfer, ORDERS, &[S::Assigned, S::Accepted, S::InProgress, S::OnHold, S::Unable], To::State(S::Assigned), &[ES, DSP], &[F::Assignee, F::Reason], &[G::NewAssignee], false),
    // 6: arrive / start.
    row(A::Start, ORDERS, &[S::Accepted], To::State(S::InProgress), &[ENG], &[], &[G::Assignee], false),
    // 7: hold and resume.
    row(A::Hold, ORDERS, &[S::InProgress], To::State(S::OnHold), &[ENG, ES], &[F::Reason], &[G::AssigneeIfEngineer], false),
    row(A::Resume, ORDERS, &[S::OnHold], To::State(S::InProgress), &[ENG, ES], &[], &[G::AssigneeIfEngineer], false),
    // 8: complete; and the contractor's result recorded by the engineering supervisor.
    row(A::Complete, ORDERS, &[S::InProgress], To::State(S::Completed), &[ENG], &[F::Result, F::LabourMin, F::Materials], &[G::Assignee, G::PaidNeedsQuote], false),
    row(A::Complete, ORDERS, &[S::Outsourced], To::State(S::Completed), &[ES], &[F::Result, F::Materials], &[G::PaidNeedsQuote], false),
    // 9: cannot fix.
    row(A::CannotFix, ORDERS, &[S::InProgress], To::State(S::Unable), &[ENG], &[F::Reason], &[G::Assignee], false),
    // 10: decide after "cannot fix".
    row(A::Outsource, ORDERS, &[S::Unable], To::State(S::Outsourced), &[ES, MGR], &[F::Contractor, F::Reason], &[], false),
    row(A::CloseUnfixable, ORDERS, &[S::Unable], To::State(S::Closed), &[ES, MGR], &[F::Reason], &[], false),
    // 11: return order.
    row(A::Return, ORDERS, &[S::Completed], To::State(S::Returned), &[REC, CSS], &[F::CopyReceived], &[], true),
    // 12: automatic, paid only.
    Transition { action: A::Charge, kinds: ORDERS, from: &[S::Returned], to: To::State(S::ChargePending), roles: &[SYS], requires: &[], guards: &[G::PaidOnly], authority: true, automatic: true },
    // 13 and 13b: collect, waive.
    row(A::Collect, ORDERS, &[S::ChargePending], To::State(S::Paid), &[CASH], &[F::AmountFen, F::Receipt, F::Method], &[G::CollectsOutstanding], true),
    row(A::Waive, ORDERS, &[S::ChargePending], To::State(S::Waived), &[CSS, MGR], &[F::Reason], &[G::WaiveLimit], true),
    // 14: return visit; a free order straight from RETURNED.
    row(A::ReturnVisit, &[Kind::Repair], &[S::Returned], To::AfterVisit(S::ReturnVisited), &[REC, CSS], &[F::ContactResult], &[G::FreeOnly, G::NotTheEngineer, G::SatisfactionWhenReached], true),
    row(A::ReturnVisit, ORDERS, &[S::Paid, S::Waived], To::AfterVisit(S::ReturnVisited), &[REC, CSS], &[F::ContactResult], &[G::NotTheEngineer, G::SatisfactionWhenReached], true),
    // 15: close.
    row(A::Close, ORDERS, &[S::ReturnVisited], To::State(S::Closed), &[REC, CSS, MGR], &[], &[], true),
    // 16: rework.
    row(A::Rework, ORDERS, &[S::ReturnVisited], To::State(S::Closed), &[REC, ES, CSS], &[F::Linked], &[G::Dissatisfied], true),
    // 17: void.
    row(A::Void, ORDERS, &[S::Issued], To::State(S::Voided), &[REC, CSS, MGR], &[F::Reason], &[G::VoidBeforeDispatch], true),
    // 18: cancel.
    row(A::Cancel, ORDERS, &[S::Assigned, S::Accepted, S::OnHold], To::State(S::Cancelled), &[REC, CSS, MGR], &[F::Reason], &[G::CancelWithWork], true),

    // §4 Matters: complaint, praise, suggestion, need.
    row(A::Record, MATTERS, &[S::New], To::State(S::Recorded), &[REC, CSS, ENG, ES, DH], &[F::Urgency], &[], true),
    row(A::Answer, &[Kind::Need], &[S::Recorded], To::State(S::Closed), &[REC, CSS], &[F::Result], &[], true),
    row(A::Acknowledge, &[Kind::Praise, Kind::Suggestion], &[S::Recorded], To::State(S::Acknowledged), &[REC, CSS], &[], &[], true),
    row(A::Inform, &[Kind::Praise, Kind::Suggestion], &[S::Acknowledged], To::Stay, &[REC, CSS], &[F::Department], &[], true),
    row(A::Close, &[Kind::Praise, Kind::Suggestion], &[S::Acknowledged], To::State(S::Closed), &[REC, CSS], &[], &[], true),
    row(A::Route, ROUTABLE, &[S::Recorded], To::State(S::Routed), &[REC, CSS], &[F::Department], &[], true),
    row(A::Reroute, ROUTABLE, &[S::Routed, S::InHand], To::State(S::Routed), &[REC, CSS], &[F::Department, F::Reason], &[G::NewDepartment], true),
    row(A::Accept, ROUTABLE, &[S::Routed], To::State(S::InHand), &[DH, ES], &[], &[G::RoutedDepartment], false),
    row(A::Hold, ROUTABLE, &[S::InHand], To::State(S::OnHold), &[DH, ES], &[F::Reason], &[G::RoutedDepartment], false),
    row(A::Resume, ROUTABLE, &[S::OnHold], To::State(S::InHand), &[DH, ES], &[], &[G::RoutedDepartment], false),
    row(A::Reply, ROUTABLE, &[S::InHand], To::State(S::Responded), &[DH, ES], &[F::Result], &[G::RoutedDepartment], false),
    row(A::ReturnVisit, ROUTABLE, &[S::Responded], To::AfterVisit(S::FollowedUp), &[REC, CSS], &[F::ContactResult], &[G::SatisfactionWhenReached], true),
    row(A::Close, ROUTABLE, &[S::FollowedUp], To::State(S::Closed), &[REC, CSS], &[], &[G::FocusNeedsSupervisor], true),
    row(A::Reopen, ROUTABLE, &[S::FollowedUp], To::State(S::Routed), &[REC, CSS], &[F::Reason], &[G::Dissatisfied], true),
    row(A::Withdraw, ROUTABLE, &[S::Recorded, S::Routed, S::InHand], To::State(S::Withdrawn), &[REC], &[F::Reason], &[], true),
    row(A::Withdraw, &[Kind::Praise], &[S::Recorded], To::State(S::Withdrawn), &[REC], &[F::Reason], &[], true),
    row(A::Merge, MATTERS, &[S::Recorded], To::State(S::Merged), &[REC, CSS], &[F::Linked], &[], true),
    row(A::IssueOrder, &[Kind::Need, Kind::Complaint], &[S::Recorded], To::State(S::WithOrder), &[REC, CSS], &[F::Linked], &[], true),
    row(A::Close, &[Kind::Need, Kind::Complaint], &[S::WithOrder], To::State(S::Closed), &[REC, CSS, SYS], &[], &[], true),

    // Every kind: escalation (a flag), follow-up, review decisions, check marks.
    row(A::Escalate, ALL_KINDS, OPEN, To::Stay, &[CSS, MGR, SYS], &[F::Reason], &[G::NotEscalated], true),
    row(A::DecideEscalation, ALL_KINDS, OPEN, To::Stay, &[CSS, MGR], &[F::Result, F::Owner, F::DueAt], &[G::EscalationOpen], true),
    row(A::ResolveEscalation, ALL_KINDS, ANY, To::Stay, &[CSS, MGR], &[F::Result], &[G::EscalationOpen], true),
    row(A::FollowUp, ALL_KINDS, OPEN, To::Stay, &[CSS, MGR], &[F::Owner, F::NextStep, F::DueAt], &[], false),
    row(A::Override, ALL_KINDS, OPEN, To::Stay, &[CSS, ES, MGR], &[F::Target, F::Reason], &[G::OpenReviewItem, G::Overridable], true),
    row(A::Dismiss, ALL_KINDS, ANY, To::Stay, &[CSS, ES, MGR], &[F::Target, F::Reason], &[G::OpenReviewItem], true),
    row(A::Check, ALL_KINDS, ANY, To::Stay, &[CSS, MGR], &[], &[], false),
];

/// The actions an override may apply: field work an engineer or department
/// recorded that the ticket moved past (DESIGN.md §5: nothing recorded is lost).
pub const OVERRIDABLE: &[Action] = &[
    Action::Grab,
    Action::Accept,
    Action::Start,
    Action::Hold,
    Action::Resume,
    Action::Complete,
    Action::CannotFix,
    Action::HandBack,
    Action::Reply,
];

/// The rows for this action and kind.
pub fn rows(action: Action, kind: Kind) -> impl Iterator<Item = &'static Transition> {
    TABLE
        .iter()
        .filter(move |t| t.action == action && t.kinds.contains(&kind))
}

/// The automatic step that follows a ticket reaching `status`, if any.
pub fn automatic_after(status: Status, kind: Kind) -> Option<&'static Transition> {
    TABLE
        .iter()
        .find(|t| t.automatic && t.kinds.contains(&kind) && t.from.contains(&status))
}

/// The creation action for a kind: `issue` for orders, `record` for matters.
pub fn creation_action(kind: Kind) -> Action {
    if kind.is_order() {
        Action::Issue
    } else {
        Action::Record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_row_and_every_row_is_reachable_by_someone() {
        for &action in Action::ALL {
            assert!(
                TABLE.iter().any(|t| t.action == action),
                "{action} has no row"
            );
        }
        for t in TABLE {
            assert!(
                !t.roles.is_empty() && !t.kinds.is_empty() && !t.from.is_empty(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn rows_for_one_action_and_kind_never_share_a_from_state() {
        for &action in Action::ALL {
            for &kind in Kind::ALL {
                let mut seen = Vec::new();
                for t in rows(action, kind) {
                    for s in t.from {
                        assert!(!seen.contains(s), "{action} {kind} from {s} is ambiguous");
                        seen.push(*s);
                    }
                }
            }
        }
    }

    #[test]
    fn terminal_states_allow_only_annotations() {
        for t in TABLE {
            if t.from.iter().any(|s| s.is_terminal()) {
                assert_eq!(t.to, To::Stay, "{:?} leaves a terminal state", t.action);
                assert!(t.is_annotation());
            }
        }
    }
}
