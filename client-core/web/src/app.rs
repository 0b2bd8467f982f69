//! The wasm-bindgen face: [`FieldApp`] (one device store) and
//! [`SyncSession`] (one sync over the worker's WebSocket). Every answer is
//! JSON text; every failure a JavaScript `Error` with the device library's message.

use client_core::engine::Input;
use client_core::schema::wire::{self, Limits};
use client_core::{Backoff, Device, DeviceError, Session, SyncSummary};
use js_sys::{Array, Uint8Array};
use sqlite_wasm_vfs::sahpool::{OpfsSAHPoolCfgBuilder, install};
use wasm_bindgen::prelude::*;

use crate::json;

/// The SQLite VFS the store lives in: OPFS through sync access handles.
const VFS: &str = "propsync-opfs";

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn text(v: &impl serde::Serialize) -> Result<String, JsError> {
    serde_json::to_string(v).map_err(err)
}

/// One device store in this origin.
#[wasm_bindgen]
#[derive(Debug)]
pub struct FieldApp {
    device: Device,
}

#[wasm_bindgen]
impl FieldApp {
    /// Registers the OPFS VFS (once) and opens the store `name` in it.
    ///
    /// # Errors
    /// When OPFS is not available (not a dedicated worker, private mode
    /// without storage) or the store cannot be opened or migrated.
    pub async fn open(name: String) -> Result<FieldApp, JsError> {
        let cfg = OpfsSAHPoolCfgBuilder::new()
            .vfs_name(VFS)
            .directory(".propsync")
            .build();
        install::<sqlite_wasm_rs::WasmOsCallback>(&cfg, false)
            .await
            .map_err(err)?;
        let path = format!("/{name}.sqlite3");
        Ok(FieldApp {
            device: Device::open_vfs(&path, VFS).map_err(err)?,
        })
    }

    /// Who the device acts for, as JSON, or `null` before enrolment.
    ///
    /// # Errors
    /// Store failures.
    pub fn identity(&self) -> Result<String, JsError> {
        match self.device.identity() {
            Ok(i) => text(&i),
            Err(DeviceError::NotEnrolled) => Ok("null".into()),
            Err(e) => Err(err(e)),
        }
    }

    /// Keeps the identity the relay's `/api/v1/me` gave for `token`.
    ///
    /// # Errors
    /// When `me` is not `/api/v1/me`'s answer, or the store fails.
    pub fn enrolled(&self, relay: &str, token: &str, me: &str) -> Result<String, JsError> {
        let me: client_core::relay::Me = serde_json::from_str(me).map_err(err)?;
        text(&self.device.enrolled(relay, token, me).map_err(err)?)
    }

    /// The work list at the device clock's now.
    ///
    /// # Errors
    /// Store failures.
    pub fn work(&self) -> Result<String, JsError> {
        text(&self.device.work(self.device.now()).map_err(err)?)
    }

    /// The ticket screen (view, offers, household file, photos).
    ///
    /// # Errors
    /// When the ticket is unknown or unreadable.
    pub fn ticket(&self, id: &str) -> Result<String, JsError> {
        text(&json::ticket_screen(&self.device, id).map_err(err)?)
    }

    /// Takes a lifecycle action; answers `{"ok": event id}` or `{"refused": {rule, reason}}`.
    ///
    /// # Errors
    /// Failures that are not refusals.
    pub fn act(&self, id: &str, action: &str, data: &str) -> Result<String, JsError> {
        let result = json::action(action, data)
            .and_then(|(a, d)| self.device.act(id, a, d))
            .map(|e| e.to_string());
        text(&json::outcome(result).map_err(err)?)
    }

    /// Adds a note; answers as [`FieldApp::act`].
    ///
    /// # Errors
    /// Failures that are not refusals.
    pub fn note(&self, id: &str, body: &str) -> Result<String, JsError> {
        let result = self.device.note(id, body).map(|e| e.to_string());
        text(&json::outcome(result).map_err(err)?)
    }

    /// Records an on-site report (`json::ReportForm`); answers as [`FieldApp::act`].
    ///
    /// # Errors
    /// When the form cannot be read, or failures that are not refusals.
    pub fn report(&self, form: &str) -> Result<String, JsError> {
        let form: json::ReportForm = serde_json::from_str(form).map_err(err)?;
        text(&json::report(&self.device, form).map_err(err)?)
    }

    /// Stores a photo (already scaled and compressed); answers its SHA-256.
    ///
    /// # Errors
    /// Store failures.
    pub fn add_photo(&self, bytes: &[u8], mime: &str) -> Result<String, JsError> {
        self.device.add_photo(bytes, mime).map_err(err)
    }

    /// A stored photo's bytes, or `undefined`.
    ///
    /// # Errors
    /// Store failures.
    pub fn photo(&self, sha256: &str) -> Result<Option<Vec<u8>>, JsError> {
        self.device.photo_bytes(sha256).map_err(err)
    }

    /// Photos the relay does not have in full (`BlobRow`s as JSON).
    ///
    /// # Errors
    /// Store failures.
    pub fn photos_to_upload(&self) -> Result<String, JsError> {
        text(&self.device.photos_to_upload().map_err(err)?)
    }

