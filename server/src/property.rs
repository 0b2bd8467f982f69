//! A real property (issue 14): setting it up (name, time zone, buildings,
//! units with floor area) and its household register, "one household, one
//! file" (一户一档).
//!
//! The register is a table in the relay's database (`household_files`): it
//! is what the API, the imports and the fee ledger read, and every edit keeps
//! the version before it (`household_history`: who, when, what before and
//! after), so nothing is ever erased. Each household also has its two
//! Automerge documents (DESIGN.md §2–3): the public file (unit, residents'
//! names and roles, notes) that engineers sync, and the private file (phone
//! numbers, the arrears summary) that only the front desk, supervisors,
//! cashiers and managers sync. The relay writes both after the register's
//! transaction commits; a row whose documents are not written yet is
//! `materialised = 0` and `materialise_pending` finishes it (after an
//! import, and at start-up).
//!
//! Imports (CSV and XLSX, preview then all-or-nothing commit) are in
//! `property/import.rs`, the import jobs a page follows with a progress bar
//! in `property/jobs.rs`, the JSON API in `property/http.rs`.

mod documents;
pub(crate) mod http;
pub(crate) mod import;
pub(crate) mod jobs;
mod print;

pub(crate) use documents::{materialise_pending, materialise_pending_with, refresh_arrears};

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use schema::doc::rfc3339;
use schema::{DocId, UserId};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use crate::fees::parse_hundredths;
use crate::state::Relay;
use crate::store::{StoreError, StoreResult, records};

/// A building of the property.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BuildingSpec {
    /// Its short code, e.g. `B1`.
    pub code: String,
    /// Its name, e.g. `1号楼`.
    #[serde(default)]
    pub name: String,
}

/// A unit and its floor area.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnitSpec {
    /// The unit's code, unique in the property, e.g. `B1-1203`.
    pub code: String,
    /// The building's code.
    pub building: String,
    /// Floor area in hundredths of a square metre (89.50 m² is 8950).
    pub area_centi_m2: i64,
}

/// What setting up a property takes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PropertySpec {
    /// The property's name.
    pub name: String,
    /// An IANA time zone; `Asia/Shanghai` when absent.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Its buildings.
    pub buildings: Vec<BuildingSpec>,
    /// Its units.
    pub units: Vec<UnitSpec>,
}

fn bad(msg: impl Into<String>) -> AppError {
    AppError::BadRequest(msg.into())
}

fn valid_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 40
        && s.chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

/// Reads a units CSV (`building,unit,area_m2`, a header line first) into
/// units; every bad line is named.
///
/// # Errors
/// [`AppError::BadRequest`] listing each bad line and column.
pub fn parse_units_csv(text: &str) -> AppResult<Vec<UnitSpec>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let mut units = Vec::new();
    let mut errors = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(format!("line {line}: {e}"));
                continue;
            }
        };
        let (b, u, a) = (
            rec.get(0).unwrap_or(""),
            rec.get(1).unwrap_or(""),
            rec.get(2).unwrap_or(""),
        );
        match parse_hundredths(a).filter(|a| *a > 0) {
            Some(area) => units.push(UnitSpec {
                code: u.to_owned(),
                building: b.to_owned(),
                area_centi_m2: area,
            }),
            None => errors.push(format!(
                "line {line}, column area_m2: {a:?} is not an area in m² with at most two decimals"
            )),
        }
    }
    if errors.is_empty() {
        Ok(units)
    } else {
        Err(bad(errors.join("; ")))
    }
}

