//! The security log's writer for refusals at the edge (bad tokens, failed
//! logins, rate limits, malformed frames).
//!
//! A flood of refusals must not cost one write transaction (one fsync) per
//! request, so refusals are gathered in memory and written together at most
//! every [`Config::security_log_flush`](crate::Config): like refusals (same
//! kind, user, device, client address and detail) become one row with a
//! `count` and the times of the first and the last. Memory is bounded: at
//! most [`MAX_KEYS`] distinct rows wait; past that, refusals are folded into
//! one row per kind, and a full queue counts what it dropped and says so in
//! the next write. The writer flushes when asked ([`SecurityLog::flush`], at
//! shutdown) and when the last handle goes.
//!
//! Refusals the hub records with a review item (hard rejections) do not come
//! here: they stay durable in the same transaction as their review row.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, oneshot};

use crate::store::Db;
use crate::store::edges::{self, Coalesced};
use crate::store::storage::SecurityEntry;

/// Most distinct rows waiting for the next write.
pub(crate) const MAX_KEYS: usize = 1_000;

/// Most refusals queued for the writer; beyond, they are counted and dropped.
const QUEUE: usize = 16_384;

enum Cmd {
    Entry(SecurityEntry),
    Flush(oneshot::Sender<()>),
}

/// A handle to the security log's writer; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct SecurityLog {
    tx: mpsc::Sender<Cmd>,
    dropped: Arc<AtomicU64>,
}

type Key = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
);

impl SecurityLog {
    /// Starts the writer on `db`, writing at most every `every`.
    pub(crate) fn start(db: Db, every: Duration) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        tokio::spawn(writer(db, rx, every, dropped.clone()));
        Self { tx, dropped }
    }

    /// Records a refusal; never waits.
    pub(crate) fn record(&self, e: SecurityEntry) {
        if self.tx.try_send(Cmd::Entry(e)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Writes everything recorded so far and waits until it is durable.
    pub(crate) async fn flush(&self) {
        let (ack, done) = oneshot::channel();
        if self.tx.send(Cmd::Flush(ack)).await.is_ok() {
            let _ = done.await;
        }
    }
}

#[derive(Default)]
struct Pending {
    rows: BTreeMap<Key, Coalesced>,
}

impl Pending {
    fn add(&mut self, e: SecurityEntry) {
        let mut key: Key = (e.kind, e.user, e.device, e.peer, e.detail);
        if !self.rows.contains_key(&key) && self.rows.len() >= MAX_KEYS {
            // Bounded: fold whatever else comes into one row per kind.
            key = (
                key.0,
                None,
                None,
                None,
                "more refusals of this kind (details not kept: too many distinct ones at once)"
                    .into(),
            );
        }
        match self.rows.get_mut(&key) {
            Some(row) => {
                row.count += 1;
                row.at = row.at.min(e.at);
                row.last_at = row.last_at.max(e.at);
            }
            None => {
                let (kind, user, device, peer, detail) = key.clone();
                self.rows.insert(
                    key,
                    Coalesced {
                        at: e.at,
                        last_at: e.at,
                        count: 1,
                        user,
                        device,
                        peer,
                        kind,
                        detail,
                    },
                );
            }
        }
    }

    async fn write(&mut self, db: &Db, dropped: &AtomicU64) {
        let lost = dropped.swap(0, Ordering::Relaxed);
        let mut rows: Vec<Coalesced> = std::mem::take(&mut self.rows).into_values().collect();
        if lost > 0 {
            let now: DateTime<Utc> = Utc::now();
            rows.push(Coalesced {
                at: now,
                last_at: now,
                count: lost,
                user: None,
                device: None,
                peer: None,
                kind: "refusals_dropped".into(),
                detail: format!("{lost} refusals arrived faster than they could be logged"),
            });
        }
        if rows.is_empty() {
            return;
        }
        let n = rows.len();
        if let Err(e) = db.write(move |tx| edges::log_coalesced(tx, &rows)).await {
            tracing::warn!(error = %e, rows = n, "the security log could not be written");
        }
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Cmd>, every: Duration, dropped: Arc<AtomicU64>) {
    let mut pending = Pending::default();
    let mut deadline: Option<tokio::time::Instant> = None;
    loop {
        let cmd = match deadline {
            Some(at) => tokio::select! {
                c = rx.recv() => c,
                () = tokio::time::sleep_until(at) => {
                    pending.write(&db, &dropped).await;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match cmd {
            Some(Cmd::Entry(e)) => {
                pending.add(e);
                deadline.get_or_insert_with(|| tokio::time::Instant::now() + every);
            }
            Some(Cmd::Flush(ack)) => {
                pending.write(&db, &dropped).await;
                deadline = None;
                let _ = ack.send(());
            }
            None => {
                pending.write(&db, &dropped).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests;
