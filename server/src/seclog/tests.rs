//! The security log's coalescing: like refusals become one row, distinct
//! ones stay apart up to the bound, and the bound holds.

use chrono::{Duration, Utc};

use super::{MAX_KEYS, Pending};
use crate::store::storage::SecurityEntry;

fn entry(kind: &str, peer: &str, detail: &str, secs: i64) -> SecurityEntry {
    SecurityEntry {
        at: Utc::now() + Duration::seconds(secs),
        user: None,
        device: None,
        peer: Some(peer.into()),
        kind: kind.into(),
        detail: detail.into(),
    }
}

#[test]
fn like_refusals_become_one_row_with_a_count_and_both_times() {
    let mut p = Pending::default();
    for i in 0..500 {
        p.add(entry(
            "auth_refused",
            "10.0.0.5",
            "the token is not valid",
            i % 7,
        ));
    }
    p.add(entry(
        "auth_refused",
        "10.0.0.6",
        "the token is not valid",
        0,
    ));
    p.add(entry(
        "bad_login",
        "10.0.0.5",
        "wrong user name or password",
        0,
    ));
    assert_eq!(p.rows.len(), 3);
    let row = p
        .rows
        .values()
        .find(|r| r.peer.as_deref() == Some("10.0.0.5") && r.kind == "auth_refused")
        .expect("the flood's row");
    assert_eq!(row.count, 500);
    assert_eq!((row.last_at - row.at).num_seconds(), 6);
}

#[test]
fn distinct_refusals_past_the_bound_fold_into_one_row_per_kind() {
    let mut p = Pending::default();
    for i in 0..(MAX_KEYS + 5_000) {
        p.add(entry(
            "bad_login",
            &format!("10.0.{}.{}", i / 256, i % 256),
            "x",
            0,
        ));
    }
    assert_eq!(p.rows.len(), MAX_KEYS + 1);
    let total: u64 = p.rows.values().map(|r| r.count).sum();
    assert_eq!(total, u64::try_from(MAX_KEYS + 5_000).unwrap_or(0));
}
