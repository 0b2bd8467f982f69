//! Household imports from CSV or XLSX: read every row, check every row, and
//! either refuse the whole file naming each bad row and column, or commit
//! every household in one transaction. A preview does all of it but the
//! commit.
//!
//! The first row names the columns, in English or Chinese (any order):
//! `unit`/`单元`, `occupancy`/`类型` (owner, tenant, 业主, 租户), `name`/`姓名`,
//! `relation`/`关系`, `phone`/`电话`, `move_in`/`入住日期`, `move_out`/`迁出日期`,
//! `vehicles`/`车牌`, `parking`/`车位`, `notes`/`备注`. Several residents,
//! plates or spaces in one cell are separated by `;` (names and phones pair
//! up in order). Rows are numbered as a spreadsheet shows them: the header
//! is row 1.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};
use chrono::NaiveDate;
use serde::Serialize;

use super::{HouseholdInput, Occupancy, Person};
use crate::error::{AppError, AppResult};

/// One problem of one row.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub(crate) struct RowError {
    /// The row as the spreadsheet numbers it (the header is row 1).
    pub(crate) row: usize,
    /// The column's header as written in the file.
    pub(crate) column: String,
    pub(crate) message: String,
}

/// What an import would do, or why it cannot.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Preview {
    pub(crate) rows: usize,
    pub(crate) households: Vec<HouseholdInput>,
    pub(crate) errors: Vec<RowError>,
}

/// Where an import is, for whoever follows it (the import jobs).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stage {
    /// Reading the file's cells.
    Parsing,
    /// Checking rows against the property (`done` of `total` rows).
    Checking,
    /// Writing the register and the households' documents (`done` of
    /// `total` households).
    Writing,
}

/// Told how far an import got: the stage, done, total.
pub(crate) type Progress<'a> = &'a (dyn Fn(Stage, usize, usize) + Send + Sync);

/// Rows checked between two progress reports.
const REPORT_EVERY: usize = 100;

/// The file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Xlsx,
}

impl Format {
    /// Guesses from a file name or a content type.
    pub(crate) fn guess(name: &str) -> Self {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".xlsx") || n.contains("spreadsheetml") {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }
}

const COLUMNS: &[(&str, &str)] = &[
    ("unit", "单元"),
    ("occupancy", "类型"),
    ("name", "姓名"),
    ("relation", "关系"),
    ("phone", "电话"),
    ("move_in", "入住日期"),
    ("move_out", "迁出日期"),
    ("vehicles", "车牌"),
    ("parking", "车位"),
    ("notes", "备注"),
];

/// Reads the file's cells as text, row by row (the header included).
fn cells(bytes: &[u8], format: Format) -> AppResult<Vec<Vec<String>>> {
    match format {
        Format::Csv => {
            let text = std::str::from_utf8(bytes).map_err(|_| {
                AppError::BadRequest("the CSV file is not UTF-8 text (save it as CSV UTF-8)".into())
            })?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let mut rdr = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(text.as_bytes());
            let mut out = Vec::new();
            for (i, rec) in rdr.records().enumerate() {
                let rec = rec.map_err(|e| {
                    AppError::BadRequest(format!("row {}: not readable as CSV: {e}", i + 1))
                })?;
                out.push(rec.iter().map(|c| c.trim().to_owned()).collect());
            }
            Ok(out)
        }
        Format::Xlsx => {
            let mut book = Xlsx::new(Cursor::new(bytes.to_vec())).map_err(|e| {
                AppError::BadRequest(format!("not readable as an XLSX workbook: {e}"))
            })?;
            let range = book
                .worksheet_range_at(0)
                .ok_or_else(|| AppError::BadRequest("the workbook has no sheet".into()))?
                .map_err(|e| AppError::BadRequest(format!("the first sheet is unreadable: {e}")))?;
            Ok(range
                .rows()
                .map(|r| r.iter().map(cell_text).collect())
                .collect())
        }
    }
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.trim().to_owned(),
        Data::Int(i) => i.to_string(),
        #[allow(
            clippy::cast_possible_truncation,
            reason = "checked to be a whole number in range"
        )]
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => (*f as i64).to_string(),
        Data::Float(f) => f.to_string(),
        Data::Bool(b) => b.to_string(),
        Data::DateTime(dt) => excel_date(dt.as_f64()),
        Data::Error(e) => format!("#{e:?}"),
    }
}