/// Sets up the property: name, time zone, buildings and units, in one
/// transaction. A property is set up once; more units come later with
/// [`add_units`].
///
/// # Errors
/// [`AppError::BadRequest`] naming what is wrong (nothing is written);
/// [`AppError::Conflict`] when the property exists; storage errors.
pub async fn setup_property(relay: &Relay, spec: PropertySpec, by: &UserId) -> AppResult<()> {
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad("the property needs a name of 1 to 100 characters"));
    }
    let tz = crate::settings::parse_time_zone(
        spec.time_zone
            .as_deref()
            .unwrap_or(crate::settings::DEFAULT_TIME_ZONE.name()),
    )?;
    check_units(&spec.buildings, &spec.units)?;
    let (by, now) = (by.to_string(), relay.hub.now());
    relay
        .db
        .write(move |tx| {
            let exists: bool =
                tx.query_row("SELECT count(*) > 0 FROM property", [], |r| r.get(0))?;
            if exists {
                return Err(StoreError::Conflict(
                    "the property is already set up; add units instead".into(),
                ));
            }
            tx.execute(
                "INSERT INTO property(id, name, created_by, created_at) VALUES (1, ?1, ?2, ?3)",
                params![name, by, rfc3339(now)],
            )?;
            insert_units(tx, &spec.buildings, &spec.units)?;
            crate::settings::set_time_zone_in(tx, tz)
        })
        .await?;
    Ok(())
}

/// Adds buildings and units to a property that is set up.
///
/// # Errors
/// As [`setup_property`]; [`AppError::Conflict`] for a unit that exists.
pub async fn add_units(
    relay: &Relay,
    buildings: Vec<BuildingSpec>,
    units: Vec<UnitSpec>,
) -> AppResult<()> {
    let known: Vec<BuildingSpec> = relay
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT code, name FROM buildings")?;
            let rows = st.query_map([], |r| {
                Ok(BuildingSpec {
                    code: r.get(0)?,
                    name: r.get(1)?,
                })
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    let all: Vec<BuildingSpec> = known.iter().chain(&buildings).cloned().collect();
    check_units(&all, &units)?;
    relay
        .db
        .write(move |tx| {
            let exists: bool =
                tx.query_row("SELECT count(*) > 0 FROM property", [], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::Conflict("set up the property first".into()));
            }
            insert_units(tx, &buildings, &units)
        })
        .await?;
    Ok(())
}

fn check_units(buildings: &[BuildingSpec], units: &[UnitSpec]) -> AppResult<()> {
    let mut errors = Vec::new();
    let mut codes = BTreeSet::new();
    for b in buildings {
        if !valid_code(&b.code) {
            errors.push(format!("building {:?}: not a valid code", b.code));
        }
        if !codes.insert(b.code.as_str()) {
            errors.push(format!("building {:?} is listed twice", b.code));
        }
    }
    let mut seen = BTreeSet::new();
    for (i, u) in units.iter().enumerate() {
        let n = i + 1;
        if !valid_code(&u.code) {
            errors.push(format!("unit {n}: {:?} is not a valid code", u.code));
        }
        if !codes.contains(u.building.as_str()) {
            errors.push(format!(
                "unit {n} ({}): no building {:?}",
                u.code, u.building
            ));
        }
        if u.area_centi_m2 <= 0 || u.area_centi_m2 > 100_000_000 {
            errors.push(format!("unit {n} ({}): the area must be positive", u.code));
        }
        if !seen.insert(u.code.as_str()) {
            errors.push(format!("unit {n}: {:?} is listed twice", u.code));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(bad(errors.join("; ")))
    }
}

fn insert_units(
    tx: &Transaction<'_>,
    buildings: &[BuildingSpec],
    units: &[UnitSpec],
) -> StoreResult<()> {
    for b in buildings {
        let name = if b.name.trim().is_empty() {
            b.code.clone()
        } else {
            b.name.trim().to_owned()
        };
        tx.execute(
            "INSERT INTO buildings(code, name) VALUES (?1, ?2) ON CONFLICT(code) DO NOTHING",
            params![b.code, name],
        )?;
    }
    let mut st =
        tx.prepare("INSERT INTO units(code, building, area_centi_m2) VALUES (?1, ?2, ?3)")?;
    for u in units {
        st.execute(params![u.code, u.building, u.area_centi_m2])
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    StoreError::Conflict(format!("unit {:?} already exists", u.code))
                }
                e => StoreError::Sqlite(e),
            })?;
    }
    Ok(())
}

