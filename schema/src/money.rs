//! Money is integer fen (1 yuan = 100 fen), never a float.

use std::fmt;
use std::iter::Sum;

use serde::{Deserialize, Serialize};

/// An amount of money in fen. Amounts on a ticket (quotes, collections,
/// waivers) are never negative; balances are checked arithmetic.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fen(i64);

impl Fen {
    /// Zero fen.
    pub const ZERO: Fen = Fen(0);

    /// An amount in fen.
    pub const fn new(fen: i64) -> Self {
        Self(fen)
    }

    /// A non-negative amount, as every amount written on a ticket must be.
    pub fn non_negative(fen: i64) -> Option<Self> {
        (fen >= 0).then_some(Self(fen))
    }

    /// The amount in fen.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Fen) -> Option<Fen> {
        self.0.checked_add(other.0).map(Fen)
    }

    /// `self - other`, or `None` on overflow.
    pub fn checked_sub(self, other: Fen) -> Option<Fen> {
        self.0.checked_sub(other.0).map(Fen)
    }

    /// `self * n` (a unit price times a quantity), or `None` on overflow.
    pub fn checked_mul(self, n: i64) -> Option<Fen> {
        self.0.checked_mul(n).map(Fen)
    }

    /// Whether the amount is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }
}

impl Sum for Fen {
    /// Saturating sum: a ticket's totals cannot realistically overflow `i64`
    /// fen, and a saturated figure is visibly wrong rather than a panic.
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.fold(0i64, |a, b| a.saturating_add(b.0)))
    }
}

impl fmt::Display for Fen {
    /// Yuan with two decimals: `¥12.05`, `-¥0.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}¥{}.{:02}", abs / 100, abs % 100)
    }
}

impl fmt::Debug for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fen({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fen_displays_as_yuan() {
        assert_eq!(Fen::new(1205).to_string(), "¥12.05");
        assert_eq!(Fen::new(-50).to_string(), "-¥0.50");
        assert_eq!(Fen::ZERO.to_string(), "¥0.00");
        assert_eq!(Fen::non_negative(-1), None);
        assert_eq!(Fen::new(i64::MAX).checked_add(Fen::new(1)), None);
    }
}
