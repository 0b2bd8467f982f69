//! What the relay records about what it received and decided: one entry per
//! change (the sync log), per judged event (the verdict ledger) and per item
//! for supervisors (the review queue). Judging produces them; the store
//! writes them in the commit that holds the change.

use std::fmt;
use std::str::FromStr;

use automerge::{ActorId, ChangeHash};
use chrono::{DateTime, Utc};
use schema::{Action, DeviceId, DocId, EventId, Outcome, UserId};

/// An unknown name for one of the ledger's enums.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}")]
pub struct UnknownName {
    what: &'static str,
    name: String,
}

macro_rules! names {
    ($(#[$doc:meta])* $ty:ident, $what:literal { $($(#[$vdoc:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $ty { $($(#[$vdoc])* $v,)+ }

        impl $ty {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$v => $s,)+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($ty::$v),)+
                    _ => Err(UnknownName { what: $what, name: s.to_owned() }),
                }
            }
        }
    };
}

names!(
    /// What became of a change: the worst verdict among its events, or a
    /// hard rejection (not merged).
    ChangeOutcome, "change outcome" {
        /// Merged; every event it carried accepted (or it carried none).
        Accepted = "accepted",
        /// Merged; an event was allowed when made but the ticket moved on.
        Conflict = "conflict",
        /// Merged; an event was not allowed even in the state its author saw.
        Rejected = "rejected",
        /// Not merged: it broke a hard rule.
        HardRejected = "hard_rejected",
    }
);

impl From<Outcome> for ChangeOutcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Accepted => ChangeOutcome::Accepted,
            Outcome::Conflict => ChangeOutcome::Conflict,
            Outcome::Rejected => ChangeOutcome::Rejected,
        }
    }
}

names!(
    /// Why an item is in the review queue.
    ReviewKind, "review kind" {
        /// A conflict verdict.
        Conflict = "conflict",
        /// A rejected verdict.
        Rejected = "rejected",
        /// A hard rejection (the raw change is kept with it).
        HardRejected = "hard_rejected",
    }
);

impl ReviewKind {
    /// The review item a verdict makes, if any (accepted makes none).
    pub fn of(o: Outcome) -> Option<Self> {
        match o {
            Outcome::Accepted => None,
            Outcome::Conflict => Some(ReviewKind::Conflict),
            Outcome::Rejected => Some(ReviewKind::Rejected),
        }
    }
}

/// A change received, for the sync log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeEntry {
    pub hash: ChangeHash,
    pub doc: DocId,
    pub actor: ActorId,
    pub user: UserId,
    pub device: DeviceId,
    pub session: Option<i64>,
    pub bytes: u64,
    /// The change's own time (device time).
    pub authored_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub outcome: ChangeOutcome,
    pub rule: Option<String>,
    pub reason: Option<String>,
}

/// A judged event, for the verdict ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictEntry {
    pub doc: DocId,
    pub event: EventId,
    pub seq: u64,
    pub action: String,
    pub user: UserId,
    pub device: DeviceId,
    pub change: ChangeHash,
    pub outcome: Outcome,
    pub rule: String,
    pub reason: String,
    /// The event's own time (device time).
    pub authored_at: DateTime<Utc>,
    pub judged_at: DateTime<Utc>,
}

/// An item for the review queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewEntry {
    pub doc: DocId,
    pub event: Option<EventId>,
    pub change: Option<ChangeHash>,
    pub kind: ReviewKind,
    pub action: Option<String>,
    pub rule: String,
    pub reason: String,
    pub user: UserId,
    pub device: DeviceId,
    pub authored_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The refused bytes, for hard rejections (at most 1 MiB).
    pub payload: Option<Vec<u8>>,
}

/// A review item closed by an accepted `override` or `dismiss`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// The event the item is about.
    pub event: String,
    pub by: UserId,
    /// `override` or `dismiss`.
    pub how: Action,
}
