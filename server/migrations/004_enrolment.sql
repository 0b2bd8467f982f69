-- One-time enrolment codes for the field app (DESIGN.md §4: no long-lived
-- credential in a URL). A supervisor makes one for a user from the
-- dashboard's Devices page; the phone exchanges it once, within minutes, for
-- a device and its token. Only the code's SHA-256 is kept.
CREATE TABLE enrolments (
    code_hash  TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users(username),
    label      TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    device_id  TEXT
);
