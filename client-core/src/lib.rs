//! The propsync device: what runs on an engineer's or patroller's phone.
//!
//! It keeps Automerge documents in a local SQLite store, offers a typed API for
//! each role's actions (checked against [`schema::judge`](fn@schema::judge) before any change is
//! made) and syncs with the relay. See `ARCHITECTURE.md` for the code map.

pub use schema;
