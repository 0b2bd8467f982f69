//! The ticket document (DESIGN.md §2): one Automerge document per resident contact.
//!
//! Status, assignee and money are never stored as fields: they are the
//! [`Projection`](crate::Projection) of the accepted [`Event`]s.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{DeviceId, DocUrl, EventId, UserId};
use crate::judge::Outcome;
use crate::lifecycle::Action;
use crate::money::Fen;
use crate::role::{Department, UnknownName};
use crate::serial::Serial;

/// The `schema` version this crate writes into every document.
pub const SCHEMA_VERSION: i64 = 1;

macro_rules! named_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The wire and storage name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownName::new($what, s)),
                }
            }
        }
    };
}
pub(crate) use named_enum;

named_enum!(
    /// What kind of contact a ticket records.
    Kind, "ticket kind" {
        /// A repair request; becomes a numbered repair order.
        Repair = "repair",
        /// A complaint.
        Complaint = "complaint",
        /// Praise.
        Praise = "praise",
        /// A suggestion.
        Suggestion = "suggestion",
        /// A need or consultation.
        Need = "need",
        /// A paid special service (indoor cleaning, water delivery); a numbered order.
        PaidService = "paid_service",
    }
);

impl Kind {
    /// Whether tickets of this kind are numbered orders (repair, paid service).
    pub fn is_order(self) -> bool {
        matches!(self, Kind::Repair | Kind::PaidService)
    }
}

named_enum!(
    /// How the contact reached the department.
    Channel, "channel" {
        /// At the front desk in person.
        WalkIn = "walk_in",
        /// By telephone.
        Phone = "phone",
        /// Discovered on site by staff.
        OnSite = "on_site",
        /// Through a resident app.
        App = "app",
    }
);

named_enum!(
    /// How urgent the matter is; sets the due times (see [`Policy`](crate::Policy)).
    Urgency, "urgency" {
        /// Safety or service outage: respond at once.
        Urgent = "urgent",
        /// The usual case.
        Normal = "normal",
        /// Can wait.
        Low = "low",
    }
);

named_enum!(
    /// Whether a return-visit call reached the resident.
    ContactResult, "contact result" {
        /// The resident was reached.
        Reached = "reached",
        /// Nobody answered; two attempts make the visit "not reached".
        Unreachable = "unreachable",
    }
);

named_enum!(
    /// The resident's satisfaction at the return visit (满意 / 基本满意 / 不满意).
    Satisfaction, "satisfaction" {
        /// 满意.
        Satisfied = "satisfied",
        /// 基本满意.
        Basic = "basically_satisfied",
        /// 不满意: opens a rework or a reopen.
        Dissatisfied = "dissatisfied",
    }
);

/// Who recorded the contact, how it came in, and when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reported {
    /// The clerk (or the engineer, for an on-site discovery).
    pub by: UserId,
    /// How the contact came in.
    pub channel: Channel,
    /// When it was received (device time).
    pub at: DateTime<Utc>,
}

/// Who called (or walked in), as the clerk recorded it, and whether the
/// clerk read the details back to them (the department's rules ask for it).
///
/// In a ticket document `phone` is always masked ([`mask_phone`]): a ticket
/// syncs whole to engineers and department staff, and residents' numbers
/// belong in the private household file (DESIGN.md §3). The relay keeps the
/// full number apart and shows it only to the roles entitled to private
/// files and to the ticket's assignee.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The caller's name as given.
    pub name: String,
    /// The caller's number (masked in a document).
    pub phone: String,
    /// The clerk read the details back and the caller confirmed them.
    pub read_back: bool,
}

/// Payment methods a collection may name (no payment gateway: the cashier
/// records how the money came).
pub const PAYMENT_METHODS: &[&str] = &["cash", "wechat", "alipay", "bank_transfer", "card"];

