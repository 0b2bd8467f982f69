// Long file: the OpenAPI document, one literal per operation, until it is generated from the types.
//! The OpenAPI 3.1 document for `/api/v1`, built from [`OPERATIONS`]: one row
//! per route and method, naming its parameters, request body, success
//! response and error statuses. Bodies and parameters refer to the shared
//! component schemas of [`schemas`]; every error is the one `Error` shape
//! (`{"error": {"code", "message"}}`, see `error.rs`).
//!
//! `dashboard/tests.rs` checks the rows against the routers' sources and
//! against the running router, both ways; the tests below check the document
//! is self-consistent. `server/tests/schemathesis.sh` runs Schemathesis
//! against it.
//!
//! Document ids are base58check (`automerge-doc-id` format), which no JSON
//! Schema keyword can express; `server/tests/schemathesis_hooks.py` teaches
//! Schemathesis to make well-formed ones.

use schema::ticket::{Channel, ContactResult, Satisfaction, Urgency};
use schema::{Action, Department, Flag, Kind, Role, Series, Status};
use serde_json::{Map, Value, json};

/// Where a parameter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum In {
    Path,
    Query,
    Header,
}

impl In {
    fn name(self) -> &'static str {
        match self {
            In::Path => "path",
            In::Query => "query",
            In::Header => "header",
        }
    }
}

/// One parameter: its name, where it goes, and the component schema of its value.
#[derive(Debug)]
pub(crate) struct Param {
    pub(crate) name: &'static str,
    pub(crate) at: In,
    pub(crate) schema: &'static str,
    pub(crate) required: bool,
}

/// A path parameter (always required).
const fn path(name: &'static str, schema: &'static str) -> Param {
    Param {
        name,
        at: In::Path,
        schema,
        required: true,
    }
}

/// An optional query parameter.
const fn query(name: &'static str, schema: &'static str) -> Param {
    Param {
        name,
        at: In::Query,
        schema,
        required: false,
    }
}

/// An optional header.
const fn header(name: &'static str, schema: &'static str) -> Param {
    Param {
        name,
        at: In::Header,
        schema,
        required: false,
    }
}

const fn required(mut p: Param) -> Param {
    p.required = true;
    p
}

