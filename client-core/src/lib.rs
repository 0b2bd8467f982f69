//! The propsync device: what runs on an engineer's or patroller's phone.
//!
//! It keeps Automerge documents in a local SQLite store, offers a typed API for
//! each role's actions (checked against [`schema::Policy::check`] before any
//! change is made) and syncs with the relay. See `ARCHITECTURE.md` for the code map.
//!
//! - [`store`]: the SQLite store (documents as snapshot + chunks, sync states,
//!   pending actions, verdicts, quarantine, photos);
//! - [`device`]: [`Device`], the public face: enrol, act, note, report, show,
//!   pending, quarantine, and the sync [`Session`];
//! - [`actions`]: typed constructors for each role's actions;
//! - [`engine`]: the IO-free sync state machine;
//! - [`transport`]: the WebSocket transport, backoff, photo upload, `sync_once`;
//! - [`relay`]: the relay's HTTP API (enrolment, blobs).

pub mod actions;
pub mod device;
pub mod engine;
pub mod relay;
pub mod store;
pub mod transport;

#[cfg(test)]
mod testkit;

pub use device::{
    Device, DeviceError, Identity, Refused, Report, Session, SyncSummary, TicketView,
};
pub use schema;
pub use transport::{Backoff, SyncConfig};
