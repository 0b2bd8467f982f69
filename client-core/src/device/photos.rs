//! Photos on the device: stored by SHA-256, referenced from actions (and
//! added to the ticket's attachments in the same change), uploaded later.

use chrono::{DateTime, Utc};
use schema::ticket::Attachment;
use schema::{Event, EventId};
use sha2::{Digest, Sha256};

use super::{Device, DeviceError};
use crate::store::{self, BlobRow};

impl Device {
    /// A stored photo.
    ///
    /// # Errors
    /// When the store fails.
    pub fn photo(&self, sha256: &str) -> Result<Option<BlobRow>, DeviceError> {
        let store = self.lock()?;
        Ok(store::blob(store.conn(), sha256)?)
    }

    /// Stores a photo by its SHA-256 and returns the hash; it is uploaded at
    /// the next sync, and may be referenced from an action at once.
    ///
    /// # Errors
    /// When the store fails.
    pub fn add_photo(&self, bytes: &[u8], mime: &str) -> Result<String, DeviceError> {
        let sha = hex::encode(Sha256::digest(bytes));
        let mut store = self.lock()?;
        store.write(|tx| store::blob_put(tx, &sha, mime, bytes))?;
        Ok(sha)
    }

    /// The attachments an event's photos add (those the ticket lacks).
    pub(super) fn attachments_for(
        &self,
        event: &Event,
        existing: &[Attachment],
        caption: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<Attachment>, DeviceError> {
        let store = self.lock()?;
        let mut out: Vec<Attachment> = Vec::new();
        for sha in &event.data.photos {
            let blob = store::blob(store.conn(), sha)?
                .ok_or_else(|| DeviceError::UnknownPhoto(sha.clone()))?;
            if !existing.iter().chain(&out).any(|a| &a.sha256 == sha) {
                out.push(Attachment {
                    id: EventId::random(),
                    sha256: sha.clone(),
                    mime: blob.mime,
                    size: blob.size,
                    caption: caption.to_owned(),
                    by: event.by.clone(),
                    device: event.device.clone(),
                    at: now,
                });
            }
        }
        Ok(out)
    }

    /// A stored photo's bytes.
    ///
    /// # Errors
    /// When the store fails.
    pub fn photo_bytes(&self, sha256: &str) -> Result<Option<Vec<u8>>, DeviceError> {
        Ok(store::blob_bytes(self.lock()?.conn(), sha256)?)
    }

    /// Photos the relay does not have in full, to upload.
    ///
    /// # Errors
    /// When the store fails.
    pub fn photos_to_upload(&self) -> Result<Vec<BlobRow>, DeviceError> {
        Ok(store::blobs_to_upload(self.lock()?.conn())?)
    }

    /// Records how much of a photo the relay has confirmed.
    ///
    /// # Errors
    /// When the store fails.
    pub fn record_upload(&self, sha: &str, n: u64, complete: bool) -> Result<(), DeviceError> {
        self.lock()?
            .write(|tx| store::blob_progress(tx, sha, n, complete))?;
        Ok(())
    }
}
