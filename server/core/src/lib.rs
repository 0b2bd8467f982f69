//! The relay's decisions, without IO (after samod-core and the device's own
//! engine): what may enter a document (the hard rules), what a batch of
//! changes is judged to be, what one sync step stores, and the per-document
//! sync state machine that turns a peer's message into effects. The relay
//! (`propsync-server`) is the async shell around it: it loads and locks
//! documents, runs these functions, stores the commits and sends the
//! messages. Nothing here awaits, reads a clock or touches a disk, so it is
//! tested without tokio and the device's tests can run against it.
//!
//! - [`validate`]: the hard rules on a change's own operations, whole-document
//!   chunks measured before they load, sync messages bounded;
//! - [`batch`]: judging one batch (merge into a fork, read back, verdicts);
//! - [`commit`]: what a step stores and the relay's seal on the document;
//! - [`document`]: one document with its peers, a step at a time;
//! - [`ledger`]: the sync log's, verdict ledger's and review queue's entries;
//! - [`messages`]: the relay's messages to a peer.

pub mod batch;
pub mod commit;
pub mod document;
pub mod ledger;
pub mod messages;
pub mod validate;

pub use commit::{COMPACT_AFTER, Collection, Commit, Grant, Register, Seal, Sealed};
pub use document::{ConnId, Document, Effect, JudgeContext, PeerInfo, Step, Stored};
pub use validate::{HardRule, Limits, Rejection};
