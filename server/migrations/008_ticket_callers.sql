-- The caller a clerk recorded on a ticket, with the full phone number. The
-- ticket document carries the number masked (it syncs whole to engineers
-- and department staff); the full number is read from here by the roles
-- entitled to private household files and by the ticket's assignee.
CREATE TABLE ticket_callers (
    doc_id      TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    phone       TEXT NOT NULL,
    read_back   INTEGER NOT NULL CHECK (read_back IN (0, 1)),
    recorded_by TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
