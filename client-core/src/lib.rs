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
//! - [`backoff`]: the reconnect backoff every transport uses;
//! - [`offer`]: what the lifecycle offers this person on a ticket now, and
//!   the work list (tickets assigned to me, with flags and pending counts);
//! - [`transport`] (native): the WebSocket transport, photo upload, `sync_once`;
//! - [`relay`]: the relay's HTTP API (enrolment, blobs; the client is native).
//!
//! The same crate compiles to `wasm32-unknown-unknown` for the field app
//! (`client-core/web`): there the store is SQLite in the browser's origin
//! private file system and the page's own WebSocket and fetch move the
//! bytes; everything that decides is this crate's.

pub mod actions;
pub mod backoff;
pub mod device;
pub mod engine;
pub mod offer;
pub mod relay;
pub mod store;
#[cfg(not(target_family = "wasm"))]
pub mod transport;

#[cfg(test)]
mod testkit;

pub use backoff::Backoff;
pub use device::{
    Device, DeviceError, Identity, Refused, Report, Session, SyncSummary, TicketView,
};
pub use schema;
#[cfg(not(target_family = "wasm"))]
pub use transport::SyncConfig;
