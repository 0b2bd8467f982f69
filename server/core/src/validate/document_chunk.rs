//! Measuring a whole-document chunk before automerge loads it: how many
//! bytes its columns inflate to, how many changes and operations it holds.
//! Automerge's columns are run-length encoded and may be deflated, so a
//! chunk of a few kilobytes can claim gigabytes or a billion operations;
//! these are counted from the column metadata and the run lengths, with
//! every inflation capped, and nothing is materialised.
//!
//! Layout (automerge's storage format): magic, checksum, type 0, LEB128
//! length, then actors, heads, the change columns' and the operation
//! columns' metadata (spec, length), the change column data, the operation
//! column data, and the head indices.

use std::io::Read;

/// What a document chunk holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Measure {
    /// The column data's size once inflated.
    pub bytes: u64,
    /// Changes (rows of the change columns).
    pub changes: u64,
    /// Operations (rows of the operation columns).
    pub ops: u64,
}

/// The bounds a document chunk must stay within.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    pub bytes: u64,
    pub changes: u64,
    pub ops: u64,
}

const DEFLATE: u32 = 0b1000;
/// The change columns' actor column: one row per change.
const CHANGE_ACTOR: u32 = 0x01;
/// The operation columns' action column: one row per operation.
const OP_ACTION: u32 = 0x42;

/// Reads LEB128 numbers and byte runs off a slice, never past its end.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self(bytes)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "a length is too long".to_owned())?;
        if n > self.0.len() {
            return Err("the chunk is shorter than it says".into());
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    pub(crate) fn uleb(&mut self) -> Result<u64, String> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let [b, rest @ ..] = self.0 else {
                return Err("a number is cut off".into());
            };
            self.0 = rest;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err("a number is too long".into())
    }

    fn sleb(&mut self) -> Result<i64, String> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let [b, rest @ ..] = self.0 else {
                return Err("a number is cut off".into());
            };
            self.0 = rest;
            if shift >= 64 {
                return Err("a number is too long".into());
            }
            value |= i64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                if shift < 64 && b & 0x40 != 0 {
                    value |= -1_i64 << shift;
                }
                return Ok(value);
            }
        }
    }
}

fn columns(i: &mut Reader<'_>) -> Result<Vec<(u32, u64)>, String> {
    let n = i.uleb()?;
    if n > 64 {
        return Err(format!("{n} columns"));
    }
    (0..n)
        .map(|_| {
            let spec = u32::try_from(i.uleb()?).map_err(|_| "a column spec is too large")?;
            Ok((spec, i.uleb()?))
        })
        .collect()
}

/// The rows of a run-length encoded unsigned-integer column.
fn rle_rows(mut col: Reader<'_>, cap: u64) -> Result<u64, String> {
    let mut rows: u64 = 0;
    while !col.0.is_empty() {
        let count = col.sleb()?;
        let run = match count {
            0 => col.uleb()?,
            n if n > 0 => {
                col.uleb()?;
                n.unsigned_abs()
            }
            n => {
                let literals = n.unsigned_abs();
                for _ in 0..literals {
                    col.uleb()?;
                }
                literals
            }
        };
        rows = rows.saturating_add(run);
        if rows > cap {
            return Err(format!("more than {cap} rows"));
        }
    }
    Ok(rows)
}

/// Measures the document chunk `chunk` (whole, header included), inflating
/// at most `caps.bytes` and counting at most `caps` rows.
///
/// # Errors
/// A chunk that does not parse, or that is over a cap (the message says which).
pub(crate) fn measure(chunk: &[u8], caps: Caps) -> Result<Measure, String> {
    let mut i = Reader(chunk);
    i.take(9)?; // magic, checksum, type
    let len = i.uleb()?;
    let mut i = Reader(i.take(len)?);
    let actors = i.uleb()?;
    if actors > 100_000 {
        return Err(format!("{actors} actors"));
    }
    for _ in 0..actors {
        let n = i.uleb()?;
        i.take(n)?;
    }
    let heads = i.uleb()?;
    i.take(heads.checked_mul(32).ok_or("too many heads")?)?;
    let change_meta = columns(&mut i)?;
    let op_meta = columns(&mut i)?;
    let mut out = Measure::default();
    for (meta, rows_spec) in [(&change_meta, CHANGE_ACTOR), (&op_meta, OP_ACTION)] {
        for &(spec, len) in meta {
            let raw = i.take(len)?;
            let budget = caps.bytes.saturating_sub(out.bytes);
            let data = if spec & DEFLATE != 0 {
                let mut inflated = Vec::new();
                flate2::read::DeflateDecoder::new(raw)
                    .take(budget.saturating_add(1))
                    .read_to_end(&mut inflated)
                    .map_err(|e| format!("a column does not inflate: {e}"))?;
                inflated
            } else {
                raw.to_vec()
            };
            out.bytes = out.bytes.saturating_add(data.len() as u64);
            if out.bytes > caps.bytes {
                return Err(format!(
                    "its columns inflate to more than {} bytes",
                    caps.bytes
                ));
            }
            if spec & !DEFLATE == rows_spec {
                let cap = if rows_spec == OP_ACTION {
                    caps.ops
                } else {
                    caps.changes
                };
                let rows = rle_rows(Reader(&data), cap).map_err(|e| {
                    let what = if rows_spec == OP_ACTION {
                        "operations"
                    } else {
                        "changes"
                    };
                    format!("it holds {e} of {what}")
                })?;
                if rows_spec == OP_ACTION {
                    out.ops = rows;
                } else {
                    out.changes = rows;
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
