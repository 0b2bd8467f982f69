//! The shared vocabulary of propsync.
//!
//! Everything the device and the relay must agree on lives here, with no IO:
//!
//! - [`ids`], [`money`], [`serial`]: newtypes for the values that cross a boundary;
//! - [`role`]: roles, departments and the [`Principal`] who acts;
//! - [`ticket`], [`household`], [`inbox`]: the document shapes of DESIGN.md §2;
//! - [`doc`]: reading those shapes from Automerge (leniently) and writing them;
//! - [`lifecycle`]: the ticket lifecycle of DOMAIN.md §3–§4 as a transition table in data;
//! - [`judge`](mod@judge): the rule check that turns an event into a [`Verdict`];
//! - [`projection`]: the pure fold of accepted events into status, assignee, money and flags;
//! - [`policy`]: the settings the rules read (due times, thresholds);
//! - [`wire`]: the automerge-repo network protocol's messages, encoded and decoded (no IO).
//!
//! **Architecture Invariant:** this crate does no IO and depends on no other propsync crate.

pub mod access;
pub mod doc;
pub mod household;
pub mod ids;
pub mod inbox;
pub mod judge;
pub mod lifecycle;
pub mod money;
pub mod policy;
pub mod projection;
pub mod role;
pub mod serial;
pub mod ticket;
pub mod wire;

#[cfg(test)]
mod testkit;

pub use ids::{DeviceId, DocId, DocUrl, EventId, IdError, UserId};
pub use judge::{Outcome, Rule, Verdict, judge};
pub use lifecycle::{Action, Status};
pub use money::Fen;
pub use policy::Policy;
pub use projection::{Flag, Projection};
pub use role::{Department, Principal, Role};
pub use serial::{Serial, Series};
pub use ticket::{Event, EventData, Kind, Ticket, VerdictRecord};
