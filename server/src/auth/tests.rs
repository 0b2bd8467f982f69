//! Tokens: expired, not yet valid, wrongly signed, `alg: none`, algorithm
//! swapped, unknown key, rotated key.

use base64::Engine;
use chrono::{Duration, TimeZone, Utc};

use super::*;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 8, 0, 0).unwrap()
}

fn b64(s: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

#[test]
fn a_fresh_token_verifies_and_says_who() {
    let keys = Keys::new(vec![new_key()]);
    let t = keys
        .issue("eng1", "dev-eng1", "device", now(), Duration::hours(1))
        .unwrap();
    let c = keys.verify(&t, now()).unwrap();
    assert_eq!(
        (c.sub.as_str(), c.dev.as_str(), c.kind.as_str()),
        ("eng1", "dev-eng1", "device")
    );
}

#[test]
fn expired_and_not_yet_valid_tokens_are_refused() {
    let keys = Keys::new(vec![new_key()]);
    let t = keys
        .issue("eng1", "d", "device", now(), Duration::hours(1))
        .unwrap();
    assert_eq!(
        keys.verify(&t, now() + Duration::hours(1)),
        Err(AuthError::Expired)
    );
    assert_eq!(
        keys.verify(&t, now() - Duration::minutes(10)),
        Err(AuthError::NotYetValid)
    );
}

#[test]
fn wrong_signatures_unknown_keys_and_rotation_are_refused() {
    let keys = Keys::new(vec![new_key()]);
    let other = Keys::new(vec![new_key()]);
    let t = other
        .issue("eng1", "d", "device", now(), Duration::hours(1))
        .unwrap();
    assert_eq!(keys.verify(&t, now()), Err(AuthError::Invalid));
    let mine = keys
        .issue("eng1", "d", "device", now(), Duration::hours(1))
        .unwrap();
    let mut tampered = mine.clone();
    tampered.pop();
    tampered.push(if mine.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(keys.verify(&tampered, now()), Err(AuthError::Invalid));
    keys.replace(vec![new_key()]);
    assert_eq!(
        keys.verify(&mine, now()),
        Err(AuthError::Invalid),
        "a rotated-out key no longer verifies"
    );
}

#[test]
fn alg_none_and_swapped_algorithms_are_refused() {
    let key = new_key();
    let keys = Keys::new(vec![key.clone()]);
    let claims = format!(
        r#"{{"sub":"manager","dev":"d","kind":"session","iat":{0},"nbf":{0},"exp":{1}}}"#,
        now().timestamp(),
        now().timestamp() + 3600
    );
    let none = format!(
        "{}.{}.",
        b64(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid).as_bytes()),
        b64(claims.as_bytes())
    );
    assert_eq!(keys.verify(&none, now()), Err(AuthError::Invalid));
    // HS512 signed with the right secret: still refused, only HS256 is accepted.
    let mut h = Header::new(Algorithm::HS512);
    h.kid = Some(key.kid.clone());
    let c: Claims = serde_json::from_str(&claims).unwrap();
    let swapped = jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(&key.secret)).unwrap();
    assert_eq!(keys.verify(&swapped, now()), Err(AuthError::Invalid));
    // An RS256 header over an HMAC signature.
    let rs = format!(
        "{}.{}.{}",
        b64(format!(r#"{{"alg":"RS256","kid":"{}"}}"#, key.kid).as_bytes()),
        b64(claims.as_bytes()),
        b64(b"not a signature")
    );
    assert_eq!(keys.verify(&rs, now()), Err(AuthError::Invalid));
    assert_eq!(keys.verify("garbage", now()), Err(AuthError::Invalid));
    assert_eq!(
        keys.verify(&"a".repeat(10_000), now()),
        Err(AuthError::Invalid)
    );
}

#[test]
fn passwords_hash_and_verify() {
    let h = hash_password("correct horse").unwrap();
    assert!(verify_password("correct horse", &h));
    assert!(!verify_password("wrong", &h));
    assert!(!verify_password("x", "not a hash"));
}
