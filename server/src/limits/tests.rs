//! The edge's limiters: bursts, lock-outs that double and are reported once,
//! and the client address behind a trusted proxy only.

use std::net::IpAddr;
use std::time::Duration;

use axum::http::HeaderMap;

use super::Edge;
use crate::config::Limits;
use crate::error::AppError;

fn ip(s: &str) -> IpAddr {
    s.parse().expect("an address")
}

#[test]
fn an_address_gets_its_burst_then_waits() {
    let edge = Edge::new(Limits {
        per_address_per_second: 10,
        per_address_burst: 20,
        ..Limits::default()
    });
    let admitted = (0..100)
        .filter(|_| edge.admit(ip("10.0.0.5")).is_ok())
        .count();
    assert!((20..=22).contains(&admitted), "{admitted}");
    assert!(
        edge.admit(ip("10.0.0.6")).is_ok(),
        "another address is not held back"
    );
    let off = Edge::new(Limits::off());
    assert!((0..10_000).all(|_| off.admit(ip("10.0.0.5")).is_ok()));
}

#[test]
fn failed_logins_lock_a_name_out_once_per_lockout_and_each_lockout_doubles() {
    let edge = Edge::new(Limits {
        lockout_after: 3,
        lockout_base: Duration::from_secs(60),
        ..Limits::default()
    });
    let mut started = Vec::new();
    for _ in 0..9 {
        started.extend(edge.login_failed("Eng1"));
    }
    let lengths: Vec<(u32, u64)> = started.iter().map(|l| (l.nth, l.seconds)).collect();
    assert_eq!(lengths, [(1, 60), (2, 120), (3, 240)]);
    assert!(started.iter().all(|l| l.user == "eng1" && l.failures == 3));
    match edge.admit_login(ip("10.0.0.5"), "ENG1") {
        Err(AppError::TooMany {
            code, retry_after, ..
        }) => {
            assert_eq!(code, "locked_out");
            assert!((200..=240).contains(&retry_after), "{retry_after}");
        }
        other => panic!("locked out, not {other:?}"),
    }
    assert!(edge.admit_login(ip("10.0.0.5"), "eng2").is_ok());
    edge.login_succeeded("eng1");
    assert!(edge.admit_login(ip("10.0.0.5"), "eng1").is_ok());
}

#[test]
fn forwarded_for_counts_only_from_a_trusted_proxy() {
    let edge = Edge::new(Limits {
        trusted_proxies: vec![ip("10.0.0.1"), ip("10.0.0.2")],
        ..Limits::default()
    });
    let mut h = HeaderMap::new();
    h.insert(
        "x-forwarded-for",
        "6.6.6.6, 203.0.113.7, 10.0.0.2".parse().expect("a header"),
    );
    assert_eq!(edge.client_ip(Some(ip("10.0.0.1")), &h), ip("203.0.113.7"));
    assert_eq!(
        edge.client_ip(Some(ip("198.51.100.9")), &h),
        ip("198.51.100.9")
    );
    assert_eq!(
        edge.client_ip(Some(ip("10.0.0.1")), &HeaderMap::new()),
        ip("10.0.0.1")
    );
}
