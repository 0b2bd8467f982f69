//! Import jobs: an import the dashboard starts and then follows with a
//! progress bar (`POST /api/v1/household-files/imports` → 202 `{id}`, then
//! `GET /api/v1/household-files/imports/{id}`). A job runs
//! [`import_bytes`](super::http::import_bytes), so its checks, its per-row
//! errors and its all-or-nothing commit are those of the plain import
//! route; only where it is (parsing, checking, writing, done, failed) and
//! how far (done of total) are new.
//!
//! Jobs are kept in memory only: a restart forgets them (the register
//! itself is durable, and an import that was writing finishes its documents
//! at start-up). At most [`MAX_JOBS`] are kept, [`MAX_RUNNING`] of them
//! running; a finished job is forgotten [`KEEP`] after it ended.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use schema::{Principal, UserId};
use serde::Serialize;
use serde_json::Value;

use super::import::{Format, Stage};
use crate::error::{AppError, AppResult};
use crate::state::Relay;

/// Jobs kept at once, running or finished.
pub(crate) const MAX_JOBS: usize = 32;
/// Jobs running at once.
pub(crate) const MAX_RUNNING: usize = 2;
/// How long a finished job stays readable.
pub(crate) const KEEP: Duration = Duration::from_secs(15 * 60);

/// Where a job is.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum JobState {
    /// Reading the file.
    Parsing,
    /// Checking rows (`done` of `total` rows).
    Checking,
    /// Writing households (`done` of `total` households' documents).
    Writing,
    /// Finished: `result` holds what the plain route answers.
    Done,
    /// Refused or failed: `message`, and `errors` for bad rows (nothing
    /// was written).
    Failed,
}

impl From<Stage> for JobState {
    fn from(s: Stage) -> Self {
        match s {
            Stage::Parsing => JobState::Parsing,
            Stage::Checking => JobState::Checking,
            Stage::Writing => JobState::Writing,
        }
    }
}

/// What `GET /api/v1/household-files/imports/{id}` answers.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct JobStatus {
    pub(crate) id: String,
    pub(crate) state: JobState,
    /// Whether the job writes (`commit=true`) or only previews.
    pub(crate) commit: bool,
    pub(crate) done: usize,
    pub(crate) total: usize,
    /// Every bad row (row, column, message) when the file was refused.
    pub(crate) errors: Vec<Value>,
    /// Why it failed, for people.
    pub(crate) message: Option<String>,
    /// The import's outcome once done.
    pub(crate) result: Option<Value>,
}

#[derive(Debug)]
struct Job {
    owner: UserId,
    ended: Option<Instant>,
    status: JobStatus,
}

/// The relay's import jobs.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    jobs: Mutex<HashMap<String, Job>>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Job>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A job's status, for the user who started it.
    pub(crate) fn status(&self, id: &str, user: &UserId) -> Option<JobStatus> {
        let mut jobs = self.lock();
        prune(&mut jobs, Instant::now());
        jobs.get(id)
            .filter(|j| &j.owner == user)
            .map(|j| j.status.clone())
    }

    fn update(&self, id: &str, f: impl FnOnce(&mut Job)) {
        if let Some(j) = self.lock().get_mut(id) {
            f(j);
        }
    }
}

/// Forgets finished jobs older than [`KEEP`], then the oldest finished ones
/// while more than [`MAX_JOBS`] are kept.
fn prune(jobs: &mut HashMap<String, Job>, now: Instant) {
    jobs.retain(|_, j| j.ended.is_none_or(|e| now.duration_since(e) < KEEP));
    while jobs.len() >= MAX_JOBS {
        let oldest = jobs
            .iter()
            .filter_map(|(id, j)| j.ended.map(|e| (e, id.clone())))
            .min();
        match oldest {
            Some((_, id)) => {
                jobs.remove(&id);
            }
            None => break,
        }
    }
}

