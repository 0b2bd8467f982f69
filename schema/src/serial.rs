//! Serial numbers of numbered orders: `RO-2026-000042`, `PS-2026-000007`.
//!
//! The relay is the numbering authority (DESIGN.md §6): numbers are gap-free per
//! series and year, in the order of acceptance, and never reused.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ticket::Kind;

/// A numbered series: repair orders and paid-service orders have a book each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Series {
    /// Repair orders (维修单).
    #[serde(rename = "RO")]
    Ro,
    /// Paid-service orders (有偿服务单).
    #[serde(rename = "PS")]
    Ps,
}

impl Series {
    /// Every series.
    pub const ALL: [Series; 2] = [Series::Ro, Series::Ps];

    /// The series a ticket of this kind is numbered in, if any.
    pub fn for_kind(kind: Kind) -> Option<Series> {
        match kind {
            Kind::Repair => Some(Series::Ro),
            Kind::PaidService => Some(Series::Ps),
            _ => None,
        }
    }

    /// The prefix printed on the form.
    pub fn code(self) -> &'static str {
        match self {
            Series::Ro => "RO",
            Series::Ps => "PS",
        }
    }
}

impl FromStr for Series {
    type Err = SerialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RO" => Ok(Series::Ro),
            "PS" => Ok(Series::Ps),
            _ => Err(SerialError::UnknownSeries(s.chars().take(8).collect())),
        }
    }
}

/// Why a serial number does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SerialError {
    /// Not `SERIES-YEAR-NUMBER`.
    #[error("a serial number is written like RO-2026-000042, not {0:?}")]
    Format(String),
    /// A series other than RO or PS.
    #[error("unknown serial series {0:?}")]
    UnknownSeries(String),
    /// Number zero, or a year outside 2000..=9999.
    #[error("serial number out of range: {0:?}")]
    Range(String),
}

/// One number in one series and year. Ordered by series, year, number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial {
    series: Series,
    year: u16,
    number: u32,
}

impl Serial {
    /// A serial number.
    ///
    /// # Errors
    /// When the number is zero or the year is outside 2000..=9999.
    pub fn new(series: Series, year: u16, number: u32) -> Result<Self, SerialError> {
        if number == 0 || !(2000..=9999).contains(&year) {
            return Err(SerialError::Range(format!(
                "{}-{year}-{number}",
                series.code()
            )));
        }
        Ok(Self {
            series,
            year,
            number,
        })
    }

    /// The series.
    pub fn series(&self) -> Series {
        self.series
    }

    /// The year the number was issued in.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// The number within its series and year, from 1.
    pub fn number(&self) -> u32 {
        self.number
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:06}", self.series.code(), self.year, self.number)
    }
}

impl FromStr for Serial {
    type Err = SerialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || SerialError::Format(s.chars().take(32).collect());
        let mut parts = s.split('-');
        let (Some(series), Some(year), Some(number), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if year.len() != 4 || !digits(year) || number.len() < 6 || !digits(number) {
            return Err(bad());
        }
        // Six digits are zero-padded; more appear only past 999999.
        if number.len() > 6 && number.starts_with('0') {
            return Err(bad());
        }
        let year: u16 = year.parse().map_err(|_| bad())?;
        let number: u32 = number.parse().map_err(|_| bad())?;
        Serial::new(series.parse()?, year, number)
    }
}

impl Serialize for Serial {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Serial {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(Series, u16, u32), ()>) {
        let got = input
            .parse::<Serial>()
            .map(|s| (s.series(), s.year(), s.number()))
            .map_err(|_| ());
        assert_eq!(got, expected, "parsing {input:?}");
        if let Ok((series, year, number)) = expected {
            assert_eq!(
                Serial::new(series, year, number).unwrap().to_string(),
                input
            );
        }
    }

    #[test]
    fn serials_parse_and_display() {
        check("RO-2026-000042", Ok((Series::Ro, 2026, 42)));
        check("PS-2026-000007", Ok((Series::Ps, 2026, 7)));
        check("RO-2026-1234567", Ok((Series::Ro, 2026, 1_234_567)));
        check("RO-2026-42", Err(()));
        check("RO-2026-000000", Err(()));
        check("XX-2026-000001", Err(()));
        check("RO-26-000001", Err(()));
        check("RO-2026-000001-1", Err(()));
        check("RO-2026-0000001", Err(()));
        check("RO-2026-+00001", Err(()));
        check("", Err(()));
    }

    #[test]
    fn serials_order_by_series_year_number() {
        let a = Serial::new(Series::Ro, 2026, 9).unwrap();
        let b = Serial::new(Series::Ro, 2026, 10).unwrap();
        let c = Serial::new(Series::Ro, 2027, 1).unwrap();
        assert!(a < b && b < c);
    }
}
