-- An owner resends a message that was given up on: a new message, and this record of which
-- failure it answers (the failure stops being a finding).
CREATE TABLE mail_resends (
    failed_id TEXT NOT NULL PRIMARY KEY REFERENCES mail_outbox(id),
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    resent_id TEXT NOT NULL REFERENCES mail_outbox(id),
    resent_by TEXT,
    resent_at TIMESTAMP NOT NULL
);