/// What a request or a success response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Content {
    /// JSON matching a component schema.
    Json(&'static str),
    /// JSON matching a component schema, or CSV with `format=csv`.
    JsonOrCsv(&'static str),
    /// Bytes of any media type.
    Bytes,
    /// Server-sent events.
    EventStream,
    /// No body (a HEAD answer: what it says is in headers).
    Nothing,
}

/// A follow-up the success response makes possible: `to`'s parameter `param`
/// is `expr` (a runtime expression) of this response.
#[derive(Debug)]
pub(crate) struct Link {
    pub(crate) name: &'static str,
    pub(crate) to: (&'static str, &'static str),
    pub(crate) param: &'static str,
    pub(crate) expr: &'static str,
}

/// One documented operation.
#[derive(Debug)]
pub(crate) struct Op {
    pub(crate) path: &'static str,
    pub(crate) method: &'static str,
    pub(crate) tag: &'static str,
    pub(crate) summary: &'static str,
    /// Path, query and header parameters.
    pub(crate) params: &'static [Param],
    /// The request body, if one is sent.
    pub(crate) body: Option<Content>,
    /// The success status and what it carries.
    pub(crate) ok: (u16, Content),
    /// Response headers of the success answer: name, component schema.
    pub(crate) ok_headers: &'static [(&'static str, &'static str)],
    /// The error statuses the handler can answer (each an `Error` body).
    pub(crate) errors: &'static [u16],
    pub(crate) links: &'static [Link],
    /// Whether the route needs no token.
    pub(crate) public: bool,
}

const fn op(
    path: &'static str,
    method: &'static str,
    tag: &'static str,
    summary: &'static str,
) -> Op {
    Op {
        path,
        method,
        tag,
        summary,
        params: &[],
        body: None,
        ok: (200, Content::Json("Object")),
        ok_headers: &[],
        errors: &[401],
        links: &[],
        public: false,
    }
}

impl Op {
    const fn params(mut self, params: &'static [Param]) -> Self {
        self.params = params;
        self
    }

    const fn body(mut self, body: Content) -> Self {
        self.body = Some(body);
        self
    }

    const fn ok(mut self, status: u16, content: Content) -> Self {
        self.ok = (status, content);
        self
    }

    const fn ok_headers(mut self, headers: &'static [(&'static str, &'static str)]) -> Self {
        self.ok_headers = headers;
        self
    }

    const fn errors(mut self, errors: &'static [u16]) -> Self {
        self.errors = errors;
        self
    }

    const fn links(mut self, links: &'static [Link]) -> Self {
        self.links = links;
        self
    }

    const fn public(mut self) -> Self {
        self.public = true;
        self
    }

    fn operation_id(&self) -> String {
        operation_id(self.method, self.path)
    }
}

fn operation_id(method: &str, path: &str) -> String {
    format!("{method}{}", path.replace(['/', '{', '}', '.', '-'], "_"))
}

const TICKET_ID: Param = path("id", "DocId");
const BLOB: Param = path("sha256", "Sha256");
const FROM: Param = query("from", "TimeParam");
const TO: Param = query("to", "TimeParam");

const GET_TICKET: Link = Link {
    name: "GetTicket",
    to: ("/api/v1/tickets/{id}", "get"),
    param: "id",
    expr: "$response.body#/id",
};
const POST_EVENT: Link = Link {
    name: "PostEvent",
    to: ("/api/v1/tickets/{id}/events", "post"),
    param: "id",
    expr: "$response.body#/id",
};

/// Every `/api/v1` route and method.
pub(crate) const OPERATIONS: &[Op] = &[
    op(
        "/api/v1/health",
        "get",
        "relay",
        "Liveness and connection counts",
    )
    .ok(200, Content::Json("Health"))
    .errors(&[])
    .public(),
    op(
        "/api/v1/login",
        "post",
        "auth",
        "Log in with user name and password; returns a session token, its CSRF token, role and \
         department, and sets the HttpOnly session cookie (rate-limited per address and per user \
         name; repeated failures lock the name out: 429 with Retry-After)",
    )
    .body(Content::Json("Login"))
    .ok(200, Content::Json("Session"))
    .ok_headers(&[("Set-Cookie", "String")])
    .errors(&[400, 401, 413])
    .public(),
    op(
        "/api/v1/logout",
        "post",
        "auth",
        "End this dashboard session server-side: its token and cookie stop working everywhere, \
         live streams included (with the cookie, send X-CSRF-Token)",
    )
    .ok(200, Content::Json("LoggedOut"))
    .errors(&[401, 403]),
    op("/api/v1/me", "get", "auth", "Who the token belongs to")
        .ok(200, Content::Json("Me"))
        .errors(&[401, 404]),
    op(
        "/api/v1/tickets",
        "get",
        "tickets",
        "The ticket register, newest first, filtered",
    )
    .params(&[
        query("kind", "KindFilter"),
        query("status", "StatusFilter"),
        query("assignee", "String"),
        query("department", "DepartmentFilter"),
        query("flag", "FlagFilter"),
        FROM,
        TO,
        query("limit", "Limit"),
    ])
    .ok(200, Content::Json("TicketList"))
    .errors(&[400, 401]),
    op(
        "/api/v1/tickets",
        "post",
        "tickets",
        "Record a contact (the kinds the caller's role may issue or record); orders get their serial at once",
    )
    .body(Content::Json("NewTicket"))
    .ok(201, Content::Json("TicketDetail"))
    .errors(&[400, 401, 403, 409, 413, 422, 507])
    .links(&[GET_TICKET, POST_EVENT]),
    op(
        "/api/v1/tickets/{id}",
        "get",
        "tickets",
        "A ticket: events with verdicts, projection, flags, notes, attachments, heads",
    )
    .params(&[TICKET_ID])
    .ok(200, Content::Json("TicketDetail"))
    .errors(&[400, 401, 404])
    .links(&[POST_EVENT]),
    op(
        "/api/v1/tickets/{id}/events",
        "post",
        "tickets",
        "Take a lifecycle action (with optional note and the heads the person saw); returns the verdict",
    )
    .params(&[TICKET_ID])
    .body(Content::Json("NewEvent"))
    .ok(200, Content::Json("EventResult"))
    .errors(&[400, 401, 404, 409, 413, 422, 507]),
    op(
        "/api/v1/review-queue",
        "get",
        "review",
        "Conflicts and rejections awaiting review",
    )
    .params(&[
        query("open", "Boolean"),
        query("kind", "String"),
        query("document", "DocId"),
    ])
    .ok(200, Content::Json("ReviewQueue"))
    .errors(&[400, 401, 403]),
    op(
        "/api/v1/sync-log",
        "get",
        "sync",
        "Sync sessions and the per-change ledger",
    )
    .params(&[
        query("user", "String"),
        query("device", "String"),
        query("document", "DocIdFilter"),
        query("verdict", "String"),
        FROM,
        TO,
    ])
    .ok(200, Content::Json("SyncLog"))
    .errors(&[400, 401, 403]),
    op(
        "/api/v1/security-log",
        "get",
        "sync",
        "Refused logins, tokens and changes",
    )
    .ok(200, Content::Json("SecurityLog"))
    .errors(&[401, 403]),
    op(
        "/api/v1/reports/serial-continuity",
        "get",
        "reports",
        "The number ledger of one series and year, with missing and out-of-order numbers",
    )
    .params(&[
        required(query("series", "Series")),
        required(query("year", "Year")),
    ])
    .ok(200, Content::Json("SerialContinuity"))
    .errors(&[400, 401, 403]),
    op(
        "/api/v1/reports",
        "get",
        "reports",
        "The reports and whether the caller may read each",
    )
    .ok(200, Content::Json("ReportList"))
    .links(&[Link {
        name: "GetReport",
        to: ("/api/v1/reports/{name}", "get"),
        param: "name",
        expr: "$response.body#/reports/0/name",
    }]),
    op(
        "/api/v1/reports/{name}",
        "get",
        "reports",
        "One report as of a cut-off (JSON, CSV with format=csv, an XLSX workbook with format=xlsx; \
         any other format is JSON)",
    )
    .params(&[
        path("name", "ReportName"),
        query("as_of", "TimeParam"),
        query("from", "TimeParam"),
        query("format", "String"),
    ])
    .ok(200, Content::JsonOrCsv("Report"))
    .errors(&[400, 401, 403, 404]),
    op("/api/v1/devices", "get", "devices", "Enrolled devices")
        .ok(200, Content::Json("DeviceList"))
        .errors(&[401, 403]),
    op(
        "/api/v1/devices/{id}/revoke",
        "post",
        "devices",
        "Revoke a device (manager)",
    )
    .params(&[path("id", "DeviceId")])
    .ok(200, Content::Json("Revocation"))
    .errors(&[400, 401, 403, 404, 507]),
    op(
        "/api/v1/enrolments",
        "post",
        "devices",
        "A one-time enrolment code (10 minutes) for a user's phone, as text and as a QR code \
         of <origin>/app/#enrol=<code> (supervisor, engineering supervisor, manager)",
    )
    .body(Content::Json("NewEnrolment"))
    .ok(201, Content::Json("Enrolment"))
    .errors(&[400, 401, 403, 404, 409, 413, 507]),
    op(
        "/api/v1/enrol",
        "post",
        "devices",
        "The field app exchanges a one-time enrolment code for a new device and its device token",
    )
    .body(Content::Json("EnrolExchange"))
    .ok(200, Content::Json("EnrolledDevice"))
    .errors(&[400, 401, 413, 429, 507])
    .public(),
    op(
        "/api/v1/households",
        "get",
        "households",
        "Search household files by unit or building, or by a phone number, resident's name or plate",
    )
    .params(&[query("q", "String")])
    .ok(200, Content::Json("HouseholdList"))
    .errors(&[400, 401, 403]),
    op(
        "/api/v1/households/{id}",
        "get",
        "households",
        "A household file: public part, private part by role, its tickets",
    )
    .params(&[path("id", "DocId")])
    .ok(200, Content::Json("HouseholdFile"))
    .errors(&[400, 401, 404]),
    op(
        "/api/v1/blobs/{sha256}",
        "put",
        "blobs",
        "Upload (or resume) a photo by its SHA-256 (X-Blob-Size, X-Blob-Offset)",
    )
    .params(&[
        BLOB,
        required(header("X-Blob-Size", "ByteCount")),
        header("X-Blob-Offset", "ByteCount"),
    ])
    .body(Content::Bytes)
    .ok(200, Content::Json("BlobProgress"))
    .errors(&[400, 401, 404, 409, 413, 422, 507]),
    op(
        "/api/v1/blobs/{sha256}",
        "head",
        "blobs",
        "How many bytes of a blob the relay has (X-Blob-Received)",
    )
    .params(&[BLOB])
    .ok(200, Content::Nothing)
    .ok_headers(&[("X-Blob-Received", "ByteCount")])
    .errors(&[400, 401, 404]),
    op(
        "/api/v1/blobs/{sha256}",
        "get",
        "blobs",
        "A blob's bytes: photo types (JPEG, PNG, WebP, GIF, HEIC/HEIF) inline, anything else \
         as an application/octet-stream attachment; always nosniff and a sandboxing CSP",
    )
    .params(&[BLOB])
    .ok(200, Content::Bytes)
    .ok_headers(&[
        ("Content-Disposition", "String"),
        ("X-Content-Type-Options", "String"),
        ("Content-Security-Policy", "String"),
    ])
    .errors(&[400, 401, 404]),
    op(
        "/api/v1/lifecycle",
        "get",
        "dashboard",
        "The transition table and value lists the pages build their forms from",
    )
    .ok(200, Content::Json("Lifecycle")),
    op(
        "/api/v1/live",
        "get",
        "dashboard",
        "Server-sent events, one per ticket change (the session cookie or a bearer session token; \
         the stream ends when the session does)",
    )
    .ok(200, Content::EventStream),
    op(
        "/api/v1/property",
        "get",
        "property",
        "The property as set up (null before set-up): name, time zone, buildings and units",
    )
    .errors(&[401]),
    op(
        "/api/v1/property",
        "post",
        "property",
        "Set the property up once (manager): name, time zone, buildings, units with floor area \
         in hundredths of a m²",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/household-files",
        "get",
        "property",
        "Household files, or those matching q (a phone number, unit, name or number plate)",
    )
    .params(&[query("q", "String")])
    .errors(&[400, 401, 403]),
    op(
        "/api/v1/household-files",
        "post",
        "property",
        "Create a household file (front desk, supervisor, manager)",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/household-files/{id}",
        "get",
        "property",
        "A household file with its whole history (who, when, before and after)",
    )
    .params(&[path("id", "DocId")])
    .errors(&[400, 401, 403, 404]),
    op(
        "/api/v1/household-files/{id}",
        "put",
        "property",
        "Edit a household file on the version read; the version before is kept",
    )
    .params(&[path("id", "DocId")])
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 404, 409, 413]),
    op(
        "/api/v1/household-files/{id}/extract",
        "get",
        "property",
        "Report 17, the household file extract: the file, its history, its tickets and its fee \
         ledger (for the front desk only whether it is in arrears), as recorded by as_of; JSON, \
         CSV with format=csv, an XLSX workbook with format=xlsx",
    )
    .params(&[
        path("id", "DocId"),
        query("as_of", "TimeParam"),
        query("format", "String"),
    ])
    .errors(&[400, 401, 403, 404]),
    op(
        "/api/v1/household-files/import",
        "post",
        "property",
        "Import household files from CSV or XLSX: a preview, or with commit=true all rows or none; \
         every bad row is named with its column",
    )
    .params(&[query("commit", "String"), query("format", "String")])
    .body(Content::Bytes)
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/household-files/imports",
        "post",
        "property",
        "Start an import of household files (CSV or XLSX) as a job to follow: 202 with its id; \
         the same checks and all-or-nothing commit as /household-files/import",
    )
    .params(&[query("commit", "String"), query("format", "String")])
    .body(Content::Bytes)
    .ok(202, Content::Json("Object"))
    .errors(&[400, 401, 403, 413, 429]),
    op(
        "/api/v1/household-files/imports/{id}",
        "get",
        "property",
        "An import job (its starter only): state parsing, checking, writing, done or failed; \
         done of total; every bad row when refused; the outcome when done",
    )
    .params(&[path("id", "String")])
    .errors(&[401, 403, 404]),
    op(
        "/api/v1/fees/items",
        "get",
        "fees",
        "The charge items (cashier, supervisor, manager)",
    )
    .errors(&[401, 403]),
    op(
        "/api/v1/fees/items",
        "post",
        "fees",
        "Add or change a charge item (manager)",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 413]),
    op(
        "/api/v1/fees/bill-runs",
        "post",
        "fees",
        "Bill a period (YYYY-MM); repeating it bills nothing twice",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 413]),
    op(
        "/api/v1/fees/charges",
        "post",
        "fees",
        "Post a metered or one-off charge to a household (idempotent by request_id)",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/fees/payments",
        "post",
        "fees",
        "Record a payment (cashier): receipt number, allocation to the oldest open bills \
         unless chosen, the rest held as credit",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/fees/adjustments",
        "post",
        "fees",
        "A refund or an adjustment as a reversing entry (manager)",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/fees/reminders",
        "post",
        "fees",
        "Record an arrears reminder (催缴) with its channel and result",
    )
    .body(Content::Json("Object"))
    .errors(&[400, 401, 403, 409, 413]),
    op(
        "/api/v1/fees/households/{id}",
        "get",
        "fees",
        "A household's ledger (cashier, supervisor, manager); the front desk sees only whether \
         it is in arrears",
    )
    .params(&[path("id", "DocId")])
    .errors(&[400, 401, 403, 404]),
    op(
        "/api/v1/openapi.json",
        "get",
        "dashboard",
        "This document",
    )
    .ok(200, Content::Json("OpenApi"))
    .errors(&[])
    .public(),
];

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// The shared error response of each status, by name.
const ERROR_RESPONSES: &[(u16, &str, &str)] = &[
    (
        400,
        "BadRequest",
        "The request is malformed or names unknown values (bad_request)",
    ),
    (
        401,
        "Unauthorized",
        "No valid token, or a wrong user name or password (unauthorized, bad_login, token_expired, revoked)",
    ),
    (
        403,
        "Forbidden",
        "The caller's role may not do this (forbidden); a refused lifecycle step names its rule \
         first in the message (e.g. `role_not_allowed: ...`)",
    ),
    (
        404,
        "NotFound",
        "No such thing, or not one the caller may see (not_found)",
    ),
    (
        409,
        "Conflict",
        "A rule of the stored data refuses it (conflict), or a blob upload resumes at the wrong offset \
         (offset_mismatch, with `received`)",
    ),
    (
        413,
        "TooLarge",
        "The upload or request body is larger than the relay accepts (too_large)",
    ),
    (
        422,
        "Refused",
        "A hard rule refused the change, or the version acted on is unknown (refused)",
    ),
    (
        429,
        "TooMany",
        "Too many requests from this address, too many logins for this user name (rate_limited), \
         the user name is locked out after failed logins (locked_out), or the device's daily upload \
         quota is used up (quota_exceeded); Retry-After says how many seconds to wait",
    ),
    (
        507,
        "StorageFull",
        "The relay's storage is full; reads still work (storage_full)",
    ),
];

