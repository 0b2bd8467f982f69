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

use schema::{Department, Kind, Principal, Projection, Role, UserId};

use crate::store::records::TicketRow;

/// What the relay knows about a document, for access decisions.
#[derive(Clone, Debug)]
pub(crate) enum DocClass {
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
pub(crate) struct TicketMeta {
    pub(crate) kind: Kind,
    pub(crate) paid: bool,
    pub(crate) department: Option<Department>,
    pub(crate) created_by: UserId,
    pub(crate) assignee: Option<UserId>,
    /// Everyone ever assigned.
    pub(crate) engineers: Vec<UserId>,
}

impl TicketMeta {
    /// The facts as the ticket register holds them.
    pub(crate) fn of_row(row: &TicketRow) -> Self {
        let projection: Option<Projection> = serde_json::from_value(row.projection.clone()).ok();
        TicketMeta {
            kind: row.kind.parse().unwrap_or(Kind::Repair),
            paid: row.paid,
            department: row.department.as_deref().and_then(|d| d.parse().ok()),
            created_by: row
                .created_by
                .parse()
                .unwrap_or_else(|_| UserId::new("unknown").expect("a valid user id")),
            assignee: row.assignee.as_deref().and_then(|a| a.parse().ok()),
            engineers: projection
                .map(|p| p.engineers().into_iter().cloned().collect())
                .unwrap_or_default(),
        }
    }
}

/// Whether `p` may sync a document of class `c`; `explicit` says whether the
/// `doc_access` table lists `p` for it (household files of their tickets).
pub(crate) fn may_sync(p: &Principal, c: &DocClass, explicit: bool) -> bool {
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
pub(crate) fn may_create(p: &Principal) -> bool {
    !matches!(p.role, Role::Cashier | Role::System)
}

/// Whose inbox lists a ticket: its current assignee and its creator by name,
/// and the staff of the department a matter is routed to.
pub(crate) fn inbox_audience(t: &TicketMeta) -> (Vec<UserId>, Option<Department>) {
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