/// The property as set up, with its buildings and unit counts; `None` before
/// set-up.
///
/// # Errors
/// Storage errors.
pub(crate) fn property(conn: &Connection) -> StoreResult<Option<serde_json::Value>> {
    let Some(name) = conn
        .query_row("SELECT name FROM property", [], |r| r.get::<_, String>(0))
        .optional()?
    else {
        return Ok(None);
    };
    let mut st = conn.prepare(
        "SELECT b.code, b.name, count(u.code), coalesce(sum(u.area_centi_m2), 0)
         FROM buildings b LEFT JOIN units u ON u.building = b.code GROUP BY b.code ORDER BY b.code",
    )?;
    let buildings = st
        .query_map([], |r| {
            Ok(serde_json::json!({
                "code": r.get::<_, String>(0)?, "name": r.get::<_, String>(1)?,
                "units": r.get::<_, i64>(2)?, "area_centi_m2": r.get::<_, i64>(3)?,
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(serde_json::json!({
        "name": name,
        "time_zone": crate::settings::time_zone_in(conn)?.name(),
        "buildings": buildings,
    })))
}

// ------------------------------------------------------------ households

/// Owner or tenant.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Occupancy {
    /// 业主.
    Owner,
    /// 租户.
    Tenant,
}

impl Occupancy {
    fn as_str(self) -> &'static str {
        match self {
            Occupancy::Owner => "owner",
            Occupancy::Tenant => "tenant",
        }
    }
}

/// A person of the household.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Person {
    /// Name.
    pub name: String,
    /// Owner, tenant, family member.
    #[serde(default)]
    pub relation: String,
    /// Phone number: private (the private file only).
    #[serde(default)]
    pub phone: String,
}

/// A household file as people enter it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HouseholdInput {
    /// The unit's code.
    pub unit: String,
    /// Owner or tenant.
    pub occupancy: Occupancy,
    /// Who lives there (at least one).
    pub residents: Vec<Person>,
    /// Moved in (the property's calendar).
    pub move_in: NaiveDate,
    /// Moved out, when they have.
    #[serde(default)]
    pub move_out: Option<NaiveDate>,
    /// Number plates.
    #[serde(default)]
    pub vehicles: Vec<String>,
    /// Parking spaces.
    #[serde(default)]
    pub parking: Vec<String>,
    /// Notes (access, pets, times to avoid).
    #[serde(default)]
    pub notes: String,
}

impl HouseholdInput {
    /// What is wrong with it, as (field, message) pairs.
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.unit.trim().is_empty() {
            out.push(("unit", "the unit is required".to_owned()));
        }
        if self.residents.is_empty() || self.residents.iter().any(|r| r.name.trim().is_empty()) {
            out.push(("name", "every resident needs a name".to_owned()));
        }
        for r in &self.residents {
            let digits = r.phone.chars().filter(char::is_ascii_digit).count();
            let ok_chars = r
                .phone
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '+' | '(' | ')'));
            if !r.phone.is_empty() && (!ok_chars || !(5..=15).contains(&digits)) {
                out.push(("phone", format!("{:?} is not a phone number", r.phone)));
            }
        }
        if self.move_out.is_some_and(|o| o < self.move_in) {
            out.push(("move_out", "moving out before moving in".to_owned()));
        }
        if self.notes.chars().count() > 2000 {
            out.push(("notes", "notes are limited to 2,000 characters".to_owned()));
        }
        out
    }
}

/// One stored household file.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct HouseholdFile {
    pub(crate) id: DocId,
    pub(crate) private: DocId,
    pub(crate) building: String,
    pub(crate) area_centi_m2: i64,
    pub(crate) version: i64,
    pub(crate) updated_by: String,
    pub(crate) updated_at: String,
    #[serde(flatten)]
    pub(crate) data: HouseholdInput,
}

fn doc_id(s: String) -> StoreResult<DocId> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{s} is not a document id")))
}

const FILE_COLUMNS: &str = "f.doc_id, f.private_doc, u.building, u.area_centi_m2, f.version, f.updated_by, f.updated_at, f.data";