fn content(c: Content) -> Option<Value> {
    let json_of = |s: &str| json!({ "application/json": { "schema": schema_ref(s) } });
    match c {
        Content::Json(s) => Some(json_of(s)),
        Content::JsonOrCsv(s) => {
            let mut v = json_of(s);
            v["text/csv"] = json!({ "schema": { "type": "string" } });
            Some(v)
        }
        Content::Bytes => Some(json!({
            "application/octet-stream": { "schema": { "type": "string", "format": "binary" } },
            "*/*": { "schema": { "type": "string", "format": "binary" } },
        })),
        Content::EventStream => {
            Some(json!({ "text/event-stream": { "schema": { "type": "string" } } }))
        }
        Content::Nothing => None,
    }
}

fn operation(o: &Op) -> Value {
    let params: Vec<Value> = o
        .params
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "in": p.at.name(),
                "required": p.required,
                "schema": schema_ref(p.schema),
            })
        })
        .collect();
    let description = match o.ok.0 {
        201 => "Created",
        202 => "Accepted",
        _ => "OK",
    };
    let mut ok = json!({ "description": description });
    if let Some(c) = content(o.ok.1) {
        ok["content"] = c;
    }
    if !o.ok_headers.is_empty() {
        ok["headers"] = o
            .ok_headers
            .iter()
            .map(|(name, s)| {
                (
                    (*name).to_owned(),
                    json!({ "required": true, "schema": schema_ref(s) }),
                )
            })
            .collect::<Map<_, _>>()
            .into();
    }
    if !o.links.is_empty() {
        ok["links"] = o
            .links
            .iter()
            .map(|l| {
                (
                    l.name.to_owned(),
                    json!({
                        "operationId": operation_id(l.to.1, l.to.0),
                        "parameters": { l.param: l.expr },
                    }),
                )
            })
            .collect::<Map<_, _>>()
            .into();
    }
    let mut responses = Map::new();
    responses.insert(o.ok.0.to_string(), ok);
    // Every route but the health check and this document is rate-limited
    // per client address.
    let limited = !matches!(o.path, "/api/v1/health" | "/api/v1/openapi.json");
    for status in o.errors.iter().chain(limited.then_some(&429)) {
        let Some((_, name, description)) = ERROR_RESPONSES.iter().find(|(s, ..)| s == status)
        else {
            continue;
        };
        // A HEAD answer has no body, whatever its status.
        let r = if o.method == "head" {
            json!({ "description": description })
        } else {
            json!({ "$ref": format!("#/components/responses/{name}") })
        };
        responses.insert(status.to_string(), r);
    }
    let mut operation = json!({
        "tags": [o.tag],
        "summary": o.summary,
        "operationId": o.operation_id(),
        "parameters": params,
        "responses": responses,
    });
    if let Some(body) = o.body.and_then(content) {
        operation["requestBody"] = json!({ "required": true, "content": body });
    }
    if o.public {
        operation["security"] = json!([]);
    }
    operation
}