    /// Records upload progress confirmed by the relay.
    ///
    /// # Errors
    /// Store failures.
    pub fn record_upload(
        &self,
        sha256: &str,
        received: f64,
        complete: bool,
    ) -> Result<(), JsError> {
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a byte count the relay sent, a whole number far below 2^53"
        )]
        let n = received.max(0.0) as u64;
        self.device.record_upload(sha256, n, complete).map_err(err)
    }

    /// Pending local actions (JSON).
    ///
    /// # Errors
    /// Store failures.
    pub fn pending(&self) -> Result<String, JsError> {
        text(&self.device.pending().map_err(err)?)
    }

    /// The quarantine (JSON, raw changes in hex: the export).
    ///
    /// # Errors
    /// Store failures.
    pub fn quarantine(&self) -> Result<String, JsError> {
        text(&self.device.quarantine().map_err(err)?)
    }

    /// The device's own sync log, newest first (JSON).
    ///
    /// # Errors
    /// Store failures.
    pub fn sync_log(&self, limit: u32) -> Result<String, JsError> {
        text(&self.device.sync_log(limit).map_err(err)?)
    }

    /// The end of the last successful sync (RFC 3339), or `undefined`.
    ///
    /// # Errors
    /// Store failures.
    pub fn last_sync(&self) -> Result<Option<String>, JsError> {
        json::last_sync(&self.device).map_err(err)
    }

    /// Starts a sync session: loads every document and its sync state.
    ///
    /// # Errors
    /// Before enrolment, or when the store fails.
    pub fn session(&self) -> Result<SyncSession, JsError> {
        Ok(SyncSession {
            session: Session::new(&self.device).map_err(err)?,
        })
    }

    /// Records one sync in the device's log: the summary JSON, or the error.
    ///
    /// # Errors
    /// Store failures.
    pub fn log_sync(
        &self,
        started_ms: f64,
        summary: Option<String>,
        error: Option<String>,
    ) -> Result<(), JsError> {
        let started = json::from_millis(started_ms);
        let summary: SyncSummary = match summary {
            Some(s) => serde_json::from_str(&s).map_err(err)?,
            None => SyncSummary::default(),
        };
        let result = match &error {
            Some(e) => Err(e.as_str()),
            None => Ok(&summary),
        };
        self.device.log_sync(started, result).map_err(err)
    }
}

/// One sync over the worker's WebSocket: frames in, frames out, each input's
/// effects committed to the store before its answer is returned.
#[wasm_bindgen]
#[derive(Debug)]
pub struct SyncSession {
    session: Session,
}

fn frames(messages: Vec<client_core::schema::wire::Message>) -> Array {
    let out = Array::new();
    for m in messages {
        out.push(&Uint8Array::from(wire::encode(&m).as_slice()));
    }
    out
}

#[wasm_bindgen]
impl SyncSession {
    /// The WebSocket is open: the frames to send (`join`).
    ///
    /// # Errors
    /// Store failures.
    pub fn connected(&mut self) -> Result<Array, JsError> {
        Ok(frames(self.session.handle(Input::Connected).map_err(err)?))
    }

    /// A binary frame from the relay: the frames to send back.
    ///
    /// # Errors
    /// A frame that is not a protocol message, or a store failure.
    pub fn received(&mut self, bytes: &[u8]) -> Result<Array, JsError> {
        let msg = wire::decode(bytes, &Limits::default()).map_err(err)?;
        Ok(frames(
            self.session.handle(Input::Received(msg)).map_err(err)?,
        ))
    }

    /// The WebSocket closed.
    ///
    /// # Errors
    /// Store failures.
    pub fn disconnected(&mut self) -> Result<(), JsError> {
        self.session.handle(Input::Disconnected).map_err(err)?;
        Ok(())
    }

    /// Whether every document is in sync.
    pub fn is_idle(&self) -> bool {
        self.session.is_idle()
    }

    /// Documents still out of sync.
    pub fn outstanding(&self) -> usize {
        self.session.engine().outstanding()
    }

    /// The relay's `error` message, once it sent one.
    pub fn closing(&self) -> Option<String> {
        self.session.closing().map(str::to_owned)
    }

    /// What the session did so far (JSON `SyncSummary`).
    ///
    /// # Errors
    /// Never in practice (serialising a summary).
    pub fn summary(&self) -> Result<String, JsError> {
        text(&self.session.summary())
    }
}

/// The CLI's reconnect backoff, for the worker's loop.
#[wasm_bindgen]
#[derive(Debug)]
pub struct Retry {
    backoff: Backoff,
}

#[wasm_bindgen]
impl Retry {
    /// From `base_ms` up to `max_ms` (the CLI uses 250 ms and 30 s).
    #[wasm_bindgen(constructor)]
    pub fn new(base_ms: u32, max_ms: u32) -> Retry {
        Retry {
            backoff: Backoff::new(
                std::time::Duration::from_millis(u64::from(base_ms)),
                std::time::Duration::from_millis(u64::from(max_ms)),
            ),
        }
    }

    /// The next wait in milliseconds (full jitter).
    pub fn next_ms(&mut self) -> f64 {
        #[allow(
            clippy::cast_precision_loss,
            reason = "a wait of at most minutes, far below 2^53 ms"
        )]
        let ms = self.backoff.next_delay(&mut rand::rng()).as_millis() as f64;
        ms
    }

    /// After a good sync: start again from the base.
    pub fn reset(&mut self) {
        self.backoff.reset();
    }
}
