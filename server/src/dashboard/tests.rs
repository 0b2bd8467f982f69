//! The OpenAPI document matches the routes, both ways; the pages and the
//! printable order render.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use tower::ServiceExt;

use super::openapi::{OPERATIONS, document};

/// The routers' sources: every `.route("/api/v1/…", method(…)…)` in them
/// must be documented.
const SOURCES: &[(&str, &str)] = &[
    ("api.rs", include_str!("../api.rs")),
    ("session.rs", include_str!("../session.rs")),
    ("blobs.rs", include_str!("../blobs.rs")),
    ("ws.rs", include_str!("../ws.rs")),
    ("enrol.rs", include_str!("../enrol.rs")),
    ("dashboard.rs", include_str!("../dashboard.rs")),
    ("reports/http.rs", include_str!("../reports/http.rs")),
    ("property/http.rs", include_str!("../property/http.rs")),
    ("fees/http.rs", include_str!("../fees/http.rs")),
];

/// `(path, method)` for every `.route(` call in `src`.
fn routes_in(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, _) in src.match_indices(".route(") {
        let rest = &src[i + ".route(".len()..];
        let Some(start) = rest.find('"') else {
            continue;
        };
        let Some(len) = rest[start + 1..].find('"') else {
            continue;
        };
        let path = &rest[start + 1..start + 1 + len];
        // The method chain runs to the `)` that closes `.route(`.
        let mut depth = 1usize;
        let mut end = rest.len();
        for (j, c) in rest.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let chain = &rest[start + 1 + len..end];
        for m in ["get", "post", "put", "head", "delete", "patch"] {
            let called = chain.match_indices(&format!("{m}(")).any(|(k, _)| {
                k == 0 || !chain[..k].ends_with(|c: char| c.is_alphanumeric() || c == '_')
            });
            if called {
                out.push((path.to_owned(), m.to_owned()));
            }
        }
    }
    out
}

#[test]
fn the_route_scanner_reads_a_method_chain() {
    let src = r#"Router::new().route("/a", get(x).post(y)).route(
        "/b/{id}",
        put(p).head(h),
    ).route("/c", get(target))"#;
    assert_eq!(
        routes_in(src),
        [
            ("/a".into(), "get".into()),
            ("/a".into(), "post".into()),
            ("/b/{id}".into(), "put".into()),
            ("/b/{id}".into(), "head".into()),
            ("/c".into(), "get".into()),
        ]
    );
}

