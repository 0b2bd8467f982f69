//! The time-zone setting (default, round trip, unknown names refused) and the
//! calendar around local midnight, including zones with daylight saving.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    s.parse().expect("an RFC 3339 time")
}

fn wall(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("a wall time")
}

#[test]
fn a_local_day_runs_from_local_midnight() {
    let sh = DEFAULT_TIME_ZONE;
    // 07:59 on Tuesday 3 March in Shanghai is 23:59 UTC on Monday.
    let t = utc("2026-03-02T23:59:00Z");
    assert_eq!(local_date(t, sh).to_string(), "2026-03-03");
    assert_eq!(day_start(t, sh), utc("2026-03-02T16:00:00Z"));
    assert_eq!(day_end(t, sh), utc("2026-03-03T16:00:00Z"));
    // 23:30 on Monday 2 March in Shanghai is still Monday.
    let late = utc("2026-03-02T15:30:00Z");
    assert_eq!(local_date(late, sh).to_string(), "2026-03-02");
    assert_eq!(day_start(late, sh), utc("2026-03-01T16:00:00Z"));
    // UTC itself: the old behaviour.
    assert_eq!(day_start(t, Tz::UTC), utc("2026-03-02T00:00:00Z"));
}

#[test]
fn a_week_starts_on_monday_at_local_midnight() {
    let sh = DEFAULT_TIME_ZONE;
    // Sunday 8 March 23:00 local, Monday 9 March 00:00 local, Monday 07:59.
    assert_eq!(
        week_start(utc("2026-03-08T15:00:00Z"), sh),
        utc("2026-03-01T16:00:00Z")
    );
    assert_eq!(
        week_start(utc("2026-03-08T16:00:00Z"), sh),
        utc("2026-03-08T16:00:00Z")
    );
    assert_eq!(
        week_start(utc("2026-03-08T23:59:00Z"), sh),
        utc("2026-03-08T16:00:00Z")
    );
}

#[test]
fn the_year_turns_at_local_midnight() {
    let sh = DEFAULT_TIME_ZONE;
    assert_eq!(year_of(utc("2026-12-31T15:59:59Z"), sh), 2026);
    assert_eq!(year_of(utc("2026-12-31T16:00:00Z"), sh), 2027);
    assert_eq!(year_of(utc("2026-12-31T16:00:00Z"), Tz::UTC), 2026);
    assert_eq!(
        wall_time(utc("2026-12-31T16:00:00Z"), sh),
        "2027-01-01 00:00"
    );
}

#[test]
fn wall_times_in_a_gap_or_an_overlap_name_one_instant() {
    let ny: Tz = "America/New_York".parse().expect("a zone");
    // 02:30 on 8 March 2026 does not exist in New York (clocks go 02:00 → 03:00).
    assert_eq!(
        local_to_utc(wall("2026-03-08 02:30"), ny),
        utc("2026-03-08T07:00:00Z")
    );
    // 01:30 on 1 November 2026 happens twice; the first (EDT) is taken.
    assert_eq!(
        local_to_utc(wall("2026-11-01 01:30"), ny),
        utc("2026-11-01T05:30:00Z")
    );
    // A day with the change is 23 hours long.
    let day = utc("2026-03-08T12:00:00Z");
    assert_eq!(
        (day_end(day, ny) - day_start(day, ny)).num_hours(),
        23,
        "the spring-forward day"
    );
}

#[test]
fn query_times_are_rfc_3339_or_the_propertys_wall_time() {
    let sh = DEFAULT_TIME_ZONE;
    let check = |s: &str, expected: &str| {
        assert_eq!(
            parse_time(Some(s), "as_of", sh).expect("a time"),
            Some(utc(expected)),
            "{s}"
        );
    };
    check("2026-03-09T01:00:00Z", "2026-03-09T01:00:00Z");
    check("2026-03-09T09:00:00+08:00", "2026-03-09T01:00:00Z");
    check("2026-03-09T09:00", "2026-03-09T01:00:00Z");
    check("2026-03-09T09:00:30", "2026-03-09T01:00:30Z");
    check("2026-03-09 09:00", "2026-03-09T01:00:00Z");
    check("2026-03-09", "2026-03-08T16:00:00Z");
    assert_eq!(parse_time(None, "as_of", sh).expect("nothing"), None);
    assert_eq!(parse_time(Some(""), "as_of", sh).expect("nothing"), None);
    for bad in ["yesterday", "2026-13-01", "09:00", "2026-03-09T25:00"] {
        assert!(parse_time(Some(bad), "as_of", sh).is_err(), "{bad:?}");
    }
}

#[test]
fn only_iana_names_are_accepted() {
    assert_eq!(
        parse_time_zone("Asia/Shanghai").expect("a zone"),
        DEFAULT_TIME_ZONE
    );
    assert_eq!(
        parse_time_zone(" Europe/London ").expect("a zone").name(),
        "Europe/London"
    );
    for bad in ["", "Beijing", "UTC+8", "Asia/Beijing", "asia/shanghai"] {
        assert!(parse_time_zone(bad).is_err(), "{bad:?} was accepted");
    }
}

#[tokio::test]
async fn the_setting_defaults_to_shanghai_and_round_trips() {
    let dir = std::env::temp_dir().join(format!("propsync-tz-{}", rand::random::<u64>()));
    let relay = crate::open(crate::Config::new(
        dir.clone(),
        "127.0.0.1:0".parse().expect("an address"),
    ))
    .await
    .expect("a relay");
    assert_eq!(time_zone(&relay).await.expect("read"), DEFAULT_TIME_ZONE);
    let set = set_time_zone(&relay, "Europe/Berlin").await.expect("set");
    assert_eq!(set.name(), "Europe/Berlin");
    assert_eq!(
        time_zone(&relay).await.expect("read").name(),
        "Europe/Berlin"
    );
    assert!(set_time_zone(&relay, "Mars/Olympus_Mons").await.is_err());
    assert_eq!(
        time_zone(&relay).await.expect("read").name(),
        "Europe/Berlin",
        "a refused name changes nothing"
    );
    let _ = std::fs::remove_dir_all(dir);
}
