-- The reports' read model: each ticket as committed (schema::Ticket as JSON,
-- the relay's verdicts with their times included, so a report "as of" a
-- cut-off is still exact), written in the commit that changes the ticket.
-- A report for the period [from, as_of] reads only the tickets still open
-- and those touched (an event made or judged) since `from`: a ticket closed
-- and untouched before the period cannot change what the period shows.
-- Filled for tickets stored before this migration when the relay starts.
CREATE TABLE ticket_models (
    doc_id     TEXT PRIMARY KEY REFERENCES documents(doc_id),
    open       INTEGER NOT NULL,
    touched_at TEXT NOT NULL,
    body       TEXT NOT NULL
);
CREATE INDEX ticket_models_open ON ticket_models(open) WHERE open = 1;
CREATE INDEX ticket_models_touched ON ticket_models(touched_at);

-- The register lists newest first; its pages read this index.
CREATE INDEX tickets_by_received ON tickets(received_at);
