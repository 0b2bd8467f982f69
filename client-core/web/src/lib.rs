//! The field app's WebAssembly module: `client-core` in the phone's browser.
//!
//! It runs in a dedicated Worker (`static/worker.js`), because the store is
//! SQLite on the origin private file system through `sqlite-wasm-vfs`'s
//! sync-access-handle pool, which browsers allow only in dedicated workers;
//! a commit there is written and flushed before the call returns, so an action
//! the screen shows as saved survives a closed tab, a killed browser and a reload.
//!
//! What it exports is thin: each method calls the same [`client_core::Device`]
//! the CLI uses (actions checked by `schema::Policy`, pending and official
//! views, quarantine, the sync [`client_core::Session`]) and answers in JSON.
//! The worker moves the bytes (WebSocket, fetch); nothing here decides
//! anything the device library does not already decide natively.
//!
//! Natively this crate is empty.

#[cfg(target_family = "wasm")]
mod app;
pub mod json;

#[cfg(target_family = "wasm")]
pub use app::{FieldApp, Retry, SyncSession};
