//! What a person sees before acting: the work list (the tickets the device
//! holds, with the status it shows, due time, flags and pending count) and,
//! on one ticket, the actions the lifecycle offers this person now, each
//! either open (with the data it needs) or refused with the rule's name and
//! reason. Both come from `schema`'s table and `Policy::check`, so the field
//! app's buttons and the CLI's refusals are the same decision.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schema::household::Household;
use schema::lifecycle::{self, Field};
use schema::{Action, DocUrl, Event, EventData, EventId, Kind, Projection};

use crate::device::{Device, DeviceError, Refused};
use crate::store;

/// One lifecycle action as offered on a ticket.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Offer {
    /// The action's name (`accept`, `complete`, …).
    pub action: String,
    /// The data the form must collect (field keys, as in `EventData`).
    pub needs: Vec<&'static str>,
    /// `None`: the person may take it now; otherwise why not.
    pub refused: Option<Refused>,
}

/// One line of the work list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct WorkItem {
    /// The document.
    pub url: DocUrl,
    /// The serial number, once the relay gave one.
    pub serial: Option<String>,
    /// The kind.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// Where.
    pub location: String,
    /// The status with this device's pending events applied.
    pub status: String,
    /// The official status (accepted events only).
    pub official_status: String,
    /// The due time that applies now, if any.
    pub due: Option<DateTime<Utc>>,
    /// OVERDUE, FOCUS, RETURN_VISIT_DUE, ESCALATED (official state).
    pub flags: Vec<&'static str>,
    /// Local actions not judged (or, for notes, not received) yet.
    pub pending: usize,
    /// Whether the ticket is assigned to this person (or routed to their department).
    pub mine: bool,
    /// Whether the person may only read it.
    pub read_only: bool,
    /// Chunks that could not be read (the ticket still shows what could).
    pub damaged: usize,
}

/// A document that could not be shown as a ticket in the list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Unreadable {
    /// The document.
    pub url: DocUrl,
    /// Why.
    pub problem: String,
}

/// The work list and what could not be read.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkList {
    /// Tickets, overdue first, then by due time, then by serial.
    pub items: Vec<WorkItem>,
    /// Documents that are not readable tickets (reported, never a crash).
    pub unreadable: Vec<Unreadable>,
}

/// The actions a role can ever take that this function considers (creation
/// and the relay's automatic steps are not offered on an existing ticket).
fn offerable(action: Action) -> bool {
    !matches!(action, Action::Issue | Action::Record | Action::Charge)
}

impl Device {
    /// The lifecycle actions this person's role has on a ticket of this kind,
    /// each open or refused (with the rule) on what the device shows now:
    /// the official state plus its own pending events.
    ///
    /// # Errors
    /// When the ticket is unknown or unreadable, or the store fails.
    pub fn offers(&self, ticket: &str) -> Result<Vec<Offer>, DeviceError> {
        let view = self.show(ticket)?;
        let me = self.identity()?.principal;
        let p = &view.with_pending;
        let mut seen: Vec<Action> = Vec::new();
        let mut out = Vec::new();
        for t in lifecycle::TABLE {
            if t.automatic
                || !offerable(t.action)
                || !t.kinds.contains(&p.kind)
                || !t.roles.contains(&me.role)
                || seen.contains(&t.action)
            {
                continue;
            }
            seen.push(t.action);
            let data = match t.action {
                Action::Grab => EventData {
                    assignee: Some(me.user.clone()),
                    ..EventData::default()
                },
                _ => EventData::default(),
            };
            let probe = Event {
                id: EventId::random(),
                action: t.action.as_str().to_owned(),
                by: me.user.clone(),
                device: me.device.clone(),
                at: Utc::now(),
                data,
            };
            let needs = needs(t.action, p);
            let refused = if view.read_only {
                Some(Refused {
                    rule: "read_only".into(),
                    reason: "this ticket is read-only for you (it was transferred away)".into(),
                })
            } else {
                match self.policy().check(&me, p, &probe) {
                    Ok(_) => None,
                    Err(f) if matches!(f.rule, schema::Rule::MissingData(_)) => None,
                    Err(f) => Some(Refused {
                        rule: f.rule.name().to_owned(),
                        reason: f.reason,
                    }),
                }
            };
            out.push(Offer {
                action: t.action.as_str().to_owned(),
                needs,
                refused,
            });
        }
        Ok(out)
    }

