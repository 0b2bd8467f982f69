-- The relay's edges (issue 11): coalesced security-log rows, dashboard
-- sessions that logout revokes, which documents reference which blob, who
-- uploaded a blob, and each device's upload volume per day.

-- One row stands for `count` like refusals between `at` and `last_at`.
ALTER TABLE security_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
ALTER TABLE security_log ADD COLUMN last_at TEXT;

-- A dashboard session: its token carries `jti` = id; logout sets revoked_at.
-- `csrf` is the token state-changing requests authenticated by the cookie must echo.
CREATE TABLE web_sessions (
    id         TEXT PRIMARY KEY,
    username   TEXT NOT NULL,
    csrf       TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE INDEX web_sessions_by_user ON web_sessions(username);

-- Which ticket references which blob (attachments, event photos), kept in the
-- commit that writes the ticket's register row.
CREATE TABLE blob_refs (
    sha256 TEXT NOT NULL,
    doc_id TEXT NOT NULL,
    PRIMARY KEY (sha256, doc_id)
);

-- Everyone who sent a blob's whole bytes (the first uploader and anyone who
-- proved they hold the same bytes since).
CREATE TABLE blob_uploaders (
    sha256   TEXT NOT NULL,
    username TEXT NOT NULL,
    PRIMARY KEY (sha256, username)
);
INSERT INTO blob_uploaders(sha256, username) SELECT sha256, uploaded_by FROM blobs;

-- Bytes each device sent to the blob store per UTC day (the upload quota).
CREATE TABLE blob_usage (
    device_id TEXT NOT NULL,
    day       TEXT NOT NULL,
    bytes     INTEGER NOT NULL,
    PRIMARY KEY (device_id, day)
);