/// An Excel date serial (days since 1899-12-30) as `YYYY-MM-DD`.
fn excel_date(serial: f64) -> String {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "a day count, floored and range-checked"
    )]
    let days = serial.floor() as i64;
    NaiveDate::from_ymd_opt(1899, 12, 30)
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(days)))
        .filter(|_| (0..=2_958_465).contains(&days))
        .map_or_else(|| serial.to_string(), |d| d.to_string())
}

fn split(s: &str) -> Vec<String> {
    s.split([';', '；'])
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_owned)
        .collect()
}

fn date(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
        .ok()
}

/// Reads and checks the file against the property's units; nothing is written.
#[cfg(test)]
pub(crate) fn preview(
    bytes: &[u8],
    format: Format,
    units: &BTreeSet<String>,
) -> AppResult<Preview> {
    preview_with(bytes, format, units, &|_, _, _| {})
}

/// [`preview`], telling `progress` how far it got.
pub(crate) fn preview_with(
    bytes: &[u8],
    format: Format,
    units: &BTreeSet<String>,
    progress: Progress<'_>,
) -> AppResult<Preview> {
    progress(Stage::Parsing, 0, 0);
    let rows = cells(bytes, format)?;
    let Some((header, body)) = rows.split_first() else {
        return Err(AppError::BadRequest("the file is empty".into()));
    };
    let mut index: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    for (i, h) in header.iter().enumerate() {
        let h_norm = h.trim().to_lowercase();
        if let Some((key, _)) = COLUMNS
            .iter()
            .find(|(en, zh)| *en == h_norm || *zh == h.trim())
        {
            index.insert(key, (i, h.trim().to_owned()));
        }
    }
    let missing: Vec<&str> = ["unit", "occupancy", "name", "move_in"]
        .into_iter()
        .filter(|k| !index.contains_key(k))
        .collect();
    if !missing.is_empty() {
        return Err(AppError::BadRequest(format!(
            "row 1: the header lacks the column(s) {} (see the import template)",
            missing.join(", ")
        )));
    }
    let mut out = Preview {
        rows: 0,
        households: Vec::new(),
        errors: Vec::new(),
    };
    let mut seen_units: BTreeMap<String, usize> = BTreeMap::new();
    for (i, row) in body.iter().enumerate() {
        let n = i + 2;
        if i % REPORT_EVERY == 0 {
            progress(Stage::Checking, i, body.len());
        }
        if row.iter().all(String::is_empty) {
            continue;
        }
        out.rows += 1;
        let get = |k: &str| {
            index
                .get(k)
                .and_then(|(c, _)| row.get(*c))
                .map_or("", String::as_str)
        };
        let col = |k: &str| {
            index
                .get(k)
                .map_or_else(|| k.to_owned(), |(_, h)| h.clone())
        };
        let mut errs = Vec::new();
        let mut err = |k: &str, m: String| {
            errs.push(RowError {
                row: n,
                column: col(k),
                message: m,
            });
        };
        let unit = get("unit").to_owned();
        if unit.is_empty() {
            err("unit", "the unit is required".into());
        } else if !units.contains(&unit) {
            err("unit", format!("no unit {unit:?} in the property"));
        } else if let Some(first) = seen_units.get(&unit).filter(|_| get("move_out").is_empty()) {
            err(
                "unit",
                format!("unit {unit:?} already has a current household on row {first}"),
            );
        }
        let occupancy = match get("occupancy").to_lowercase().as_str() {
            "owner" | "业主" => Some(Occupancy::Owner),
            "tenant" | "租户" => Some(Occupancy::Tenant),
            other => {
                err(
                    "occupancy",
                    format!("{other:?} is not owner/业主 or tenant/租户"),
                );
                None
            }
        };
        let names = split(get("name"));
        let phones = split(get("phone"));
        let relations = split(get("relation"));
        if names.is_empty() {
            err("name", "at least one resident's name is required".into());
        }
        if phones.len() > names.len() {
            err("phone", "more phone numbers than names".into());
        }
        let move_in = date(get("move_in"));
        if move_in.is_none() {
            err(
                "move_in",
                format!("{:?} is not a date (YYYY-MM-DD)", get("move_in")),
            );
        }
        let move_out = if get("move_out").is_empty() {
            None
        } else {
            let d = date(get("move_out"));
            if d.is_none() {
                err(
                    "move_out",
                    format!("{:?} is not a date (YYYY-MM-DD)", get("move_out")),
                );
            }
            d
        };
        if let (Some(occupancy), Some(move_in)) = (occupancy, move_in) {
            let h = HouseholdInput {
                unit: unit.clone(),
                occupancy,
                residents: names
                    .iter()
                    .enumerate()
                    .map(|(j, name)| Person {
                        name: name.clone(),
                        relation: relations.get(j).cloned().unwrap_or_default(),
                        phone: phones.get(j).cloned().unwrap_or_default(),
                    })
                    .collect(),
                move_in,
                move_out,
                vehicles: split(get("vehicles")),
                parking: split(get("parking")),
                notes: get("notes").to_owned(),
            };
            for (field, msg) in h.problems() {
                if !(field == "name" && names.is_empty()) {
                    err(field, msg);
                }
            }
            if errs.is_empty() {
                out.households.push(h);
            }
        }
        if !unit.is_empty() && get("move_out").is_empty() {
            seen_units.entry(unit).or_insert(n);
        }
        out.errors.extend(errs);
    }
    progress(Stage::Checking, body.len(), body.len());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::Format as Format_;
    use super::*;

    fn units() -> BTreeSet<String> {
        ["T1-101", "T1-102", "T1-103"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn good_rows_read_in_either_language() {
        let csv = "单元,类型,姓名,电话,入住日期,车牌,车位\n\
                   T1-101,业主,王芳;王军,13912345678;13800001111,2025-03-01,沪A12345,P-7\n\
                   T1-102,tenant,Li Min,,2026/01/17,,\n";
        let p = preview(csv.as_bytes(), Format::Csv, &units()).unwrap();
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        assert_eq!(p.households.len(), 2);
        assert_eq!(p.households[0].residents[1].phone, "13800001111");
        assert_eq!(p.households[0].parking, ["P-7"]);
        assert_eq!(p.households[1].occupancy, Occupancy::Tenant);
    }

    #[test]
    fn every_bad_row_is_named_with_its_column() {
        let csv = "unit,occupancy,name,phone,move_in,move_out\n\
                   T1-101,owner,Wang,139,2025-03-01,\n\
                   T9-999,owner,Li,,2025-03-01,\n\
                   T1-102,landlord,,,yesterday,\n\
                   T1-101,owner,Zhao,,2025-04-01,\n\
                   T1-103,owner,Sun,,2025-05-01,2025-04-01\n";
        let p = preview(csv.as_bytes(), Format::Csv, &units()).unwrap();
        let got: Vec<(usize, &str)> = p
            .errors
            .iter()
            .map(|e| (e.row, e.column.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (2, "phone"),
                (3, "unit"),
                (4, "occupancy"),
                (4, "name"),
                (4, "move_in"),
                (5, "unit"),
                (6, "move_out"),
            ],
            "{:#?}",
            p.errors
        );
    }

    #[test]
    fn an_xlsx_sheet_reads_like_csv_dates_and_numbers_included() {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
        let mut wb = Workbook::new();
        let ws = wb.add_worksheet();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        for (c, h) in (0u16..).zip(["单元", "类型", "姓名", "电话", "入住日期"]) {
            ws.write_string(0, c, h).unwrap();
        }
        ws.write_string(1, 0, "T1-101").unwrap();
        ws.write_string(1, 1, "业主").unwrap();
        ws.write_string(1, 2, "王芳").unwrap();
        // A phone typed as a number, a move-in typed as a date.
        ws.write_number(1, 3, 13_912_345_678.0).unwrap();
        let d = ExcelDateTime::from_ymd(2025, 3, 1).unwrap();
        ws.write_datetime_with_format(1, 4, &d, &date).unwrap();
        ws.write_string(2, 0, "T1-999").unwrap();
        ws.write_string(2, 1, "租户").unwrap();
        ws.write_string(2, 2, "李敏").unwrap();
        ws.write_string(2, 4, "2025-03-01").unwrap();
        let bytes = wb.save_to_buffer().unwrap();
        let p = preview(&bytes, Format_::Xlsx, &units()).unwrap();
        assert_eq!(p.households.len(), 1);
        let h = &p.households[0];
        assert_eq!(h.residents[0].phone, "13912345678");
        assert_eq!(h.move_in, NaiveDate::from_ymd_opt(2025, 3, 1).unwrap());
        assert_eq!(
            p.errors,
            [RowError {
                row: 3,
                column: "单元".into(),
                message: "no unit \"T1-999\" in the property".into()
            }]
        );
    }

    #[test]
    fn a_header_without_required_columns_is_refused() {
        let e = preview(b"unit,name\nT1-101,Wang\n", Format::Csv, &units()).unwrap_err();
        assert!(e.to_string().contains("occupancy"), "{e}");
    }
}
