-- The remaining stock of a lot taken off the shelf (returned to the supplier or destroyed),
-- typically after a recall or at expiry. Recorded once per lot, never changed.
CREATE TABLE lot_withdrawals (
    lot_id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    reason TEXT NOT NULL,
    withdrawn_by TEXT,
    withdrawn_at TIMESTAMP NOT NULL
);
CREATE INDEX lot_withdrawals_clinic ON lot_withdrawals (clinic_id);
