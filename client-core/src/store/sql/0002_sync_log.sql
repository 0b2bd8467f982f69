-- The device store, version 2: the device's own sync log (what each sync
-- did or why it failed), shown on the phone and exportable.
CREATE TABLE sync_log (
    id       INTEGER PRIMARY KEY,
    started  TEXT NOT NULL,
    ended    TEXT NOT NULL,
    ok       INTEGER NOT NULL CHECK (ok IN (0, 1)),
    -- The SyncSummary as JSON.
    summary  TEXT NOT NULL,
    error    TEXT
) STRICT;
