//! The ledger's arithmetic, checked against values worked out by hand.

use chrono::NaiveDate;

use super::*;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn p(s: &str) -> Period {
    s.parse().unwrap()
}

#[test]
fn periods_parse_and_know_their_days() {
    assert_eq!(p("2026-02").days(), 28);
    assert_eq!(p("2028-02").days(), 29);
    assert_eq!(p("2026-12").next(), p("2027-01"));
    assert_eq!(p("2026-04").last_day(), day(2026, 4, 30));
    for bad in ["2026-13", "2026-1", "26-01", "2026", "x-01", "2026-00"] {
        assert!(bad.parse::<Period>().is_err(), "{bad} was accepted");
    }
}

#[test]
fn area_fee_rounds_half_up() {
    // 89.50 m² × 2.50 元 = 223.75 元.
    assert_eq!(area_fee(8950, 250), 22_375);
    // 100.01 m² × 1.85 元 = 185.0185 元 → 185.02.
    assert_eq!(area_fee(10_001, 185), 18_502);
    // 0.02 m² × 0.25 元 = 0.005 元 → 0.01 (half up).
    assert_eq!(area_fee(2, 25), 1);
}

#[test]
fn prorate_counts_days_present() {
    let m = p("2026-04"); // 30 days
    assert_eq!(prorate(30_000, m, day(2025, 1, 1), None), Some(30_000));
    // In on the 21st: 10 days of 30.
    assert_eq!(prorate(30_000, m, day(2026, 4, 21), None), Some(10_000));
    // Out on the 10th: 10 days.
    assert_eq!(
        prorate(30_000, m, day(2025, 1, 1), Some(day(2026, 4, 10))),
        Some(10_000)
    );
    // 1 day of 30 of 100.00: 3.333… → 3.33.
    assert_eq!(prorate(10_000, m, day(2026, 4, 30), None), Some(333));
    // 2 days: 6.666… → 6.67.
    assert_eq!(prorate(10_000, m, day(2026, 4, 29), None), Some(667));
    assert_eq!(prorate(10_000, m, day(2026, 5, 1), None), None);
    assert_eq!(
        prorate(10_000, m, day(2025, 5, 1), Some(day(2026, 3, 31))),
        None
    );
}

#[test]
fn rates_are_exact_to_a_hundredth_of_a_percent() {
    assert_eq!(show_rate(rate_bp(2, 3)), "66.67%");
    assert_eq!(show_rate(rate_bp(1, 3)), "33.33%");
    assert_eq!(show_rate(rate_bp(199, 200)), "99.50%");
    assert_eq!(show_rate(rate_bp(1, 1)), "100.00%");
    assert_eq!(show_rate(rate_bp(0, 7)), "0.00%");
    assert_eq!(show_rate(rate_bp(1, 0)), "—");
    // 1/80000 = 0.00125% → 0.00%; 1/8000 = 0.0125% → 0.01%.
    assert_eq!(show_rate(rate_bp(1, 80_000)), "0.00%");
    assert_eq!(show_rate(rate_bp(1, 8_000)), "0.01%");
}

#[test]
fn amounts_parse_exactly() {
    assert_eq!(parse_hundredths("89.5"), Some(8950));
    assert_eq!(parse_hundredths("89.50"), Some(8950));
    assert_eq!(parse_hundredths("120"), Some(12_000));
    assert_eq!(parse_hundredths(" 0.01 "), Some(1));
    for bad in ["", "1.234", "-1", "1e3", "1,5", ".5", "abc"] {
        assert_eq!(parse_hundredths(bad), None, "{bad:?}");
    }
    assert_eq!(show_fen(-12_345), "-123.45");
    assert_eq!(show_fen(5), "0.05");
}

#[test]
fn allocation_fills_oldest_first_and_keeps_the_rest() {
    let open = [("a", 100), ("b", 50), ("c", 70)];
    assert_eq!(allocate(&open, 120), (vec![("a", 100), ("b", 20)], 0));
    assert_eq!(
        allocate(&open, 300),
        (vec![("a", 100), ("b", 50), ("c", 70)], 80)
    );
    assert_eq!(allocate(&open, 0), (vec![], 0));
}
