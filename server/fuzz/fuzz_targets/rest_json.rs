//! The REST API's JSON inputs: arbitrary bodies POSTed to every route that
//! takes one, on a relay in this process (`tower::ServiceExt::oneshot`), as
//! the supervisor (who may record contacts) and, for revocation, the
//! manager. Every answer is a JSON error or success, never a 500.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Fixture {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    supervisor: String,
    manager: String,
    ticket: String,
    _dir: tempfile::TempDir,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let dir = tempfile::tempdir().expect("tempdir");
        let (app, supervisor, manager, ticket) = rt.block_on(async {
            let config = server::Config::new(dir.path().join("relay"), "127.0.0.1:0".parse().expect("addr"));
            let relay = server::open(config).await.expect("relay");
            let creds = server::demo::seed(&relay).await.expect("seed").expect("fresh");
            let app = server::app(relay);
            let login = |user: &'static str| {
                let app = app.clone();
                let body = serde_json::json!({"username": user, "password": creds[user].password});
                async move {
                    let r = app
                        .oneshot(
                            Request::post("/api/v1/login")
                                .header("content-type", "application/json")
                                .body(Body::from(body.to_string()))
                                .expect("request"),
                        )
                        .await
                        .expect("login");
                    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.expect("body");
                    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
                    v["token"].as_str().expect("token").to_owned()
                }
            };
            let supervisor = login("supervisor").await;
            let manager = login("manager").await;
            let r = app
                .clone()
                .oneshot(
                    Request::post("/api/v1/tickets")
                        .header("content-type", "application/json")
                        .header("authorization", format!("Bearer {supervisor}"))
                        .body(Body::from(r#"{"kind":"repair","title":"Tap drips","location":"B1","category":"plumbing"}"#))
                        .expect("request"),
                )
                .await
                .expect("create");
            let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.expect("body");
            let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
            (app, supervisor, manager, v["id"].as_str().expect("id").to_owned())
        });
        Fixture { rt, app, supervisor, manager, ticket, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let Some((&route, body)) = data.split_first() else {
        return;
    };
    let (path, token) = match route % 4 {
        0 => ("/api/v1/login".to_owned(), &f.supervisor),
        1 => ("/api/v1/tickets".to_owned(), &f.supervisor),
        2 => (format!("/api/v1/tickets/{}/events", f.ticket), &f.supervisor),
        _ => ("/api/v1/devices/eng9-phone/revoke".to_owned(), &f.manager),
    };
    let request = Request::post(path.as_str())
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::from(body.to_vec()))
        .expect("request");
    let status = f.rt.block_on(async {
        let r = f.app.clone().oneshot(request).await.expect("infallible");
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 24).await.expect("body");
        assert!(
            serde_json::from_slice::<serde_json::Value>(&bytes).is_ok(),
            "{path}: not JSON: {}",
            String::from_utf8_lossy(&bytes)
        );
        status
    });
    assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}: {}", String::from_utf8_lossy(body));
});
