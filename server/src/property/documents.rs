//! A household's two documents, written by the relay from the register: the
//! public file (unit, residents' names and roles, notes) and the private one
//! (phones, the arrears summary from the fee ledger). They follow the
//! register's transactions, never lead them.

use futures_util::StreamExt;
use rusqlite::params;
use schema::household::{Arrear, Contact, Household, HouseholdPrivate, Resident as DocResident};
use schema::inbox::DocKind;
use schema::{DocId, Fen};

use super::{
    Arrears, FILE_COLUMNS, HouseholdFile, file_row, household_file, household_files, to_file,
};
use crate::error::{AppError, AppResult};
use crate::state::Relay;
use crate::store::{StoreError, StoreResult};

/// Writes the documents of every household file whose register row is newer
/// than its documents: the public file (unit, residents' names, notes) and
/// the private file (phones, the arrears summary).
///
/// # Errors
/// Storage errors; a document the relay cannot write.
pub(crate) async fn materialise_pending(relay: &Relay) -> AppResult<usize> {
    materialise_pending_with(relay, &|_, _| {}).await
}

/// [`materialise_pending`], telling `progress` how many households have
/// their documents written, of how many.
///
/// # Errors
/// As [`materialise_pending`].
pub(crate) async fn materialise_pending_with(
    relay: &Relay,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> AppResult<usize> {
    let pending: Vec<(HouseholdFile, Arrears)> = relay
        .db
        .read(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {FILE_COLUMNS} FROM household_files f JOIN units u ON u.code = f.unit WHERE f.materialised = 0"
            ))?;
            let rows = st.query_map([], file_row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|r| {
                    let f = to_file(r)?;
                    let arrears = crate::fees::ledger::arrears_summary(c, f.id)?;
                    Ok((f, arrears))
                })
                .collect::<StoreResult<Vec<_>>>()
        })
        .await?;
    let n = pending.len();
    // Documents are independent: several at once share the store's group
    // commits (one fsync for many), which is what makes 2,000 take seconds.
    let mut writes = futures_util::stream::iter(pending.into_iter().map(|(f, arrears)| async move {
        let json =
            serde_json::to_string(&arrears).map_err(|e| AppError::Internal(e.to_string()))?;
        write_documents(relay, &f, arrears).await?;
        let (id, version) = (f.id, f.version);
        relay
            .db
            .write(move |tx| {
                tx.execute(
                    "UPDATE household_files SET materialised = 1, arrears_doc = ?3 WHERE doc_id = ?1 AND version = ?2",
                    params![id.to_string(), version, json],
                )?;
                Ok(())
            })
            .await?;
        Ok::<(), AppError>(())
    }))
    .buffer_unordered(WRITERS_AT_ONCE);
    let mut done = 0;
    progress(0, n);
    while let Some(r) = writes.next().await {
        r?;
        done += 1;
        progress(done, n);
        if done % 500 == 0 {
            tracing::info!(written = done, of = n, "household documents written");
        }
    }
    Ok(n)
}

/// Household documents written at once by [`materialise_pending`].
const WRITERS_AT_ONCE: usize = 32;

async fn write_documents(
    relay: &Relay,
    f: &HouseholdFile,
    arrears: Vec<(String, String, i64)>,
) -> AppResult<()> {
    let public = Household {
        building: f.building.clone(),
        unit: f.data.unit.clone(),
        residents: f
            .data
            .residents
            .iter()
            .map(|r| DocResident {
                name: r.name.clone(),
                relation: if r.relation.is_empty() {
                    f.data.occupancy.as_str().to_owned()
                } else {
                    r.relation.clone()
                },
            })
            .collect(),
        access_notes: f.data.notes.clone(),
        equipment: Vec::new(),
        private: Some(f.private.url()),
    };
    relay
        .hub
        .relay_write(f.id, Some(DocKind::Household), move |t| {
            schema::doc::create_household(t, &public)
        })
        .await?;
    write_private(relay, f, arrears).await
}

async fn write_private(
    relay: &Relay,
    f: &HouseholdFile,
    arrears: Vec<(String, String, i64)>,
) -> AppResult<()> {
    let private = HouseholdPrivate {
        household: f.id.url(),
        contacts: f
            .data
            .residents
            .iter()
            .filter(|r| !r.phone.is_empty())
            .map(|r| Contact {
                name: r.name.clone(),
                phone: r.phone.clone(),
            })
            .collect(),
        arrears: arrears
            .into_iter()
            .map(|(item, period, fen)| Arrear {
                item,
                period,
                amount: Fen::new(fen),
            })
            .collect(),
    };
    relay
        .hub
        .relay_write(f.private, Some(DocKind::HouseholdPrivate), move |t| {
            schema::doc::create_household_private(t, &private)
        })
        .await?;
    Ok(())
}

/// The fee ledger changed: rewrites the private file of `only` (or of every
/// household) whose arrears summary is not what the ledger says now. Files
/// whose summary is unchanged (most, after a bill run paid by credit) are
/// not touched.
///
/// # Errors
/// Storage errors; a document the relay cannot write.
pub(crate) async fn refresh_arrears(relay: &Relay, only: Option<DocId>) -> AppResult<usize> {
    let stale: Vec<(HouseholdFile, Arrears, String)> = relay
        .db
        .read(move |c| {
            let files = match only {
                Some(id) => household_file(c, id)?.into_iter().collect(),
                None => household_files(c)?,
            };
            let mut out = Vec::new();
            for f in files {
                let arrears = crate::fees::ledger::arrears_summary(c, f.id)?;
                let json = serde_json::to_string(&arrears)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let written: String = c.query_row(
                    "SELECT arrears_doc FROM household_files WHERE doc_id = ?1",
                    [f.id.to_string()],
                    |r| r.get(0),
                )?;
                if written != json {
                    out.push((f, arrears, json));
                }
            }
            Ok(out)
        })
        .await?;
    let n = stale.len();
    for (f, arrears, json) in stale {
        write_private(relay, &f, arrears).await?;
        relay
            .db
            .write(move |tx| {
                tx.execute(
                    "UPDATE household_files SET arrears_doc = ?2 WHERE doc_id = ?1",
                    params![f.id.to_string(), json],
                )?;
                Ok(())
            })
            .await?;
    }
    Ok(n)
}
