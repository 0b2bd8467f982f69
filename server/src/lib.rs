//! The propsync relay: it authenticates devices, speaks the automerge-repo sync
//! protocol, judges every incoming change with [`schema::judge`](fn@schema::judge), assigns serial
//! numbers and keeps everything in SQLite. See `ARCHITECTURE.md` for the code map.

pub use schema;
