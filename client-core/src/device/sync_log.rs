//! The device's own sync log: what each sync did, or why it failed.

use chrono::{DateTime, Utc};

use super::{Device, DeviceError, SyncSummary};
use crate::store;

impl Device {
    /// Records one sync in the device's own log.
    ///
    /// # Errors
    /// When the store fails.
    pub fn log_sync(
        &self,
        started: DateTime<Utc>,
        result: Result<&SyncSummary, &str>,
    ) -> Result<(), DeviceError> {
        let ended = schema::doc::rfc3339((self.clock)());
        let started = schema::doc::rfc3339(started);
        let (ok, summary, error) = match result {
            Ok(s) => (true, serde_json::to_string(s).unwrap_or_default(), None),
            Err(e) => (false, "{}".to_owned(), Some(e)),
        };
        self.lock()?
            .write(|tx| store::sync_log_add(tx, &started, &ended, ok, &summary, error))?;
        Ok(())
    }

    /// The device's newest `limit` syncs, newest first.
    ///
    /// # Errors
    /// When the store fails.
    pub fn sync_log(&self, limit: u32) -> Result<Vec<store::SyncLogRow>, DeviceError> {
        Ok(store::sync_log(self.lock()?.conn(), limit)?)
    }
}
