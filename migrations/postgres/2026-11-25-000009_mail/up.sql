-- Mail: every message is first a row here, written in the transaction of whatever caused it,
-- then delivered by a background worker. Delivery state is operational (not a compliance record)
-- and is kept in place; the message itself never changes.

CREATE TABLE mail_outbox (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT,
    -- The report.pdf of this export is attached when the message is sent.
    export_id TEXT REFERENCES exports(id),
    created_at TIMESTAMP NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    claimed_until TIMESTAMP,
    last_error TEXT,
    finished_at TIMESTAMP
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX mail_outbox_clinic ON mail_outbox (clinic_id, created_at);

-- One set of messages per clinic, kind and period (a summary period, a reminder's day): the
-- key that makes a scheduled message go out once, however many workers race for it.
CREATE TABLE mail_keys (
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    kind TEXT NOT NULL,
    period TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    PRIMARY KEY (clinic_id, kind, period)
);

-- A clinic's mail settings: the audit-summary schedule (in the clinic's time zone), the
-- addresses the owner added, and the authority's address for event mail.
CREATE TABLE mail_settings (
    clinic_id TEXT NOT NULL PRIMARY KEY REFERENCES clinics(id),
    frequency TEXT CHECK (frequency IN ('weekly', 'monthly')),
    day INTEGER,
    local_time TEXT,
    recipients TEXT NOT NULL,
    authority_email TEXT,
    updated_by TEXT,
    updated_at TIMESTAMP NOT NULL
);
