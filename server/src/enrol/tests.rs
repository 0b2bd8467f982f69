//! Enrolment codes: made only by supervisors and managers, exchanged once,
//! refused when used or expired, every refusal in the security log, guessing
//! slowed down.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use axum::body::Body as HttpBody;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::*;

struct Fixture {
    relay: Relay,
    offset_min: Arc<AtomicI64>,
    _dir: tempfile_dir::Dir,
}

mod tempfile_dir {
    /// A data directory removed at the end of the test.
    pub(super) struct Dir(pub(super) std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

async fn fixture() -> Fixture {
    let dir = std::env::temp_dir().join(format!("propsync-enrol-{}", rand::random::<u64>()));
    let offset_min = Arc::new(AtomicI64::new(0));
    let o = Arc::clone(&offset_min);
    let mut config = crate::Config::new(dir.clone(), "127.0.0.1:0".parse().expect("an address"));
    config.clock = crate::TimeSource::from_fn(move || {
        Utc::now() + Duration::minutes(o.load(Ordering::SeqCst))
    });
    let relay = crate::open(config).await.expect("a relay");
    for (name, role) in [("sup", Role::Supervisor), ("eng1", Role::Engineer)] {
        crate::admin::create_user(
            &relay,
            &UserId::new(name).expect("a name"),
            name,
            "pw-123456",
            role,
            None,
        )
        .await
        .expect("a user");
    }
    Fixture {
        relay,
        offset_min,
        _dir: tempfile_dir::Dir(dir),
    }
}

async fn call(
    relay: &Relay,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = crate::app(relay.clone())
        .oneshot(
            req.body(HttpBody::from(body.to_string()))
                .expect("a request"),
        )
        .await
        .expect("a response");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("a body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn login(relay: &Relay, user: &str) -> String {
    let (s, v) = call(
        relay,
        "POST",
        "/api/v1/login",
        None,
        json!({"username": user, "password": "pw-123456"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().expect("a token").to_owned()
}

async fn code_for_eng1(f: &Fixture, by: &str) -> String {
    let t = login(&f.relay, by).await;
    let (s, v) = call(
        &f.relay,
        "POST",
        "/api/v1/enrolments",
        Some(&t),
        json!({"username": "eng1", "origin": "http://relay.example:8080"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert!(
        v["qr_svg"].as_str().is_some_and(|q| q.starts_with("<svg")),
        "{v}"
    );
    let code = v["code"].as_str().expect("a code").to_owned();
    assert_eq!(
        v["link"],
        format!("http://relay.example:8080/app/#enrol={code}")
    );
    code
}

async fn refusals(relay: &Relay) -> Vec<String> {
    relay
        .db
        .read(|c| records::security_log(c, 100))
        .await
        .expect("the log")
        .into_iter()
        .filter(|r| r.kind.starts_with("enrol"))
        .map(|r| format!("{} {}", r.kind, r.detail))
        .collect()
}

#[tokio::test]
async fn a_code_is_exchanged_once_for_a_working_device_token() {
    let f = fixture().await;
    let code = code_for_eng1(&f, "sup").await;
    // Read out and typed in lower case without the dashes: still the code.
    let typed = code.replace('-', "").to_lowercase();
    let (s, v) = call(
        &f.relay,
        "POST",
        "/api/v1/enrol",
        None,
        json!({"code": typed}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["user"], "eng1");
    let device = v["device"].as_str().expect("a device");
    assert!(device.starts_with("app-eng1-"), "{device}");
    let token = v["token"].as_str().expect("a token");
    let (s, me) = call(&f.relay, "GET", "/api/v1/me", Some(token), Value::Null).await;
    assert_eq!(s, StatusCode::OK, "{me}");
    assert_eq!(me["device"], device);
    assert_eq!(me["role"], "engineer");

    // Burnt: the same code again is refused and logged.
    let (s, v) = call(
        &f.relay,
        "POST",
        "/api/v1/enrol",
        None,
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["error"]["code"], "invalid_code");
    assert_eq!(
        refusals(&f.relay).await,
        ["enrol_refused enrolment code already used"]
    );
    // Only its hash is stored.
    let stored: Vec<String> = f
        .relay
        .db
        .read(|c| {
            let mut st = c.prepare("SELECT code_hash FROM enrolments")?;
            let rows = st
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(rows)
        })
        .await
        .expect("rows");
    assert_eq!(stored, [code_hash(&code)]);
    assert!(!stored[0].contains(&code.replace('-', "")));
}

#[tokio::test]
async fn an_expired_or_unknown_code_is_refused_and_logged() {
    let f = fixture().await;
    let code = code_for_eng1(&f, "sup").await;
    f.offset_min.store(11, Ordering::SeqCst);
    let (s, _) = call(
        &f.relay,
        "POST",
        "/api/v1/enrol",
        None,
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, _) = call(
        &f.relay,
        "POST",
        "/api/v1/enrol",
        None,
        json!({"code": "AAAA-BBBB-CC"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let mut log = refusals(&f.relay).await;
    log.sort();
    assert_eq!(
        log,
        [
            "enrol_refused enrolment code expired",
            "enrol_refused no such enrolment code"
        ]
    );
}

#[tokio::test]
async fn only_supervisors_and_managers_make_codes() {
    let f = fixture().await;
    let t = login(&f.relay, "eng1").await;
    let (s, v) = call(
        &f.relay,
        "POST",
        "/api/v1/enrolments",
        Some(&t),
        json!({"username": "eng1"}),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, _) = call(
        &f.relay,
        "POST",
        "/api/v1/enrolments",
        None,
        json!({"username": "eng1"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let sup = login(&f.relay, "sup").await;
    let (s, _) = call(
        &f.relay,
        "POST",
        "/api/v1/enrolments",
        Some(&sup),
        json!({"username": "nobody"}),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn guessing_is_slowed_down() {
    let f = fixture().await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let (s, _) = call(
            &f.relay,
            "POST",
            "/api/v1/enrol",
            None,
            json!({"code": format!("GUES-SNUM-{i:02}")}),
        )
        .await;
        statuses.push(s.as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 401, 401, 429, 429, 429]);
    // A good code from the same address waits too: the limit is per address.
    let code = code_for_eng1(&f, "sup").await;
    let (s, _) = call(
        &f.relay,
        "POST",
        "/api/v1/enrol",
        None,
        json!({"code": code}),
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn codes_are_readable_and_distinct() {
    let a = new_code();
    let b = new_code();
    assert_ne!(a, b);
    assert_eq!(a.len(), 12);
    assert!(
        a.chars().all(|c| c == '-' || ALPHABET.contains(&(c as u8))),
        "{a}"
    );
    assert_eq!(
        code_hash(&a),
        code_hash(&a.to_lowercase().replace('-', " "))
    );
}
