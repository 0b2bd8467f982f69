-- A real property (issue 14): the property, its buildings and units, the
-- household register with its history, and the fee ledger (物业费).
--
-- The ledger is financial, not a CRDT (DESIGN.md §2): written online by the
-- cashier and the relay only, numbered without gaps, corrected by reversing
-- entries, never edited. Money is integer fen; areas are integer hundredths
-- of a square metre; periods are `YYYY-MM` of the property's calendar.

CREATE TABLE property (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    name       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE buildings (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
);

CREATE TABLE units (
    code         TEXT PRIMARY KEY,
    building     TEXT NOT NULL REFERENCES buildings(code),
    area_centi_m2 INTEGER NOT NULL CHECK (area_centi_m2 > 0)
);

-- The household register: one row per household file (its public document
-- id). `data` is the whole file as JSON (residents with phones, vehicles,
-- parking spaces, notes); the phones also go to the private document only.
CREATE TABLE household_files (
    doc_id      TEXT PRIMARY KEY,
    private_doc TEXT NOT NULL,
    unit        TEXT NOT NULL REFERENCES units(code),
    occupancy   TEXT NOT NULL CHECK (occupancy IN ('owner', 'tenant')),
    move_in     TEXT NOT NULL,
    move_out    TEXT,
    data        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    updated_by  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    -- 0 until the relay has written the household's two documents.
    materialised INTEGER NOT NULL DEFAULT 0,
    -- The arrears summary last written to the private document (JSON).
    arrears_doc TEXT NOT NULL DEFAULT ''
);
CREATE INDEX household_files_by_unit ON household_files(unit);

-- Every version a household file ever had: who, when, what before.
CREATE TABLE household_history (
    doc_id  TEXT NOT NULL REFERENCES household_files(doc_id),
    version INTEGER NOT NULL,
    at      TEXT NOT NULL,
    by      TEXT NOT NULL,
    what    TEXT NOT NULL,
    before  TEXT,
    after   TEXT NOT NULL,
    PRIMARY KEY (doc_id, version)
);

-- Charge items: `per_area` is fen per m² per month, `per_space` fen per
-- parking space per month, `metered` and `one_off` are posted one by one.
CREATE TABLE charge_items (
    code     TEXT PRIMARY KEY,
    name_zh  TEXT NOT NULL,
    name_en  TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('per_area', 'per_space', 'metered', 'one_off')),
    rate_fen INTEGER NOT NULL CHECK (rate_fen >= 0)
);

-- Bills: gap-free numbers per year (`number_series`, series `BL`). `source`
-- makes a bill run idempotent: one bill per household, item and period.
CREATE TABLE bills (
    number     TEXT PRIMARY KEY,
    household  TEXT NOT NULL REFERENCES household_files(doc_id),
    item       TEXT NOT NULL REFERENCES charge_items(code),
    period     TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    source     TEXT NOT NULL UNIQUE,
    note       TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX bills_by_household ON bills(household, period);

-- Payments: gap-free receipt numbers per year (series `RC`).
CREATE TABLE payments (
    receipt    TEXT PRIMARY KEY,
    household  TEXT NOT NULL REFERENCES household_files(doc_id),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    method     TEXT NOT NULL CHECK (method IN ('cash', 'wechat', 'alipay', 'bank_transfer', 'card')),
    request_id TEXT UNIQUE,
    cashier    TEXT NOT NULL,
    at         TEXT NOT NULL
);
CREATE INDEX payments_by_household ON payments(household);

-- Money moved from a payment (or its credit) onto a bill, at a time.
CREATE TABLE allocations (
    receipt    TEXT NOT NULL REFERENCES payments(receipt),
    bill       TEXT NOT NULL REFERENCES bills(number),
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    at         TEXT NOT NULL
);
CREATE INDEX allocations_by_bill ON allocations(bill);
CREATE INDEX allocations_by_receipt ON allocations(receipt);

-- Reversing entries, approved by a manager: `refund` pays credit back out;
-- `adjustment` reduces what a bill asks for. Numbered in series `AD`.
CREATE TABLE adjustments (
    number      TEXT PRIMARY KEY,
    household   TEXT NOT NULL REFERENCES household_files(doc_id),
    kind        TEXT NOT NULL CHECK (kind IN ('refund', 'adjustment')),
    bill        TEXT REFERENCES bills(number),
    amount_fen  INTEGER NOT NULL CHECK (amount_fen > 0),
    reason      TEXT NOT NULL,
    approved_by TEXT NOT NULL,
    at          TEXT NOT NULL
);

-- Arrears reminders (催缴): contacts on the household file.
CREATE TABLE reminders (
    id        INTEGER PRIMARY KEY,
    household TEXT NOT NULL REFERENCES household_files(doc_id),
    channel   TEXT NOT NULL CHECK (channel IN ('phone', 'sms', 'wechat', 'notice', 'visit')),
    result    TEXT NOT NULL,
    by        TEXT NOT NULL,
    at        TEXT NOT NULL
);
