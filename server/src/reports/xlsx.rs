//! A report as an XLSX workbook: the same blocks as the CSV (the header with
//! what the period means, the summary, each table under its title, the
//! "changes since the cut-off"), with column labels in Chinese and English
//! and numbers as numbers, so a spreadsheet can sum them.

use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use serde_json::Value;

use super::{Report, Table, plain};

fn both(zh: &str, en: &str) -> String {
    if zh.is_empty() {
        en.to_owned()
    } else {
        format!("{zh} / {en}")
    }
}

fn cell(ws: &mut Worksheet, row: u32, col: u16, v: &Value) -> Result<(), XlsxError> {
    match v {
        Value::Null => {}
        #[allow(
            clippy::cast_precision_loss,
            reason = "fen and counts stay far below 2^53"
        )]
        Value::Number(n) => {
            let x = n
                .as_i64()
                .map_or_else(|| n.as_f64().unwrap_or(0.0), |i| i as f64);
            ws.write_number(row, col, x)?;
        }
        other => {
            ws.write_string(row, col, plain(other))?;
        }
    }
    Ok(())
}

fn table(ws: &mut Worksheet, row: &mut u32, t: &Table, bold: &Format) -> Result<(), XlsxError> {
    *row += 1;
    ws.write_string_with_format(*row, 0, both(&t.title_zh, &t.title), bold)?;
    *row += 1;
    for (c, col) in (0u16..).zip(&t.columns) {
        ws.write_string_with_format(*row, c, both(col.zh, col.label), bold)?;
    }
    for r in &t.rows {
        *row += 1;
        for (c, v) in (0u16..).zip(r) {
            cell(ws, *row, c, v)?;
        }
    }
    *row += 1;
    Ok(())
}

/// The report as the bytes of an XLSX workbook with one sheet.
///
/// # Errors
/// When the workbook cannot be written (it is made in memory).
pub(crate) fn to_xlsx(r: &Report) -> Result<Vec<u8>, XlsxError> {
    let mut wb = Workbook::new();
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet();
    ws.set_column_width(0, 28)?;
    let mut row = 0u32;
    let mut line = |ws: &mut Worksheet, k: &str, v: &Value| -> Result<(), XlsxError> {
        ws.write_string_with_format(row, 0, k, &bold)?;
        cell(ws, row, 1, v)?;
        row += 1;
        Ok(())
    };
    line(ws, "report", &Value::String(both(r.title_zh, r.title)))?;
    line(ws, "period", &Value::String(both(r.period.zh, r.period.en)))?;
    line(ws, "time_zone", &Value::String(r.time_zone.into()))?;
    line(ws, "as_of", &Value::String(r.as_of.clone()))?;
    line(ws, "from", &Value::String(r.from.clone()))?;
    for s in &r.summary {
        line(ws, &both(&s.zh, &s.label), &s.value)?;
    }
    for t in &r.tables {
        table(ws, &mut row, t, &bold)?;
    }
    if !r.changes_since.is_empty() {
        row += 1;
        ws.write_string_with_format(
            row,
            0,
            "截止后到达（不计入以上数字） / Changes since the cut-off (not in the figures above)",
            &bold,
        )?;
        row += 1;
        for t in &r.changes_since {
            table(ws, &mut row, t, &bold)?;
        }
    }
    wb.save_to_buffer()
}
