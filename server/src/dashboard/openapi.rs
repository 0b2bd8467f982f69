//! The OpenAPI 3.1 document for `/api/v1`, built from [`OPERATIONS`]: one row
//! per route and method. `dashboard/tests.rs` checks the rows against the
//! routers' sources and against the running router, both ways.

use serde_json::{Map, Value, json};

/// One documented operation.
#[derive(Debug)]
pub(crate) struct Op {
    pub(crate) path: &'static str,
    pub(crate) method: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) summary: &'static str,
    /// Query parameters (path parameters are read from `path`).
    pub(crate) query: &'static [&'static str],
    /// Whether a JSON body is sent.
    pub(crate) body: bool,
    /// Whether the route needs no token.
    pub(crate) public: bool,
}

const fn op(
    path: &'static str,
    method: &'static str,
    tag: &'static str,
    summary: &'static str,
    query: &'static [&'static str],
) -> Op {
    Op {
        path,
        method,
        tag,
        summary,
        query,
        body: false,
        public: false,
    }
}

const fn with_body(mut o: Op) -> Op {
    o.body = true;
    o
}

const fn public(mut o: Op) -> Op {
    o.public = true;
    o
}

/// Every `/api/v1` route and method.
pub(crate) const OPERATIONS: &[Op] = &[
    public(op(
        "/api/v1/health",
        "get",
        "relay",
        "Liveness and connection counts",
        &[],
    )),
    public(with_body(op(
        "/api/v1/login",
        "post",
        "auth",
        "Log in with user name and password; returns a session token, role and department",
        &[],
    ))),
    op("/api/v1/me", "get", "auth", "Who the token belongs to", &[]),
    op(
        "/api/v1/tickets",
        "get",
        "tickets",
        "The ticket register, newest first, filtered",
        &[
            "kind",
            "status",
            "assignee",
            "department",
            "flag",
            "from",
            "to",
            "limit",
        ],
    ),
    with_body(op(
        "/api/v1/tickets",
        "post",
        "tickets",
        "Record a contact (every kind); orders get their serial at once",
        &[],
    )),
    op(
        "/api/v1/tickets/{id}",
        "get",
        "tickets",
        "A ticket: events with verdicts, projection, flags, notes, attachments, heads",
        &[],
    ),
    with_body(op(
        "/api/v1/tickets/{id}/events",
        "post",
        "tickets",
        "Take a lifecycle action (with optional note and the heads the person saw); returns the verdict",
        &[],
    )),
    op(
        "/api/v1/review-queue",
        "get",
        "review",
        "Conflicts and rejections awaiting review",
        &["open", "kind", "document"],
    ),
    op(
        "/api/v1/sync-log",
        "get",
        "sync",
        "Sync sessions and the per-change ledger",
        &["user", "device", "document", "verdict", "from", "to"],
    ),
    op(
        "/api/v1/security-log",
        "get",
        "sync",
        "Refused logins, tokens and changes",
        &[],
    ),
    op(
        "/api/v1/reports/serial-continuity",
        "get",
        "reports",
        "The number ledger of one series and year, with missing and out-of-order numbers",
        &["series", "year"],
    ),
    op(
        "/api/v1/reports",
        "get",
        "reports",
        "The reports and whether the caller may read each",
        &[],
    ),
    op(
        "/api/v1/reports/{name}",
        "get",
        "reports",
        "One report as of a cut-off (JSON, or CSV with format=csv)",
        &["as_of", "from", "format"],
    ),
    op("/api/v1/devices", "get", "devices", "Enrolled devices", &[]),
    op(
        "/api/v1/devices/{id}/revoke",
        "post",
        "devices",
        "Revoke a device (manager)",
        &[],
    ),
    op(
        "/api/v1/households",
        "get",
        "households",
        "Search household files by unit or building",
        &["q"],
    ),
    op(
        "/api/v1/households/{id}",
        "get",
        "households",
        "A household file: public part, private part by role, its tickets",
        &[],
    ),
    op(
        "/api/v1/blobs/{sha256}",
        "put",
        "blobs",
        "Upload (or resume) a photo by its SHA-256 (X-Blob-Size, X-Blob-Offset)",
        &[],
    ),
    op(
        "/api/v1/blobs/{sha256}",
        "head",
        "blobs",
        "How many bytes of a blob the relay has (X-Blob-Received)",
        &[],
    ),
    op(
        "/api/v1/blobs/{sha256}",
        "get",
        "blobs",
        "A blob's bytes",
        &[],
    ),
    op(
        "/api/v1/lifecycle",
        "get",
        "dashboard",
        "The transition table and value lists the pages build their forms from",
        &[],
    ),
    op(
        "/api/v1/live",
        "get",
        "dashboard",
        "Server-sent events, one per ticket change (token in ?token=)",
        &["token"],
    ),
    public(op(
        "/api/v1/openapi.json",
        "get",
        "dashboard",
        "This document",
        &[],
    )),
];

fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect()
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let mut params: Vec<Value> = path_params(o.path)
            .into_iter()
            .map(|n| json!({"name": n, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(o.query.iter().map(
            |n| json!({"name": n, "in": "query", "required": false, "schema": {"type": "string"}}),
        ));
        let mut operation = json!({
            "tags": [o.tag],
            "summary": o.summary,
            "operationId": format!("{}{}", o.method, o.path.replace(['/', '{', '}', '.', '-'], "_")),
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                "400": {"$ref": "#/components/responses/Error"},
                "401": {"$ref": "#/components/responses/Error"},
                "403": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        });
        if o.body {
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": {"type": "object"}}},
            });
        }
        if o.public {
            operation["security"] = json!([]);
        }
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method] = operation;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "propsync relay",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The relay's JSON API (DESIGN.md §8). Errors are {\"error\": {\"code\", \"message\"}}. \
                            Authenticate with `Authorization: Bearer <token>` from /api/v1/login (or ?token=).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
            },
            "responses": {
                "Error": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "properties": {"error": {"type": "object", "properties": {
                            "code": {"type": "string"}, "message": {"type": "string"},
                        }}},
                    }}},
                },
            },
        },
    })
}
