-- Inboxes kept durably (schema version 2).

-- What each user's inbox document lists (tickets only), written in the same
-- transaction as the inbox document's change, so the two never disagree.
CREATE TABLE inbox_entries (
    username TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    PRIMARY KEY (username, doc_id)
);
CREATE INDEX inbox_entries_by_doc ON inbox_entries(doc_id);

-- Tickets whose audience may have changed, written in the ticket's own
-- commit and removed once every affected inbox has been brought up to date:
-- an inbox update survives a crash between the two.
CREATE TABLE inbox_outbox (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL
);
CREATE INDEX inbox_outbox_by_doc ON inbox_outbox(doc_id, id);

-- A new database has no inbox to read into the mirror; an older one is read
-- once at the next start.
INSERT INTO meta(key, value)
SELECT 'inbox_mirror_ready', '1' WHERE NOT EXISTS (SELECT 1 FROM users);