/// `phone` with every digit hidden but the last four, and the first three
/// as well when there are eleven or more (a mobile number:
/// `138****1234`). Separators stay; a `*` counts as a hidden digit, so
/// masking a masked number changes nothing.
pub fn mask_phone(phone: &str) -> String {
    let slots = phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '*')
        .count();
    let keep_head = if slots >= 11 { 3 } else { 0 };
    let mut i = 0;
    phone
        .chars()
        .map(|c| {
            if !(c.is_ascii_digit() || c == '*') {
                return c;
            }
            let pos = i;
            i += 1;
            if pos < keep_head || pos + 4 >= slots {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Whether `phone` shows no more than [`mask_phone`] would.
pub fn is_masked(phone: &str) -> bool {
    mask_phone(phone) == phone
}

/// The fields written when a ticket is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketHeader {
    /// What kind of contact.
    pub kind: Kind,
    /// The household file ("one household, one file"), or none for a public area.
    pub household: Option<DocUrl>,
    /// Where: unit, or the public area.
    pub location: String,
    /// A one-line summary.
    pub title: String,
    /// What the resident said.
    pub description: String,
    /// Who recorded it, how and when.
    pub reported: Reported,
    /// The caller, when the clerk recorded one.
    #[serde(default)]
    pub caller: Option<Caller>,
}

/// A material used on a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Material {
    /// The item.
    pub name: String,
    /// How many.
    pub qty: i64,
    /// Cost of one, in fen.
    pub unit_fen: Fen,
}

impl Material {
    /// `qty × unit_fen`, or `None` on overflow.
    pub fn cost(&self) -> Option<Fen> {
        self.unit_fen.checked_mul(self.qty)
    }
}

/// The data an event carries. Which fields an action requires is in the
/// transition table ([`crate::lifecycle::Field`]); the rest are optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[allow(
    missing_docs,
    reason = "each field is documented by its Field in lifecycle.rs"
)]
pub struct EventData {
    pub assignee: Option<UserId>,
    pub appointment: Option<String>,
    pub reason: Option<String>,
    pub result: Option<String>,
    pub labour_min: Option<i64>,
    pub materials: Option<Vec<Material>>,
    pub photos: Vec<String>,
    pub signature: Option<String>,
    pub resident_absent: Option<bool>,
    pub witness: Option<String>,
    pub quote_fen: Option<Fen>,
    pub amount_fen: Option<Fen>,
    pub receipt: Option<String>,
    pub method: Option<String>,
    pub contact_result: Option<ContactResult>,
    pub satisfaction: Option<Satisfaction>,
    pub comments: Option<String>,
    pub department: Option<Department>,
    pub category: Option<String>,
    pub urgency: Option<Urgency>,
    pub paid: Option<bool>,
    pub contractor: Option<String>,
    pub linked: Option<DocUrl>,
    pub target: Option<EventId>,
    pub owner: Option<UserId>,
    pub next_step: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub copy_received: Option<bool>,
}

/// One lifecycle step, appended to the ticket's `events` list and never changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The command id, made on the device.
    pub id: EventId,
    /// The action's name as written; see [`Event::action`].
    pub action: String,
    /// Who the event says did it (the relay checks this against the actor binding).
    pub by: UserId,
    /// The device the event says it was made on.
    pub device: DeviceId,
    /// When it happened, by the device's clock.
    pub at: DateTime<Utc>,
    /// The action's data.
    pub data: EventData,
}

impl Event {
    /// The action, if it is one this version knows.
    pub fn action(&self) -> Option<Action> {
        self.action.parse().ok()
    }
}

/// A free-text note; append-only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    /// Command id.
    pub id: EventId,
    /// Author.
    pub by: UserId,
    /// Device it was written on.
    pub device: DeviceId,
    /// Device time.
    pub at: DateTime<Utc>,
    /// The note.
    pub text: String,
}

/// A photo or file; the bytes live in the blob store, addressed by SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Command id: unique across the ticket's events, notes and attachments.
    pub id: EventId,
    /// Lowercase hex SHA-256 of the bytes.
    pub sha256: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// Caption.
    pub caption: String,
    /// Who attached it.
    pub by: UserId,
    /// Device it came from.
    pub device: DeviceId,
    /// Device time.
    pub at: DateTime<Utc>,
}

/// The relay's judgement of one event, written under `server.verdicts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRecord {
    /// Position in the ticket's verdict order, from 1.
    pub seq: u64,
    /// Accepted, conflict or rejected.
    pub outcome: Outcome,
    /// The rule's name.
    pub rule: String,
    /// A sentence for people.
    pub reason: String,
    /// When the relay judged it (relay time).
    pub at: DateTime<Utc>,
}

/// The part of a ticket only the relay's own actor writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSection {
    /// The serial number, for numbered orders once accepted.
    pub serial: Option<Serial>,
    /// When the relay first received the ticket (relay time).
    pub received_at: Option<DateTime<Utc>>,
    /// Verdicts by event id.
    pub verdicts: BTreeMap<EventId, VerdictRecord>,
}

/// A whole ticket document, read at some heads.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    /// The creation fields.
    pub header: TicketHeader,
    /// Every event, in document order.
    pub events: Vec<Event>,
    /// Notes.
    pub notes: Vec<Note>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// What the relay wrote.
    pub server: ServerSection,
}

impl Ticket {
    /// A new ticket with no events.
    pub fn new(header: TicketHeader) -> Self {
        Self {
            header,
            events: Vec::new(),
            notes: Vec::new(),
            attachments: Vec::new(),
            server: ServerSection::default(),
        }
    }

    /// The events with a verdict, in verdict order.
    pub fn judged(&self) -> Vec<(&Event, &VerdictRecord)> {
        let mut judged: Vec<_> = self
            .events
            .iter()
            .filter_map(|e| self.server.verdicts.get(&e.id).map(|v| (e, v)))
            .collect();
        judged.sort_by_key(|(_, v)| v.seq);
        judged
    }

    /// The events no verdict has reached yet, in document order: pending.
    pub fn pending(&self) -> impl Iterator<Item = &Event> {
        self.events
            .iter()
            .filter(|e| !self.server.verdicts.contains_key(&e.id))
    }

    /// The next verdict sequence number.
    pub fn next_seq(&self) -> u64 {
        self.server
            .verdicts
            .values()
            .map(|v| v.seq)
            .max()
            .unwrap_or(0)
            + 1
    }

    /// The event with this id.
    pub fn event(&self, id: &EventId) -> Option<&Event> {
        self.events.iter().find(|e| &e.id == id)
    }
}
