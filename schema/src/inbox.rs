//! The inbox: one relay-written document per user listing the documents that
//! user may sync. Devices follow it to know what to fetch and what to purge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{DocUrl, UserId};
use crate::role::UnknownName;
use crate::ticket::named_enum;
use std::fmt;
use std::str::FromStr;

named_enum!(
    /// What a listed document is.
    DocKind, "document kind" {
        /// A ticket.
        Ticket = "ticket",
        /// A public household file.
        Household = "household",
        /// A private household file.
        HouseholdPrivate = "household_private",
        /// An inbox.
        Inbox = "inbox",
    }
);

named_enum!(
    /// What the user may do with a listed document.
    Access, "access" {
        /// Read and append events.
        ReadWrite = "rw",
        /// Read only (an engineer's ticket after a transfer away).
        ReadOnly = "ro",
    }
);

/// One document on the list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    /// What it is.
    pub kind: DocKind,
    /// Read-write or read-only.
    pub access: Access,
    /// A label for lists (serial or title).
    pub label: String,
}

/// A user's inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inbox {
    /// Whose.
    pub user: UserId,
    /// The documents, by URL.
    pub docs: BTreeMap<DocUrl, InboxEntry>,
}
