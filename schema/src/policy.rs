//! Policy parameters (DOMAIN.md §5): the settings the rules and the projection
//! read. They are data with defaults, passed in, never global.

use chrono::Duration;

use crate::money::Fen;
use crate::ticket::{Kind, Urgency};

/// Due times and thresholds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// A supervisor may waive up to this much; above it, a manager.
    pub waive_limit_supervisor: Fen,
    /// How long after completion the engineering copy must be back (回单).
    pub return_due_after: Duration,
    /// How long after the work is done (returned, paid, waived, replied)
    /// the return visit falls due; a visit made before then is early (及时).
    pub return_visit_after: Duration,
    /// A visit made more than this after it fell due is late.
    pub visit_late_after: Duration,
    /// Unreachable attempts after which a return visit counts as "not reached".
    pub visit_attempts: u32,
    /// How long a complaint may stay open before it is FOCUS (重点跟进).
    pub focus_after: Duration,
    /// Longest labour one event may record (a typo guard).
    pub max_labour_min: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            waive_limit_supervisor: Fen::new(50_000),
            return_due_after: Duration::hours(24),
            return_visit_after: Duration::hours(24),
            visit_late_after: Duration::hours(24),
            visit_attempts: 2,
            focus_after: Duration::days(7),
            max_labour_min: 7 * 24 * 60,
        }
    }
}

impl Policy {
    /// How long until a first response is due.
    pub fn response_due(&self, kind: Kind, urgency: Urgency) -> Duration {
        match (kind.is_order(), urgency) {
            (_, Urgency::Urgent) => Duration::minutes(30),
            (true, Urgency::Normal) => Duration::hours(2),
            (false, Urgency::Normal) => Duration::hours(4),
            (_, Urgency::Low) => Duration::hours(24),
        }
    }

    /// How long until the work or matter should be finished.
    pub fn completion_due(&self, kind: Kind, urgency: Urgency) -> Duration {
        match (kind, urgency) {
            (_, Urgency::Urgent) => Duration::hours(4),
            (Kind::Repair | Kind::PaidService, Urgency::Normal) => Duration::hours(48),
            (Kind::Complaint, Urgency::Normal) => Duration::days(3),
            (_, Urgency::Normal) => Duration::days(5),
            (_, Urgency::Low) => Duration::days(7),
        }
    }
}