fn file_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

type FileRow = (String, String, String, i64, i64, String, String, String);

/// A household's open bills as its private file shows them: item, period, fen.
type Arrears = Vec<(String, String, i64)>;

fn to_file(row: FileRow) -> StoreResult<HouseholdFile> {
    let (id, private, building, area, version, by, at, data) = row;
    Ok(HouseholdFile {
        id: doc_id(id)?,
        private: doc_id(private)?,
        building,
        area_centi_m2: area,
        version,
        updated_by: by,
        updated_at: at,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

/// One household file by its public document's id.
///
/// # Errors
/// Storage errors.
pub(crate) fn household_file(conn: &Connection, id: DocId) -> StoreResult<Option<HouseholdFile>> {
    conn.query_row(
        &format!(
            "SELECT {FILE_COLUMNS} FROM household_files f JOIN units u ON u.code = f.unit WHERE f.doc_id = ?1"
        ),
        [id.to_string()],
        file_row,
    )
    .optional()?
    .map(to_file)
    .transpose()
}

/// Every household file, by unit.
///
/// # Errors
/// Storage errors.
pub(crate) fn household_files(conn: &Connection) -> StoreResult<Vec<HouseholdFile>> {
    let mut st = conn.prepare(&format!(
        "SELECT {FILE_COLUMNS} FROM household_files f JOIN units u ON u.code = f.unit ORDER BY f.unit, f.move_in"
    ))?;
    let rows = st.query_map([], file_row)?.collect::<Result<Vec<_>, _>>()?;
    rows.into_iter().map(to_file).collect()
}

/// Writes new household files in one transaction (all or none) and returns
/// their ids; the documents follow ([`materialise_pending`]).
pub(crate) fn insert_files(
    tx: &Transaction<'_>,
    inputs: &[HouseholdInput],
    by: &str,
    now: DateTime<Utc>,
) -> StoreResult<Vec<DocId>> {
    let at = rfc3339(now);
    let mut unit = tx.prepare_cached("SELECT building FROM units WHERE code = ?1")?;
    let mut file = tx.prepare_cached(
        "INSERT INTO household_files(doc_id, private_doc, unit, occupancy, move_in, move_out, data, version, updated_by, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9)",
    )?;
    let mut history = tx.prepare_cached(
        "INSERT INTO household_history(doc_id, version, at, by, what, before, after) VALUES (?1, 1, ?2, ?3, 'created', NULL, ?4)",
    )?;
    let mut ids = Vec::with_capacity(inputs.len());
    for (i, h) in inputs.iter().enumerate() {
        let building: Option<String> = unit.query_row([&h.unit], |r| r.get(0)).optional()?;
        let Some(building) = building else {
            return Err(StoreError::Conflict(format!(
                "household {}: no unit {:?} in the property",
                i + 1,
                h.unit
            )));
        };
        let (public, private) = (DocId::random(), DocId::random());
        let data = serde_json::to_string(h).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        file.execute(params![
            public.to_string(),
            private.to_string(),
            h.unit,
            h.occupancy.as_str(),
            h.move_in.to_string(),
            h.move_out.map(|d| d.to_string()),
            data,
            by,
            at
        ])?;
        history.execute(params![public.to_string(), at, by, data])?;
        records::insert_household(tx, public, private, &building, &h.unit)?;
        ids.push(public);
    }
    Ok(ids)
}

/// Creates household files (all or none) and writes their documents.
///
/// # Errors
/// [`AppError::BadRequest`] naming each bad household and field (nothing
/// is written); storage errors.
pub(crate) async fn create_households(
    relay: &Relay,
    inputs: Vec<HouseholdInput>,
    by: &UserId,
) -> AppResult<Vec<DocId>> {
    create_households_with(relay, inputs, by, &|_, _| {}).await
}

/// [`create_households`], telling `progress` how many households have their
/// documents written, of how many (the register's rows are written first,
/// all in one transaction).
///
/// # Errors
/// As [`create_households`].
pub(crate) async fn create_households_with(
    relay: &Relay,
    inputs: Vec<HouseholdInput>,
    by: &UserId,
    progress: &(dyn Fn(usize, usize) + Send + Sync),
) -> AppResult<Vec<DocId>> {
    let mut errors = Vec::new();
    for (i, h) in inputs.iter().enumerate() {
        for (field, msg) in h.problems() {
            errors.push(format!("household {}, {field}: {msg}", i + 1));
        }
    }
    if !errors.is_empty() {
        return Err(bad(errors.join("; ")));
    }
    let (by, now) = (by.to_string(), relay.hub.now());
    let ids = relay
        .db
        .write(move |tx| insert_files(tx, &inputs, &by, now))
        .await?;
    materialise_pending_with(relay, progress).await?;
    Ok(ids)
}

/// Edits a household file: the new version replaces the current one only if
/// `expected_version` is still current, and the one before is kept.
///
/// # Errors
/// [`AppError::BadRequest`] for bad fields; [`AppError::NotFound`];
/// [`AppError::Conflict`] when someone edited it meanwhile; storage errors.
pub(crate) async fn edit_household(
    relay: &Relay,
    id: DocId,
    input: HouseholdInput,
    expected_version: i64,
    by: &UserId,
) -> AppResult<i64> {
    let problems = input.problems();
    if !problems.is_empty() {
        let msgs: Vec<String> = problems.iter().map(|(f, m)| format!("{f}: {m}")).collect();
        return Err(bad(msgs.join("; ")));
    }
    let (by, now) = (by.to_string(), relay.hub.now());
    let version = relay
        .db
        .write(move |tx| {
            let current: Option<(i64, String)> = tx
                .query_row(
                    "SELECT version, data FROM household_files WHERE doc_id = ?1",
                    [id.to_string()],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((version, before)) = current else {
                return Err(StoreError::Conflict(format!("no household {id}")));
            };
            if version != expected_version {
                return Err(StoreError::Conflict(format!(
                    "the household file is at version {version}, not {expected_version}: someone edited it meanwhile; reload and edit again"
                )));
            }
            let building: Option<String> = tx
                .query_row(
                    "SELECT building FROM units WHERE code = ?1",
                    [&input.unit],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(building) = building else {
                return Err(StoreError::Conflict(format!("no unit {:?}", input.unit)));
            };
            // The household index (search, tickets) follows a change of unit.
            tx.execute(
                "UPDATE households SET building = ?2, unit = ?3 WHERE doc_id = ?1",
                params![id.to_string(), building, input.unit],
            )?;
            let after =
                serde_json::to_string(&input).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let next = version + 1;
            tx.execute(
                "UPDATE household_files SET unit = ?2, occupancy = ?3, move_in = ?4, move_out = ?5, data = ?6,
                 version = ?7, updated_by = ?8, updated_at = ?9, materialised = 0 WHERE doc_id = ?1",
                params![
                    id.to_string(),
                    input.unit,
                    input.occupancy.as_str(),
                    input.move_in.to_string(),
                    input.move_out.map(|d| d.to_string()),
                    after,
                    next,
                    by,
                    rfc3339(now)
                ],
            )?;
            tx.execute(
                "INSERT INTO household_history(doc_id, version, at, by, what, before, after) VALUES (?1, ?2, ?3, ?4, 'edited', ?5, ?6)",
                params![id.to_string(), next, rfc3339(now), by, before, after],
            )?;
            Ok(next)
        })
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) if m.starts_with("no household") => AppError::NotFound(m),
            e => e.into(),
        })?;
    materialise_pending(relay).await?;
    Ok(version)
}

/// A household file's history, oldest first: version, when, who, what, the
/// file before and after.
///
/// # Errors
/// Storage errors.
pub(crate) fn history(conn: &Connection, id: DocId) -> StoreResult<Vec<serde_json::Value>> {
    let mut st = conn.prepare(
        "SELECT version, at, by, what, before, after FROM household_history WHERE doc_id = ?1 ORDER BY version",
    )?;
    let rows = st
        .query_map([id.to_string()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows
        .into_iter()
        .map(|(v, at, by, what, before, after)| {
            let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap_or_default();
            serde_json::json!({
                "version": v, "at": at, "by": by, "what": what,
                "before": before.as_deref().map(parse), "after": parse(&after),
            })
        })
        .collect())
}

/// A household's tickets as the register has them now (report 17).
pub(crate) fn tickets_now(c: &Connection, id: DocId) -> StoreResult<Vec<serde_json::Value>> {
    let mut st = c.prepare(
        "SELECT doc_id, kind, status, serial, title, received_at,
           json_extract(projection, '$.satisfaction') FROM tickets
         WHERE household = ?1 OR household = ?2 ORDER BY received_at",
    )?;
    let rows = st
        .query_map([id.url().to_string(), id.to_string()], |r| {
            Ok(serde_json::json!({
                "id": r.get::<_, String>(0)?, "kind": r.get::<_, String>(1)?,
                "status": r.get::<_, String>(2)?, "serial": r.get::<_, Option<String>>(3)?,
                "title": r.get::<_, String>(4)?, "received_at": r.get::<_, String>(5)?,
                "satisfaction": r.get::<_, Option<String>>(6)?,
            }))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// A household's tickets received by `cut`, each as the relay had judged it
/// then (from the reports' read model, with the verdicts' times).
pub(crate) fn tickets_at(
    c: &Connection,
    id: DocId,
    cut: DateTime<Utc>,
    policy: &schema::Policy,
) -> StoreResult<Vec<serde_json::Value>> {
    let mut st = c.prepare(
        "SELECT t.doc_id, m.body FROM tickets t JOIN ticket_models m ON m.doc_id = t.doc_id
         WHERE t.household = ?1 OR t.household = ?2",
    )?;
    let rows = st
        .query_map([id.url().to_string(), id.to_string()], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::new();
    for (doc, body) in rows {
        let ticket: schema::Ticket = serde_json::from_str(&body)
            .map_err(|e| StoreError::Corrupt(format!("the read model of {doc}: {e}")))?;
        let ticket = crate::reports::as_of(&ticket, cut);
        let p = schema::Projection::official(&ticket, policy);
        let Some(received) = p.received_at.filter(|r| *r <= cut) else {
            continue;
        };
        out.push((
            received,
            serde_json::json!({
                "id": doc, "kind": p.kind.as_str(), "status": p.status.as_str(),
                "serial": ticket.server.serial.map(|s| s.to_string()),
                "title": ticket.header.title, "received_at": rfc3339(received),
                "satisfaction": p.satisfaction,
            }),
        ));
    }
    out.sort_by_key(|(received, _)| *received);
    Ok(out.into_iter().map(|(_, v)| v).collect())
}

/// Finds household files by a caller's phone number, a unit, a name or a
/// number plate (the contact form's look-up). Numbers are matched only when
/// `by_phone` (the asker may read private files): to anyone else a search
/// would tell whose number it is.
///
/// # Errors
/// Storage errors.
pub(crate) fn find(conn: &Connection, q: &str, by_phone: bool) -> StoreResult<Vec<HouseholdFile>> {
    let needle = q.trim().to_lowercase();
    let digits: String = needle.chars().filter(char::is_ascii_digit).collect();
    let mut hits: BTreeMap<String, HouseholdFile> = BTreeMap::new();
    for f in household_files(conn)? {
        let d = &f.data;
        let matched = d.unit.to_lowercase() == needle
            || d.residents.iter().any(|r| {
                r.name.to_lowercase().contains(&needle)
                    || (by_phone
                        && digits.len() >= 4
                        && r.phone
                            .chars()
                            .filter(char::is_ascii_digit)
                            .collect::<String>()
                            .contains(&digits))
            })
            || d.vehicles
                .iter()
                .any(|v| v.to_lowercase().replace(' ', "") == needle.replace(' ', ""));
        if matched {
            hits.insert(f.id.to_string(), f);
        }
    }
    Ok(hits.into_values().collect())
}