/// Starts an import job and returns its first status.
///
/// # Errors
/// [`AppError::TooMany`] when [`MAX_RUNNING`] jobs run (or [`MAX_JOBS`]
/// are running or kept and none can be forgotten).
pub(crate) fn start(
    relay: &Relay,
    bytes: Bytes,
    format: Format,
    commit: bool,
    by: Principal,
) -> AppResult<JobStatus> {
    let id = format!("{:032x}", rand::random::<u128>());
    let status = JobStatus {
        id: id.clone(),
        state: JobState::Parsing,
        commit,
        done: 0,
        total: 0,
        errors: Vec::new(),
        message: None,
        result: None,
    };
    {
        let mut jobs = relay.imports.lock();
        prune(&mut jobs, Instant::now());
        let running = jobs.values().filter(|j| j.ended.is_none()).count();
        if running >= MAX_RUNNING || jobs.len() >= MAX_JOBS {
            return Err(AppError::TooMany {
                code: "rate_limited",
                message: format!(
                    "{running} imports are running; wait for one to finish and try again"
                ),
                retry_after: 5,
            });
        }
        jobs.insert(
            id.clone(),
            Job {
                owner: by.user.clone(),
                ended: None,
                status: status.clone(),
            },
        );
    }
    let relay = relay.clone();
    tokio::spawn(async move {
        let jobs = Arc::clone(&relay.imports);
        let progress = |stage: Stage, done: usize, total: usize| {
            jobs.update(&id, |j| {
                j.status.state = stage.into();
                j.status.done = done;
                j.status.total = total;
            });
        };
        let outcome =
            super::http::import_bytes(&relay, &bytes, format, commit, &by, &progress).await;
        relay.imports.update(&id, |j| {
            j.ended = Some(Instant::now());
            match outcome {
                Ok(result) => {
                    j.status.state = JobState::Done;
                    j.status.done = j.status.total;
                    j.status.result = Some(result);
                }
                Err(e) => {
                    j.status.state = JobState::Failed;
                    if let AppError::Invalid { details, .. } = &e {
                        j.status.errors = details["errors"].as_array().cloned().unwrap_or_default();
                    }
                    if let AppError::Internal(cause) = &e {
                        tracing::error!(%cause, "an import job failed");
                    }
                    j.status.message = Some(e.to_string());
                }
            }
        });
    });
    Ok(status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: &str, ended: Option<Instant>) -> Job {
        Job {
            owner: UserId::new(owner).expect("a user id"),
            ended,
            status: JobStatus {
                id: String::new(),
                state: JobState::Done,
                commit: true,
                done: 0,
                total: 0,
                errors: Vec::new(),
                message: None,
                result: None,
            },
        }
    }

    #[test]
    fn finished_jobs_expire_and_the_oldest_go_first_running_ones_stay() {
        let now = Instant::now();
        let mut jobs = HashMap::new();
        let long_ago = now.checked_sub(KEEP + Duration::from_secs(1));
        jobs.insert("expired".to_owned(), job("a", long_ago));
        jobs.insert("running".to_owned(), job("a", None));
        prune(&mut jobs, now);
        assert!(long_ago.is_none() || !jobs.contains_key("expired"));
        assert!(jobs.contains_key("running"));
        let base = now.checked_sub(Duration::from_secs(100)).unwrap_or(now);
        for i in 0..MAX_JOBS {
            let at = base + Duration::from_secs(u64::try_from(i).unwrap_or(0));
            jobs.insert(format!("done-{i:02}"), job("a", Some(at)));
        }
        prune(&mut jobs, now);
        assert_eq!(jobs.len(), MAX_JOBS - 1);
        assert!(jobs.contains_key("running"));
        assert!(!jobs.contains_key("done-00") && !jobs.contains_key("done-01"));
        assert!(jobs.contains_key(&format!("done-{:02}", MAX_JOBS - 1)));
    }
}