/// The document.
pub(crate) fn document() -> Value {
    let mut paths = Map::new();
    for o in OPERATIONS {
        let entry = paths.entry(o.path.to_owned()).or_insert_with(|| json!({}));
        entry[o.method] = operation(o);
    }
    let responses: Map<String, Value> = ERROR_RESPONSES
        .iter()
        .map(|(status, name, description)| {
            let mut r = json!({
                "description": description,
                "content": { "application/json": { "schema": schema_ref("Error") } },
            });
            if *status == 429 {
                r["headers"] = json!({
                    "Retry-After": { "required": true, "schema": { "type": "integer", "minimum": 1 } },
                });
            }
            ((*name).to_owned(), r)
        })
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "propsync relay",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The relay's JSON API (DESIGN.md §8). Errors are {\"error\": {\"code\", \"message\"}}. \
                            Authenticate with `Authorization: Bearer <token>` from /api/v1/login, or with the \
                            HttpOnly session cookie login sets (then state-changing requests carry X-CSRF-Token); \
                            a device token opens only /sync, GET /api/v1/me and the blob store. \
                            Document ids are automerge-repo ids: base58check of 16 bytes (format automerge-doc-id).",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"cookie": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "propsync_session"},
            },
            "responses": responses,
            "schemas": schemas(),
        },
    })
}

