-- The relay's whole schema, version 1. Times are RFC 3339 UTC text.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- HMAC keys for JWTs; the newest unretired one signs, all unretired ones verify.
CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    secret     BLOB NOT NULL,
    created_at TEXT NOT NULL,
    retired_at TEXT
);

CREATE TABLE users (
    username      TEXT PRIMARY KEY,
    display_name  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL,
    department    TEXT NOT NULL,
    inbox_doc     TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    disabled_at   TEXT
);

CREATE TABLE devices (
    device_id    TEXT PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES users(username),
    label        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    revoked_at   TEXT,
    last_seen_at TEXT
);

-- An Automerge actor belongs to exactly one device, bound at its first upload.
CREATE TABLE actors (
    actor     TEXT PRIMARY KEY,
    device_id TEXT NOT NULL REFERENCES devices(device_id),
    username  TEXT NOT NULL,
    bound_at  TEXT NOT NULL
);

-- Documents as a snapshot plus incremental chunks.
CREATE TABLE documents (
    doc_id      TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    snapshot    BLOB,
    chunk_bytes INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE chunks (
    id     INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES documents(doc_id),
    data   BLOB NOT NULL
);
CREATE INDEX chunks_by_doc ON chunks(doc_id, id);

-- The ticket register: a read model kept by the relay after every verdict.
CREATE TABLE tickets (
    doc_id      TEXT PRIMARY KEY REFERENCES documents(doc_id),
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    serial      TEXT UNIQUE,
    title       TEXT NOT NULL,
    location    TEXT NOT NULL,
    household   TEXT,
    assignee    TEXT,
    department  TEXT,
    created_by  TEXT NOT NULL,
    channel     TEXT NOT NULL,
    reported_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    paid        INTEGER NOT NULL,
    projection  TEXT NOT NULL
);
CREATE INDEX tickets_by_status ON tickets(status);
CREATE INDEX tickets_by_assignee ON tickets(assignee);

-- Who may sync which document (besides the roles that see everything).
CREATE TABLE doc_access (
    doc_id   TEXT NOT NULL,
    username TEXT NOT NULL,
    access   TEXT NOT NULL,   -- 'rw' listed in the inbox; 'flush' may still sync, not listed
    PRIMARY KEY (doc_id, username)
);
CREATE INDEX doc_access_by_user ON doc_access(username);

CREATE TABLE households (
    doc_id      TEXT PRIMARY KEY,
    private_doc TEXT,
    building    TEXT NOT NULL,
    unit        TEXT NOT NULL
);

-- Serial numbers: gap-free per series and year, in acceptance order.
CREATE TABLE number_series (
    series TEXT NOT NULL,
    year   INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (series, year)
);
CREATE TABLE number_ledger (
    series      TEXT NOT NULL,
    year        INTEGER NOT NULL,
    number      INTEGER NOT NULL,
    doc_id      TEXT NOT NULL UNIQUE,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (series, year, number)
);

-- One row per connection session.
CREATE TABLE sync_sessions (
    id                INTEGER PRIMARY KEY,
    username          TEXT NOT NULL,
    device_id         TEXT NOT NULL,
    peer_id           TEXT,
    remote_addr       TEXT,
    started_at        TEXT NOT NULL,
    ended_at          TEXT,
    end_reason        TEXT,
    bytes_in          INTEGER NOT NULL DEFAULT 0,
    bytes_out         INTEGER NOT NULL DEFAULT 0,
    messages_in       INTEGER NOT NULL DEFAULT 0,
    messages_out      INTEGER NOT NULL DEFAULT 0,
    documents         INTEGER NOT NULL DEFAULT 0,
    changes_received  INTEGER NOT NULL DEFAULT 0,
    accepted          INTEGER NOT NULL DEFAULT 0,
    conflict          INTEGER NOT NULL DEFAULT 0,
    rejected          INTEGER NOT NULL DEFAULT 0,
    hard_rejected     INTEGER NOT NULL DEFAULT 0
);

-- One row per change received: outcome is accepted, conflict, rejected or hard_rejected.
CREATE TABLE change_ledger (
    hash        TEXT PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    actor       TEXT NOT NULL,
    username    TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    session_id  INTEGER,
    bytes       INTEGER NOT NULL,
    authored_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    rule        TEXT,
    reason      TEXT
);
CREATE INDEX change_ledger_by_doc ON change_ledger(doc_id);
CREATE INDEX change_ledger_by_user ON change_ledger(username, received_at);

-- One row per judged event.
CREATE TABLE verdicts (
    doc_id      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    action      TEXT NOT NULL,
    username    TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    authored_at TEXT NOT NULL,
    judged_at   TEXT NOT NULL,
    PRIMARY KEY (doc_id, event_id)
);

-- Conflicts, rejections and hard rejections, for supervisors and managers.
CREATE TABLE review_queue (
    id          INTEGER PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    event_id    TEXT,
    change_hash TEXT,
    kind        TEXT NOT NULL,   -- conflict | rejected | hard_rejected
    action      TEXT,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    username    TEXT NOT NULL,
    device_id   TEXT NOT NULL,
    authored_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    resolved_at TEXT,
    resolved_by TEXT,
    resolution  TEXT,
    payload     BLOB
);
CREATE INDEX review_open ON review_queue(resolved_at);

-- Protocol-level refusals (malformed frames, bad tokens, floods): the security log.
CREATE TABLE security_log (
    id        INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    username  TEXT,
    device_id TEXT,
    peer      TEXT,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL
);

CREATE TABLE blobs (
    sha256      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    mime        TEXT NOT NULL,
    received    INTEGER NOT NULL,
    complete    INTEGER NOT NULL,
    uploaded_by TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
