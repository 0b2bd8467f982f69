//! The inbox keeper: a ticket whose audience changed is queued durably in
//! its own commit (`inbox_outbox`); the keeper writes each affected inbox
//! with the inbox mirror's rows in the same transaction, then marks the
//! queue done. At start (and every 2 s) anything still queued is settled,
//! and at start every ticket's audience is audited against the mirror.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Mutex;

use schema::access::{self, TicketMeta};
use schema::doc;
use schema::inbox::{Access, DocKind, InboxEntry};
use schema::{DocId, Role, UserId};

use super::{Hub, HubError};
use crate::store::StoreError;
use crate::store::records;
use crate::store::storage::SecurityEntry;

/// Tickets waiting for their inboxes, and the keeper's lock.
#[derive(Debug, Default)]
pub(super) struct Keeper {
    /// Tickets whose audience changed since the keeper last ran (each is
    /// also queued durably in the database by its commit).
    changes: Mutex<Vec<DocId>>,
    /// Held by whoever is writing inboxes: one keeper at a time, so an
    /// older audience never overwrites a newer one.
    lock: tokio::sync::Mutex<()>,
}

impl Keeper {
    /// Notes a ticket whose audience changed.
    pub(super) fn queue(&self, doc: DocId) {
        if let Ok(mut q) = self.changes.lock() {
            q.push(doc);
        }
    }

    /// How many tickets are queued.
    pub(super) fn len(&self) -> usize {
        self.changes.lock().map_or(0, |q| q.len())
    }
}

impl Hub {
    /// Brings the inboxes of tickets whose audience changed up to date
    /// (serialised: one keeper at a time, so an older audience never
    /// overwrites a newer one). A ticket stays queued in the database until
    /// its inboxes are written, so a failure here is retried, and a crash
    /// is repaired at the next start ([`Hub::recover_inboxes`]).
    pub(crate) async fn keep_inboxes(&self) {
        let _keeper = self.inboxes.lock.lock().await;
        let queued: Vec<DocId> = self
            .inboxes
            .changes
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default();
        let mut seen = HashSet::new();
        for doc_id in queued {
            if !seen.insert(doc_id) {
                continue;
            }
            if let Err(e) = self.settle_inboxes(doc_id, None).await {
                tracing::warn!(doc = %doc_id, error = %e, "inbox update failed; it stays queued");
            }
        }
    }

    /// Start-up and periodic repair: every ticket still queued has its
    /// inboxes brought up to date. With `audit`, every ticket's audience is
    /// also checked against what the inboxes list (filling the inbox mirror
    /// from the inbox documents first on a data directory older than it),
    /// and each difference repaired and recorded in the security log.
    /// Returns how many inboxes were written.
    pub(crate) async fn recover_inboxes(&self, audit: bool) -> Result<usize, HubError> {
        let mut written = 0;
        for (doc_id, upto) in self.store.inbox_queued().await? {
            let _keeper = self.inboxes.lock.lock().await;
            written += self.settle_inboxes(doc_id, Some(upto)).await?;
        }
        if !audit {
            return Ok(written);
        }
        if !self.store.inbox_mirror_ready().await? {
            self.seed_inbox_mirror().await?;
        }
        let staff = self.store.users().await?;
        let mut listed: HashMap<DocId, BTreeSet<UserId>> = HashMap::new();
        for (user, doc_id) in self.store.inbox_entries().await? {
            listed.entry(doc_id).or_default().insert(user);
        }
        let mut repaired = 0;
        for row in self.store.ticket_rows().await? {
            let want = audience_of(&row.meta(), &staff);
            let have = listed.remove(&row.doc_id).unwrap_or_default();
            if want != have {
                // The scan is not under the keeper's lock; the settling
                // reads everything again under it, so a concurrent update
                // is never undone.
                let _keeper = self.inboxes.lock.lock().await;
                let n = self.settle_inboxes(row.doc_id, None).await?;
                if n > 0 {
                    repaired += 1;
                    written += n;
                }
            }
        }
        if repaired > 0 {
            let entry = SecurityEntry::new(self.now(), "inbox_repaired").detail(format!(
                "{repaired} ticket(s) were listed in the wrong inboxes; {written} inbox(es) rewritten"
            ));
            let _ = self.store.log_refusal(entry, None).await;
        }
        Ok(written)
    }

