-- The device store, version 1. See store.rs for what each table is for.

-- Enrolment and identity: relay URL, token, user, role, device, inbox, actor.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- Every document the device holds or has been told to hold.
-- listing: 'local' (made here, not yet seen in the inbox), 'listed' (in the
-- inbox), 'delisted' (left the inbox: purged once its pending changes are flushed).
CREATE TABLE docs (
    doc_id  TEXT PRIMARY KEY,
    kind    TEXT,
    access  TEXT NOT NULL DEFAULT 'rw' CHECK (access IN ('rw', 'ro')),
    label   TEXT NOT NULL DEFAULT '',
    listing TEXT NOT NULL DEFAULT 'listed' CHECK (listing IN ('local', 'listed', 'delisted')),
    serial  TEXT,
    title   TEXT
) STRICT;
CREATE INDEX docs_serial ON docs (serial);

-- A document is one snapshot (optional) plus incremental chunks, in id order.
-- sha256 is over bytes, so a chunk damaged on disk is found and reported.
CREATE TABLE chunks (
    id     INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
    kind   TEXT NOT NULL CHECK (kind IN ('snapshot', 'incremental')),
    bytes  BLOB NOT NULL,
    sha256 BLOB NOT NULL
) STRICT;
CREATE INDEX chunks_doc ON chunks (doc_id, id);

-- The automerge sync state (its shared heads) per document and relay.
CREATE TABLE sync_states (
    doc_id TEXT NOT NULL REFERENCES docs (doc_id) ON DELETE CASCADE,
    relay  TEXT NOT NULL,
    state  BLOB NOT NULL,
    PRIMARY KEY (doc_id, relay)
) STRICT;

-- Every local action until the relay has it and (for events) has judged it.
-- The change bytes are kept here too: an action is recoverable from this row
-- alone, whatever happens to the document's chunks.
CREATE TABLE pending (
    seq         INTEGER PRIMARY KEY,
    event_id    TEXT NOT NULL UNIQUE,
    doc_id      TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('event', 'note')),
    action      TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    change      BLOB NOT NULL,
    at          TEXT NOT NULL,
    acked       INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX pending_doc ON pending (doc_id);

-- The last verdict seen for each event of each ticket.
CREATE TABLE verdicts (
    doc_id   TEXT NOT NULL,
    event_id TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    outcome  TEXT NOT NULL,
    rule     TEXT NOT NULL,
    reason   TEXT NOT NULL,
    at       TEXT NOT NULL,
    PRIMARY KEY (doc_id, event_id)
) STRICT;

-- Local changes the relay hard-rejected (or could no longer take), kept for
-- the person and the manager to see and export. Never deleted by sync unless
-- the relay turns out to hold the change after all.
CREATE TABLE quarantine (
    id          INTEGER PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    change_hash TEXT NOT NULL,
    change      BLOB NOT NULL,
    rule        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    at          TEXT NOT NULL,
    summary     TEXT NOT NULL,
    UNIQUE (doc_id, change_hash)
) STRICT;

-- Photos by SHA-256; uploaded counts the bytes the relay has confirmed.
CREATE TABLE blobs (
    sha256   TEXT PRIMARY KEY,
    mime     TEXT NOT NULL,
    size     INTEGER NOT NULL,
    bytes    BLOB NOT NULL,
    uploaded INTEGER NOT NULL DEFAULT 0,
    complete INTEGER NOT NULL DEFAULT 0
) STRICT;
