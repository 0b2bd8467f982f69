//! Who may sync what (DESIGN.md §3).
//!
//! Front desk, supervisors and managers: every ticket and household file.
//! Cashiers: paid tickets and private household files (not the public ones:
//! fees need the unit and the contacts, not access notes and equipment, and
//! the register's household index names the unit). Engineering
//! supervisors and dispatchers: every order. Engineers: tickets they are or
//! were assigned and the public files of those households. Department staff:
//! matters routed to their department. Everyone: tickets they created and
//! their own inbox. Anything else is `doc-unavailable`.
//!
//! Written once, here: the relay decides with it, and the device's tests
//! run against the same rules.

use crate::ids::UserId;
use crate::projection::Projection;
use crate::role::{Department, Principal, Role};
use crate::ticket::{Kind, Ticket};

/// What the relay knows about a document, for access decisions.
#[derive(Clone, Debug)]
pub enum DocClass {
    /// A ticket.
    Ticket(TicketMeta),
    /// A public household file.
    Household,
    /// A private household file.
    HouseholdPrivate,
    /// A user's inbox.
    Inbox(UserId),
}

/// The access-relevant facts of a ticket.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(
    missing_docs,
    reason = "the facts a ticket's access depends on, named as in the projection"
)]
pub struct TicketMeta {
    pub kind: Kind,
    pub paid: bool,
    pub department: Option<Department>,
    pub created_by: UserId,
    pub assignee: Option<UserId>,
    /// Everyone ever assigned.
    pub engineers: Vec<UserId>,
    /// Not closed, voided, cancelled, withdrawn or merged: someone must
    /// still act on it or follow it.
    pub open: bool,
}

impl TicketMeta {
    /// The facts of a ticket and its official projection.
    pub fn of(t: &Ticket, p: &Projection) -> Self {
        TicketMeta {
            kind: t.header.kind,
            paid: p.paid,
            department: p.department,
            created_by: t.header.reported.by.clone(),
            assignee: p.assignee.clone(),
            engineers: p.engineers().into_iter().cloned().collect(),
            open: !p.status.is_terminal(),
        }
    }
}

/// Whether deciding `p`'s access to a document of class `c` needs its
/// explicit grants (household files of an engineer's or patroller's tickets).
pub fn needs_grants(p: &Principal, c: &DocClass) -> bool {
    matches!(c, DocClass::Household) && matches!(p.role, Role::Engineer | Role::DepartmentStaff)
}

/// Whether `p` may sync a document of class `c`; `explicit` says whether the
/// `doc_access` table lists `p` for it (household files of their tickets).
pub fn may_sync(p: &Principal, c: &DocClass, explicit: bool) -> bool {
    let everything = matches!(p.role, Role::FrontDesk | Role::Supervisor | Role::Manager);
    match c {
        DocClass::Inbox(owner) => owner == &p.user,
        DocClass::HouseholdPrivate => everything || p.role == Role::Cashier,
        DocClass::Household => {
            everything
                || matches!(p.role, Role::EngineeringSupervisor | Role::Dispatcher)
                || explicit
        }
        DocClass::Ticket(t) => {
            everything
                || t.created_by == p.user
                || match p.role {
                    Role::Cashier => t.paid,
                    Role::EngineeringSupervisor | Role::Dispatcher => {
                        t.kind.is_order() || t.department == Some(Department::Engineering)
                    }
                    Role::Engineer => t.engineers.contains(&p.user),
                    Role::DepartmentStaff => t.department == Some(p.department),
                    _ => false,
                }
        }
    }
}

/// Whether `p` may create documents from a device (on-site tickets).
pub fn may_create(p: &Principal) -> bool {
    !matches!(p.role, Role::Cashier | Role::System)
}

/// Whose inbox lists a ticket: while it is open, its current assignee and
/// its creator by name, and the staff of the department a matter is routed
/// to; once it is closed, nobody's (inboxes list open work, so they stay
/// bounded as history grows; a closed ticket stays readable on demand by
/// those [`may_sync`] allows).
pub fn inbox_audience(t: &TicketMeta) -> (Vec<UserId>, Option<Department>) {
    if !t.open {
        return (Vec::new(), None);
    }
    let mut users: Vec<UserId> = t.assignee.iter().cloned().collect();
    if !users.contains(&t.created_by) {
        users.push(t.created_by.clone());
    }
    let dept = if t.kind.is_order() {
        None
    } else {
        t.department
    };
    (users, dept)
}
