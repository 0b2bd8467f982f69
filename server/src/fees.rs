//! The fee ledger (物业费): charge items, the monthly bill run, payments,
//! credit, refunds and adjustments, arrears reminders (issue 14).
//!
//! The ledger is financial, not a CRDT (DESIGN.md §2): it lives in the
//! relay's database, is written only online by the cashier, the manager and
//! the relay, is numbered without gaps (bills `BL-`, receipts `RC-`,
//! reversing entries `AD-`, each per year of the property's calendar) and is
//! corrected by reversing entries, never edited. Phones never see it; the
//! front desk sees only whether a household is in arrears.
//!
//! This file holds the pure arithmetic (money in integer fen, areas in
//! hundredths of a square metre, rates in basis points rounded half up, no
//! floating point); `fees/ledger.rs` holds the SQL, `fees/http.rs` the JSON
//! API. Report 16 is `reports/fee_collection.rs`.

pub(crate) mod http;
pub(crate) mod ledger;

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};

/// A billing period: one month of the property's calendar, `YYYY-MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Period {
    year: i32,
    month: u32,
}

impl Period {
    /// The period `year`-`month`, when `month` is 1..=12 and the year is sane.
    pub(crate) fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=12).contains(&month) && (2000..=2200).contains(&year)).then_some(Self { year, month })
    }

    /// The period a day falls in.
    pub(crate) fn of(day: NaiveDate) -> Self {
        Self {
            year: day.year(),
            month: day.month(),
        }
    }

    /// Months since year 0, so periods subtract.
    pub(crate) fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// Its first day.
    pub(crate) fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default()
    }

    /// The period after it.
    pub(crate) fn next(self) -> Self {
        if self.month == 12 {
            Self {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Self {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    /// Its last day.
    pub(crate) fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().unwrap_or_default()
    }

    /// How many days it has.
    pub(crate) fn days(self) -> i64 {
        (self.last_day() - self.first_day()).num_days() + 1
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Period {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a period (YYYY-MM, for example 2026-03)");
        let (y, m) = s.trim().split_once('-').ok_or_else(bad)?;
        if y.len() != 4 || m.len() != 2 {
            return Err(bad());
        }
        let (y, m) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        Period::new(y, m).ok_or_else(bad)
    }
}

/// `num / den` rounded half up, for non-negative `num` and positive `den`.
pub(crate) fn div_round(num: i128, den: i128) -> i128 {
    (2 * num + den) / (2 * den)
}

/// A month's fee for a unit of `area_centi_m2` hundredths of a square metre
/// at `rate_fen` fen per m² per month, rounded half up to the fen.
pub(crate) fn area_fee(area_centi_m2: i64, rate_fen: i64) -> i64 {
    i64::try_from(div_round(
        i128::from(area_centi_m2) * i128::from(rate_fen),
        100,
    ))
    .unwrap_or(i64::MAX)
}

/// The part of a monthly charge `monthly` a household owes for `period`
/// when it lived there from `move_in` to `move_out` (both days counted):
/// the days it was there over the days of the month, rounded half up. `None`
/// when it was not there at all in the period.
pub(crate) fn prorate(
    monthly: i64,
    period: Period,
    move_in: NaiveDate,
    move_out: Option<NaiveDate>,
) -> Option<i64> {
    let from = move_in.max(period.first_day());
    let to = move_out.map_or(period.last_day(), |o| o.min(period.last_day()));
    if to < from {
        return None;
    }
    let days = (to - from).num_days() + 1;
    let amount = div_round(
        i128::from(monthly) * i128::from(days),
        i128::from(period.days()),
    );
    i64::try_from(amount).ok().filter(|a| *a > 0)
}

/// `num / den` in basis points (1 = 0.01%), rounded half up; `None` when
/// `den` is zero (the rate is undefined, shown as "—").
pub(crate) fn rate_bp(num: i64, den: i64) -> Option<i64> {
    (den > 0 && num >= 0)
        .then(|| i64::try_from(div_round(i128::from(num) * 10_000, i128::from(den))).ok())
        .flatten()
}

/// A rate in basis points shown to 0.01%: `9753` → `97.53%`.
pub(crate) fn show_rate(bp: Option<i64>) -> String {
    match bp {
        Some(bp) => format!("{}.{:02}%", bp / 100, bp % 100),
        None => "—".into(),
    }
}

/// Fen shown as yuan with two decimals: `-12345` → `-123.45`.
pub(crate) fn show_fen(fen: i64) -> String {
    let sign = if fen < 0 { "-" } else { "" };
    let a = fen.unsigned_abs();
    format!("{sign}{}.{:02}", a / 100, a % 100)
}

/// Reads a decimal with at most two places (`"89.5"`) as hundredths
/// (`8950`), exactly; used for areas in m² and amounts in yuan.
pub(crate) fn parse_hundredths(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let frac: i64 = format!("{frac:0<2}").parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac)
}

/// Splits `amount` over bills in the order given (each with what it still
/// asks for): each takes what it can, the rest is returned as credit.
pub(crate) fn allocate<K: Clone>(open: &[(K, i64)], amount: i64) -> (Vec<(K, i64)>, i64) {
    let mut left = amount;
    let mut out = Vec::new();
    for (k, due) in open {
        if left == 0 {
            break;
        }
        let take = left.min(*due);
        if take > 0 {
            out.push((k.clone(), take));
            left -= take;
        }
    }
    (out, left)
}

#[cfg(test)]
mod tests;