    /// The work list at `now`: every ticket the device holds.
    ///
    /// # Errors
    /// When the device is not enrolled or the store fails; a ticket that
    /// cannot be read is listed in `unreadable`, never an error.
    pub fn work(&self, now: DateTime<Utc>) -> Result<WorkList, DeviceError> {
        let me = self.identity()?.principal;
        let (rows, pending) = {
            let store = self.lock()?;
            let rows = store::docs(store.conn())?;
            let mut pending: BTreeMap<String, usize> = BTreeMap::new();
            for p in store::pending(store.conn())? {
                *pending.entry(p.doc).or_default() += 1;
            }
            (rows, pending)
        };
        let mut list = WorkList::default();
        for row in rows {
            if row.kind.as_deref().is_some_and(|k| k != "ticket") {
                continue;
            }
            let (doc, load) = self.load(row.id)?;
            if row.kind.is_none() && schema::doc::doc_type(&doc).is_none() {
                // Listed in the inbox, not fetched yet.
                continue;
            }
            let t = match schema::doc::read_ticket(&doc, None) {
                Ok(t) => t,
                Err(e) => {
                    list.unreadable.push(Unreadable {
                        url: row.id.url(),
                        problem: e.to_string(),
                    });
                    continue;
                }
            };
            let official = Projection::official(&t, self.policy());
            let (shown, _) = Projection::with_pending(&t, &me, self.policy());
            let mine = shown.assignee.as_ref() == Some(&me.user)
                || (t.header.kind.is_order() && shown.engineers().contains(&&me.user))
                || (!t.header.kind.is_order() && shown.department == Some(me.department));
            list.items.push(WorkItem {
                url: row.id.url(),
                serial: t.server.serial.map(|s| s.to_string()),
                kind: t.header.kind,
                title: t.header.title.clone(),
                location: t.header.location.clone(),
                status: shown.status.to_string(),
                official_status: official.status.to_string(),
                due: shown.current_due(),
                flags: official
                    .flags(now)
                    .into_iter()
                    .map(|f| f.as_str())
                    .collect(),
                pending: pending.get(&row.id.to_string()).copied().unwrap_or(0),
                mine,
                read_only: row.read_only,
                damaged: load.problems.len(),
            });
        }
        list.items.sort_by(|a, b| {
            let overdue = |w: &WorkItem| !w.flags.contains(&"OVERDUE");
            (overdue(a), a.due.is_none(), a.due, &a.serial).cmp(&(
                overdue(b),
                b.due.is_none(),
                b.due,
                &b.serial,
            ))
        });
        Ok(list)
    }

    /// A household's public file, if the device holds it.
    ///
    /// # Errors
    /// When the store fails; an unreadable file is `Ok(None)` with the
    /// problem logged, never a crash.
    pub fn household(&self, url: DocUrl) -> Result<Option<Household>, DeviceError> {
        let held = store::doc(self.lock()?.conn(), url.id())?.is_some();
        if !held {
            return Ok(None);
        }
        let (doc, _) = self.load(url.id())?;
        match schema::doc::read_household(&doc) {
            Ok(h) => Ok(Some(h)),
            Err(e) => {
                tracing::warn!(%url, error = %e, "household file unreadable");
                Ok(None)
            }
        }
    }
}

/// The fields the form for `action` must collect on a ticket in state `p`:
/// the table's required fields for the row that starts from its state (or
/// the first row), plus the quote a paid completion needs.
fn needs(action: Action, p: &Projection) -> Vec<&'static str> {
    let rows: Vec<_> = lifecycle::rows(action, p.kind).collect();
    let row = rows
        .iter()
        .find(|t| t.from.contains(&p.status))
        .or_else(|| rows.first());
    let mut out: Vec<&'static str> = row
        .map(|t| t.requires.iter().map(|f| Field::key(*f)).collect())
        .unwrap_or_default();
    if action == Action::Complete && p.paid {
        out.push("quote_fen");
    }
    out
}

#[cfg(test)]
mod tests;