#[test]
fn every_api_route_in_the_sources_is_in_the_openapi_document() {
    let doc = document();
    let mut missing = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, src) in SOURCES {
        for (path, method) in routes_in(src) {
            if !path.starts_with("/api/v1") {
                continue;
            }
            seen.insert((path.clone(), method.clone()));
            if doc["paths"][&path][&method].is_null() {
                missing.push(format!("{} {path} (in {file})", method.to_uppercase()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document: {missing:#?}"
    );
    let stale: Vec<String> = OPERATIONS
        .iter()
        .filter(|o| !seen.contains(&(o.path.to_owned(), o.method.to_owned())))
        .map(|o| format!("{} {}", o.method.to_uppercase(), o.path))
        .collect();
    assert!(
        stale.is_empty(),
        "documented routes no router declares: {stale:#?}"
    );
    assert!(
        seen.len() >= 20,
        "the scanner found too few routes: {seen:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let dir = std::env::temp_dir().join(format!("propsync-openapi-{}", rand::random::<u64>()));
    let relay = crate::open(crate::Config::new(
        dir.clone(),
        "127.0.0.1:0".parse().expect("an address"),
    ))
    .await
    .expect("a relay");
    let app = crate::app(relay);
    for o in OPERATIONS {
        let path = o
            .path
            .replace("{sha256}", &"0".repeat(64))
            .replace("{name}", "daily-register")
            .replace("{id}", "nosuchthing");
        let method = Method::from_bytes(o.method.to_uppercase().as_bytes()).expect("a method");
        let r = app
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri(&path)
                    .body(Body::empty())
                    .expect("a request"),
            )
            .await
            .expect("a response");
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
            || (status == StatusCode::NOT_FOUND
                && String::from_utf8_lossy(&body).contains("no such route"));
        assert!(
            !unrouted,
            "{} {path}: HTTP {status} {}",
            o.method,
            String::from_utf8_lossy(&body)
        );
    }
    let r = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/api/v1/no-such-thing")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "the check can fail");
    let r = app
        .oneshot(
            Request::builder()
                .uri("/")
                .body(Body::empty())
                .expect("a request"),
        )
        .await
        .expect("a response");
    assert_eq!(r.status(), StatusCode::OK);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_document_is_openapi_3_1_with_a_bearer_scheme() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let ticket = &doc["paths"]["/api/v1/tickets/{id}"]["get"];
    assert_eq!(ticket["parameters"][0]["name"], "id");
    assert_eq!(ticket["parameters"][0]["in"], "path");
    assert_eq!(
        doc["paths"]["/api/v1/login"]["post"]["security"],
        serde_json::json!([])
    );
}

#[test]
fn the_qr_code_is_an_inline_svg() {
    let svg = super::print::qr_svg("http://127.0.0.1:8080/#/ticket/abc").expect("a QR code");
    assert!(svg.starts_with("<svg"), "{}", &svg[..40.min(svg.len())]);
    assert!(svg.contains("</svg>"));
}

#[test]
fn the_printed_order_has_three_copies_and_voids_show_why() {
    use schema::ticket::{Channel, Reported, TicketHeader};
    use schema::{
        DeviceId, Event, EventData, EventId, Kind, Outcome, Policy, Projection, Ticket, UserId,
        VerdictRecord,
    };
    // 23:30 UTC is 07:30 the next morning in Shanghai: the form shows that.
    let at: chrono::DateTime<chrono::Utc> = "2026-03-02T23:30:00Z".parse().expect("a time");
    let mut t = Ticket::new(TicketHeader {
        kind: Kind::Repair,
        household: None,
        location: "B1 lobby <door>".into(),
        title: "Door closer broken".into(),
        description: String::new(),
        reported: Reported {
            by: UserId::new("frontdesk").expect("a user"),
            channel: Channel::WalkIn,
            at,
        },
        caller: None,
    });
    for (i, (action, reason)) in [("issue", None), ("void", Some("duplicate entry"))]
        .into_iter()
        .enumerate()
    {
        let e = Event {
            id: EventId::random(),
            action: action.into(),
            by: UserId::new("frontdesk").expect("a user"),
            device: DeviceId::new("web-frontdesk").expect("a device"),
            at,
            data: EventData {
                category: Some("doors".into()),
                urgency: Some(schema::ticket::Urgency::Normal),
                reason: reason.map(Into::into),
                ..EventData::default()
            },
        };
        t.server.verdicts.insert(
            e.id.clone(),
            VerdictRecord {
                seq: i as u64 + 1,
                outcome: Outcome::Accepted,
                rule: "allowed".into(),
                reason: String::new(),
                at,
            },
        );
        t.events.push(e);
    }
    t.server.serial = Some("RO-2026-000007".parse().expect("a serial"));
    let p = Projection::official(&t, &Policy::default());
    let html = super::print::render(
        &t,
        &p,
        Some("B1-0101"),
        "http://x/#/ticket/1",
        "<svg></svg>",
        crate::settings::DEFAULT_TIME_ZONE,
    );
    assert!(
        html.contains("2026-03-03 07:30"),
        "the received time is Shanghai's wall time"
    );
    assert!(!html.contains("UTC"), "no UTC time on the form");
    for label in ["住户联", "工程联", "客服联"] {
        assert_eq!(html.matches(label).count(), 1, "{label}");
    }
    assert_eq!(
        html.matches("RO-2026-000007").count(),
        5,
        "title, heading and each copy"
    );
    assert_eq!(html.matches("VOID 作废").count(), 3);
    assert_eq!(html.matches("duplicate entry").count(), 3);
    assert!(html.contains("B1 lobby &lt;door&gt;"), "escaped");
}