fn names<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|x| f(*x)).collect()
}

/// A query filter: one of `values`, or empty for none.
fn filter(values: Vec<&'static str>) -> Value {
    let mut values = values;
    values.push("");
    json!({ "type": "string", "enum": values, "description": "empty: no filter" })
}

/// An object with these properties, the `required` ones always present.
fn object(required: &[&str], properties: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": properties })
}

fn array_of(items: Value) -> Value {
    json!({ "type": "array", "items": items })
}

/// The component schemas.
#[allow(
    clippy::too_many_lines,
    reason = "one declarative table of the API's shapes"
)]
fn schemas() -> Value {
    let r = schema_ref;
    let string = json!({ "type": "string" });
    let opt_string = json!({ "type": ["string", "null"] });
    let time = json!({ "type": "string", "format": "date-time" });
    let opt_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let int = json!({ "type": "integer" });
    let count = json!({ "type": "integer", "minimum": 0 });
    let boolean = json!({ "type": "boolean" });
    let strings = array_of(string.clone());
    let i64_ = |nullable: bool| {
        json!({
            "type": if nullable { json!(["integer", "null"]) } else { json!("integer") },
            "minimum": i64::MIN, "maximum": i64::MAX,
        })
    };
    let opt_enum = |values: Vec<&'static str>| {
        let mut values: Vec<Value> = values.into_iter().map(Value::from).collect();
        values.push(Value::Null);
        json!({ "enum": values })
    };
    // One of `values`; null or empty for the default.
    let or_default = |values: Vec<&'static str>, default: &str| {
        let mut values: Vec<Value> = values.into_iter().map(Value::from).collect();
        values.extend([Value::from(""), Value::Null]);
        json!({ "enum": values, "description": format!("null or empty: {default}") })
    };
    let nullable = |name: &str| json!({ "anyOf": [r(name), { "type": "null" }] });
    let ticket_summary_keys = [
        "id",
        "url",
        "kind",
        "status",
        "serial",
        "title",
        "location",
        "household",
        "assignee",
        "department",
        "created_by",
        "channel",
        "reported_at",
        "received_at",
        "updated_at",
        "paid",
        "flags",
    ];
    let values = json!({
        "Error": object(&["error"], json!({
            "error": object(&["code", "message"], json!({"code": string, "message": string})),
        })),
        "Object": { "type": "object" },
        "String": string,
        "Boolean": boolean,
        // --- identifiers and parameter values
        "DocId": { "type": "string", "format": "automerge-doc-id", "minLength": 16, "maxLength": 32 },
        "DocUrl": { "type": "string", "format": "automerge-url", "minLength": 26, "maxLength": 42 },
        "DocIdFilter": { "anyOf": [r("DocId"), { "type": "string", "maxLength": 0 }], "description": "empty: no filter" },
        "Time": time,
        "Name": {
            "type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$",
            "description": "A user, device or event id: 1 to 64 ASCII letters, digits, '-', '_' or '.'",
        },
        "DeviceId": r("Name"),
        "Sha256": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
        "ChangeHash": { "type": "string", "pattern": "^[0-9a-f]{64}$" },
        "ByteCount": { "type": "integer", "minimum": 0, "maximum": u64::MAX },
        "Limit": { "type": "integer", "minimum": 0, "maximum": u32::MAX, "description": "at most 5000 are returned" },
        "Year": { "type": "integer", "minimum": 0, "maximum": u16::MAX },
        "Series": { "type": "string", "enum": Series::ALL.iter().map(|s| s.code()).collect::<Vec<_>>() },
        "ReportName": { "type": "string", "enum": crate::reports::REPORTS.iter().map(|d| d.name).collect::<Vec<_>>() },
        "TimeParam": {
            "description": "RFC 3339 with an offset, or the property's wall time YYYY-MM-DDTHH:MM[:SS], or YYYY-MM-DD (its midnight in the property's time zone); empty: unset",
            "anyOf": [
                { "type": "string", "format": "date-time" },
                { "type": "string", "format": "date" },
                { "type": "string", "maxLength": 0 },
            ],
        },
        "KindFilter": filter(names(Kind::ALL, Kind::as_str)),
        "StatusFilter": filter(names(Status::ALL, Status::as_str)),
        "DepartmentFilter": filter(names(&Department::ALL, Department::as_str)),
        "FlagFilter": filter(names(&Flag::ALL, Flag::as_str)),
    });
    let bodies = json!({
        "Login": object(&["username", "password"], json!({"username": string, "password": string})),
        "NewTicket": {
            "type": "object",
            "required": ["kind", "title"],
            "properties": {
                "kind": { "enum": names(Kind::ALL, Kind::as_str) },
                "title": {
                    "type": "string", "minLength": 1, "maxLength": 200, "pattern": "\\S",
                    "description": "1 to 200 characters, not all blank",
                },
                "location": { "type": "string", "maxLength": 200 },
                "description": { "type": "string", "maxLength": 10000 },
                "household": { "anyOf": [r("DocId"), { "type": "null" }, { "const": "" }] },
                "channel": or_default(names(Channel::ALL, Channel::as_str), Channel::Phone.as_str()),
                "urgency": or_default(names(Urgency::ALL, Urgency::as_str), Urgency::Normal.as_str()),
                "category": opt_string,
                "paid": { "type": ["boolean", "null"] },
                "caller": { "anyOf": [r("Caller"), { "type": "null" }] },
            },
            "allOf": [
                {
                    "description": "a ticket needs a household or a non-blank location",
                    "anyOf": [
                        { "required": ["household"], "properties": { "household": { "type": "string", "minLength": 1 } } },
                        { "required": ["location"], "properties": { "location": { "type": "string", "pattern": "\\S" } } },
                    ],
                },
                {
                    "description": "repair and paid-service orders need a category",
                    "anyOf": [
                        { "properties": { "kind": { "enum": names(Kind::ALL, Kind::as_str).into_iter()
                            .filter(|k| !k.parse::<Kind>().is_ok_and(Kind::is_order)).collect::<Vec<_>>() } } },
                        { "required": ["category"], "properties": { "category": { "type": "string", "pattern": "\\S" } } },
                    ],
                },
            ],
        },
        "Caller": {
            "type": "object",
            "description": "Who called, and whether the clerk read the details back. The ticket document keeps the number masked (138****1234); the full number is shown to the front desk, supervisors, cashiers, managers and the ticket's assignee.",
            "properties": {
                "name": { "type": "string", "maxLength": 50 },
                "phone": { "type": "string", "pattern": "^$|^[+() -]*(?:[0-9][+() -]*){3,20}$" },
                "read_back": { "type": "boolean" },
            },
            "anyOf": [
                { "required": ["name"], "properties": { "name": { "type": "string", "pattern": "\\S" } } },
                { "required": ["phone"], "properties": { "phone": { "type": "string", "minLength": 1 } } },
            ],
        },
        "NewEvent": object(&["action"], json!({
            "action": { "enum": names(Action::ALL, Action::as_str) },
            "data": r("EventData"),
            "note": opt_string,
            "heads": { "type": ["array", "null"], "items": r("ChangeHash"),
                       "description": "the `heads` of the ticket as the person saw it" },
        })),
        "Material": object(&["name", "qty", "unit_fen"], json!({
            "name": string, "qty": i64_(false), "unit_fen": i64_(false),
        })),
        "EventData": {
            "type": "object",
            "description": "Which fields an action requires is in GET /api/v1/lifecycle",
            "properties": {
                "assignee": nullable("Name"),
                "appointment": opt_string,
                "reason": opt_string,
                "result": opt_string,
                "labour_min": i64_(true),
                "materials": { "type": ["array", "null"], "items": r("Material") },
                "photos": strings,
                "signature": opt_string,
                "resident_absent": { "type": ["boolean", "null"] },
                "witness": opt_string,
                "quote_fen": i64_(true),
                "amount_fen": i64_(true),
                "receipt": opt_string,
                "method": opt_string,
                "contact_result": opt_enum(names(ContactResult::ALL, ContactResult::as_str)),
                "satisfaction": opt_enum(names(Satisfaction::ALL, Satisfaction::as_str)),
                "comments": opt_string,
                "department": opt_enum(names(&Department::ALL, Department::as_str)),
                "category": opt_string,
                "urgency": opt_enum(names(Urgency::ALL, Urgency::as_str)),
                "paid": { "type": ["boolean", "null"] },
                "contractor": opt_string,
                "linked": nullable("DocUrl"),
                "target": nullable("Name"),
                "owner": nullable("Name"),
                "next_step": opt_string,
                "due_at": nullable("Time"),
                "copy_received": { "type": ["boolean", "null"] },
            },
        },
    });
    let answers = json!({
        "Health": object(&["status", "peer_id", "connections", "documents_loaded"], json!({
            "status": { "const": "ok" }, "peer_id": string, "connections": count, "documents_loaded": count,
        })),
        "Session": object(&["token", "csrf", "time_zone", "user", "display_name", "role", "department", "inbox"], json!({
            "token": string, "csrf": string, "time_zone": r("TimeZone"), "user": string, "display_name": string, "role": string,
            "department": string, "inbox": string,
        })),
        "LoggedOut": object(&["logged_out"], json!({ "logged_out": boolean })),
        "Me": object(&["user", "time_zone", "display_name", "role", "department", "device", "inbox", "relay_peer_id"], json!({
            "user": string, "time_zone": r("TimeZone"), "display_name": string, "role": string, "department": string,
            "device": string, "inbox": string, "relay_peer_id": string,
        })),
        "TimeZone": {
            "type": "string",
            "description": "The property's time zone (IANA name, read-only here; `propsync-server admin set-time-zone` sets it): the day of reports, serial years and every time shown. Times on the wire stay RFC 3339 UTC.",
        },
        "TicketSummary": object(&ticket_summary_keys, json!({
            "id": string, "url": string, "kind": string, "status": string, "serial": opt_string,
            "title": string, "location": string, "household": opt_string, "assignee": opt_string,
            "department": opt_string, "created_by": string, "channel": string,
            "reported_at": time, "received_at": time, "updated_at": time,
            "paid": boolean, "flags": strings,
        })),
        "TicketList": object(&["tickets", "as_of"], json!({
            "tickets": array_of(r("TicketSummary")), "as_of": time,
        })),
        "Verdict": object(&["seq", "outcome", "rule", "reason", "at"], json!({
            "seq": count, "outcome": string, "rule": string, "reason": string, "at": time,
        })),
        "TicketEvent": object(&["id", "action", "by", "device", "at", "data", "verdict"], json!({
            "id": string, "action": string, "by": string, "device": string, "at": time,
            "data": { "type": "object" }, "verdict": nullable("Verdict"),
        })),
        "TicketDetail": {
            "allOf": [r("TicketSummary")],
            "type": "object",
            "required": ["description", "projection", "events", "heads", "notes", "attachments"],
            "properties": {
                "description": string,
                "projection": object(&["kind", "status"], json!({})),
                "events": array_of(r("TicketEvent")),
                "heads": array_of(r("ChangeHash")),
                "notes": { "type": "array" },
                "attachments": { "type": "array" },
                "caller": {
                    "type": ["object", "null"],
                    "description": "name, phone (masked unless the reader may see it: `masked`), read_back",
                },
            },
        },
        "EventResult": object(&["event_id", "verdict", "ticket"], json!({
            "event_id": string, "verdict": nullable("Verdict"), "ticket": r("TicketDetail"),
        })),
        "ReviewQueue": object(&["items"], json!({
            "items": array_of(object(&["id", "doc_id", "kind", "rule", "reason", "username", "device_id",
                                       "authored_at", "received_at"], json!({
                "id": int, "doc_id": string, "event_id": opt_string, "change_hash": opt_string,
                "kind": string, "action": opt_string, "rule": string, "reason": string,
                "username": string, "device_id": string, "authored_at": time, "received_at": time,
                "resolved_at": opt_time, "resolved_by": opt_string, "resolution": opt_string,
            }))),
        })),
        "SyncLog": object(&["sessions", "changes"], json!({
            "sessions": array_of(object(&["id", "username", "device_id", "started_at"], json!({
                "id": int, "username": string, "device_id": string, "peer_id": opt_string,
                "remote_addr": opt_string, "started_at": string, "ended_at": opt_string,
                "end_reason": opt_string,
            }))),
            "changes": array_of(object(&["hash", "doc_id", "username", "device_id", "outcome"], json!({
                "hash": string, "doc_id": string, "actor": string, "username": string,
                "device_id": string, "session_id": { "type": ["integer", "null"] }, "bytes": count,
                "authored_at": time, "received_at": time, "outcome": string,
                "rule": opt_string, "reason": opt_string,
            }))),
        })),
        "SecurityLog": object(&["items"], json!({
            "items": array_of(object(&["at", "kind", "detail", "count"], json!({
                "at": string, "username": opt_string, "device_id": opt_string, "peer": opt_string,
                "kind": string, "detail": string, "count": count, "last_at": opt_string,
            }))),
        })),
        "SerialContinuity": object(
            &["series", "year", "issued", "first", "last", "missing", "out_of_order", "continuous", "entries"],
            json!({
                "series": r("Series"), "year": r("Year"), "issued": count,
                "first": { "type": ["integer", "null"] }, "last": { "type": ["integer", "null"] },
                "missing": array_of(count.clone()), "out_of_order": array_of(count.clone()),
                "continuous": boolean,
                "entries": array_of(object(&["serial", "number", "ticket", "assigned_at"], json!({
                    "serial": string, "number": count, "ticket": string, "assigned_at": time,
                    "status": opt_string, "title": opt_string, "void_reason": opt_string,
                }))),
            }),
        ),
        "DeviceList": object(&["devices"], json!({
            "devices": array_of(object(&["device_id", "username", "label", "created_at"], json!({
                "device_id": string, "username": string, "label": string, "created_at": time,
                "revoked_at": opt_time, "last_seen_at": opt_time,
            }))),
        })),
        "NewEnrolment": object(&["username"], json!({
            "username": r("Name"), "label": opt_string, "origin": opt_string,
        })),
        "Enrolment": object(&["code", "username", "expires_at", "link", "qr_svg"], json!({
            "code": string, "username": string, "expires_at": time, "link": string, "qr_svg": string,
        })),
        "EnrolExchange": object(&["code"], json!({ "code": string, "label": opt_string })),
        "EnrolledDevice": object(&["user", "device", "token"], json!({
            "user": string, "device": string, "token": string,
        })),
        "Revocation": object(&["device", "revoked"], json!({
            "device": string, "revoked": boolean,
        })),
        "HouseholdList": object(&["households"], json!({
            "households": array_of(object(&["id", "url", "private", "building", "unit"], json!({
                "id": string, "url": string, "private": opt_string, "building": string, "unit": string,
            }))),
        })),
        "HouseholdFile": object(&["id", "url", "public", "private", "private_visible", "tickets"], json!({
            "id": string, "url": string, "public": { "type": "object" },
            "private": { "type": ["object", "null"] }, "private_visible": boolean,
            "tickets": array_of(object(&["id", "kind", "status", "title", "received_at"], json!({
                "id": string, "kind": string, "status": string, "serial": opt_string,
                "title": string, "assignee": opt_string, "received_at": time,
            }))),
        })),
        "BlobProgress": object(&["sha256", "received", "complete"], json!({
            "sha256": r("Sha256"), "received": count, "complete": boolean,
        })),
        "Lifecycle": object(
            &["role", "rows", "kinds", "statuses", "channels", "urgencies", "satisfactions",
              "contact_results", "payment_methods", "departments", "roles", "flags"],
            json!({
                "role": { "enum": names(&Role::ALL, Role::as_str) },
                "rows": array_of(object(&["action", "kinds", "from", "to", "roles", "requires", "guards", "authority"], json!({
                    "action": string, "kinds": strings, "from": strings, "to": opt_string,
                    "roles": strings, "requires": strings, "guards": strings, "authority": boolean,
                }))),
                "kinds": strings, "statuses": strings, "channels": strings, "urgencies": strings,
                "satisfactions": strings, "contact_results": strings, "payment_methods": strings,
                "departments": strings, "roles": strings, "flags": strings,
            }),
        ),
        "OpenApi": object(&["openapi", "info", "paths"], json!({
            "openapi": string, "info": { "type": "object" }, "paths": { "type": "object" },
        })),
    });
    // The reports' shapes, apart: one `json!` this long would pass the macro's recursion limit.
    let reports = json!({
        "ReportPeriod": object(&["basis", "span", "zh", "en"], json!({
            "basis": { "type": "string", "description": "what the period counts: received_in_period, issued_in_period, made_in_period, due_or_made_in_period, open_at_cut_off" },
            "span": { "type": "string", "enum": ["day", "week", "month"], "description": "the default period: the cut-off's local day, its week from Monday 00:00 local, or its month from the 1st" },
            "zh": string, "en": string,
        })),
        "ReportList": object(&["time_zone", "reports"], json!({
            "time_zone": r("TimeZone"),
            "reports": array_of(object(&["name", "title", "title_zh", "period", "allowed"], json!({
                "name": r("ReportName"), "title": string, "title_zh": string,
                "period": r("ReportPeriod"), "allowed": boolean,
            }))),
        })),
        "ReportTable": object(&["title", "title_zh", "columns", "rows"], json!({
            "title": string, "title_zh": string,
            "columns": array_of(object(&["key", "label", "zh"], json!({ "key": string, "label": string, "zh": string }))),
            "rows": array_of(json!({ "type": "array" })),
        })),
        "Report": object(&["name", "title", "title_zh", "period", "time_zone", "as_of", "from", "summary", "tables", "charts", "changes_since"], json!({
            "name": r("ReportName"), "title": string, "title_zh": string,
            "period": r("ReportPeriod"), "time_zone": r("TimeZone"), "as_of": time, "from": time,
            "summary": array_of(object(&["label", "zh", "value"], json!({ "label": string, "zh": string }))),
            "tables": array_of(r("ReportTable")),
            "changes_since": {
                "description": "recorded by the cut-off, received after it: listed, never counted in the figures",
                "type": "array", "items": r("ReportTable"),
            },
            "charts": array_of(object(&["title", "stacked", "unit", "labels", "series"], json!({
                "title": string, "stacked": boolean, "unit": string, "labels": strings,
                "series": array_of(object(&["name", "values"], json!({
                    "name": string,
                    // A value that is not a finite number is written as null.
                    "values": array_of(json!({ "type": ["number", "null"] })),
                }))),
            }))),
        })),
    });
    let mut all = Map::new();
    for part in [values, bodies, answers, reports] {
        if let Value::Object(m) = part {
            all.extend(m);
        }
    }
    Value::Object(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_params(path: &str) -> Vec<&str> {
        path.split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }

    /// Every `$ref` in `v`.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(s)) = m.get("$ref") {
                    out.push(s);
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 50, "{found:?}");
        for r in found {
            let pointer = r.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn path_parameters_match_the_path_and_links_their_targets() {
        for o in OPERATIONS {
            let declared: Vec<&str> = o
                .params
                .iter()
                .filter(|p| p.at == In::Path)
                .map(|p| p.name)
                .collect();
            assert_eq!(declared, path_params(o.path), "{} {}", o.method, o.path);
            for l in o.links {
                let target = OPERATIONS
                    .iter()
                    .find(|t| (t.path, t.method) == l.to)
                    .unwrap_or_else(|| panic!("{}: no operation {:?}", l.name, l.to));
                assert!(
                    target.params.iter().any(|p| p.name == l.param),
                    "{}: {:?} has no parameter {}",
                    l.name,
                    l.to,
                    l.param
                );
            }
        }
    }

    #[test]
    fn every_error_status_has_a_shared_response() {
        for o in OPERATIONS {
            for s in o.errors {
                assert!(
                    ERROR_RESPONSES.iter().any(|(e, ..)| e == s),
                    "{} {}: {s}",
                    o.method,
                    o.path
                );
            }
            let authed_and_silent = !o.public && !o.errors.contains(&401);
            assert!(!authed_and_silent, "{} {} needs 401", o.method, o.path);
        }
    }
}