    /// Reads every inbox document into the inbox mirror (a data directory
    /// written before the mirror existed).
    async fn seed_inbox_mirror(&self) -> Result<(), HubError> {
        let mut entries = Vec::new();
        for u in self.store.users().await? {
            let Some(stored) = self.store.load_document(u.inbox_doc).await? else {
                continue;
            };
            let user = u.username.clone();
            let listed = tokio::task::spawn_blocking(move || -> Result<Vec<DocId>, HubError> {
                let doc = stored.assemble()?;
                let inbox = doc::read_inbox(&doc).map_err(|e| {
                    HubError::Store(StoreError::Corrupt(format!("inbox of {user}: {e}")))
                })?;
                Ok(inbox
                    .docs
                    .iter()
                    .filter(|(_, e)| e.kind == DocKind::Ticket)
                    .map(|(url, _)| url.id())
                    .collect())
            })
            .await
            .map_err(|_| HubError::Refused("reading an inbox was interrupted".into()))??;
            entries.extend(listed.into_iter().map(|d| (u.username.clone(), d)));
        }
        self.store.seed_inbox_mirror(entries).await?;
        Ok(())
    }

    /// Makes every inbox list `doc_id` exactly when its user is in the
    /// ticket's audience (from the register), then marks the queue done up
    /// to the entry read first. Returns how many inboxes were written.
    async fn settle_inboxes(&self, doc_id: DocId, upto: Option<i64>) -> Result<usize, HubError> {
        let upto = match upto {
            Some(u) => Some(u),
            None => self.store.inbox_queued_upto(doc_id).await?,
        };
        let Some(row) = self.store.ticket_row(doc_id).await? else {
            if let Some(u) = upto {
                self.store.inbox_done(doc_id, u).await?;
            }
            return Ok(0);
        };
        let staff = self.store.users().await?;
        let want = audience_of(&row.meta(), &staff);
        let have: BTreeSet<UserId> = self
            .store
            .inbox_listed_by(doc_id)
            .await?
            .into_iter()
            .collect();
        let label = row.serial.clone().unwrap_or_else(|| row.title.clone());
        let household = row
            .household
            .as_deref()
            .and_then(|h| h.parse::<schema::DocUrl>().ok());
        let mut written = 0;
        for user in want.symmetric_difference(&have) {
            let listed = want.contains(user);
            let Some(u) = staff.iter().find(|u| &u.username == user) else {
                continue;
            };
            let url = doc_id.url();
            let entry = InboxEntry {
                kind: DocKind::Ticket,
                access: Access::ReadWrite,
                label: label.clone(),
            };
            let mirror = Some((user.clone(), vec![(doc_id, listed)]));
            self.relay_write_with(
                u.inbox_doc,
                None,
                mirror,
                Box::new(move |t| {
                    if listed {
                        doc::inbox_put(t, url, &entry)?;
                        if let Some(h) = household {
                            let e = InboxEntry {
                                kind: DocKind::Household,
                                access: Access::ReadOnly,
                                label: String::new(),
                            };
                            doc::inbox_put(t, h, &e)?;
                        }
                        Ok(())
                    } else {
                        doc::inbox_remove(t, url)
                    }
                }),
            )
            .await?;
            written += 1;
        }
        if let Some(u) = upto {
            self.store.inbox_done(doc_id, u).await?;
        }
        Ok(written)
    }
}

/// Whose inboxes should list a ticket: its audience by name, and the staff
/// of the department a matter is routed to.
fn audience_of(m: &TicketMeta, staff: &[records::User]) -> BTreeSet<UserId> {
    let (mut users, dept) = access::inbox_audience(m);
    if let Some(d) = dept {
        users.extend(
            staff
                .iter()
                .filter(|u| u.role == Role::DepartmentStaff && u.department == d)
                .map(|u| u.username.clone()),
        );
    }
    users.into_iter().collect()
}
