-- Setup checklist templates, pseudonymous clients, client sessions and what they used.
-- Templates and clients are versioned records; a session's facts are append-only rows.

CREATE TABLE checklist_templates (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    name TEXT NOT NULL,
    -- JSON array of items: key, text, required, answer kind (and unit).
    items TEXT NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX checklist_templates_clinic ON checklist_templates (clinic_id);

CREATE TABLE clients (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    name TEXT NOT NULL,
    contact TEXT NOT NULL,
    date_of_birth DATE NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX clients_clinic ON clients (clinic_id);

CREATE TABLE sessions (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    client_id TEXT NOT NULL,
    technician_id TEXT NOT NULL REFERENCES users(id),
    station TEXT NOT NULL,
    procedure_name TEXT NOT NULL,
    planned_at TIMESTAMP NOT NULL,
    template_id TEXT NOT NULL,
    template_version INTEGER NOT NULL,
    created_by TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX sessions_clinic_planned ON sessions (clinic_id, planned_at);

CREATE TABLE session_answers (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    session_id TEXT NOT NULL REFERENCES sessions(id),
    item_key TEXT NOT NULL,
    -- JSON value: true for a tick, a number, a lot id, or text.
    answer TEXT NOT NULL,
    answered_at TIMESTAMP NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX session_answers_session ON session_answers (session_id);

CREATE TABLE session_packs (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    pack_code TEXT NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    -- The pack, its cycle and its state as they stood when it was opened.
    snapshot TEXT NOT NULL,
    added_by TEXT,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (session_id, pack_code)
);
CREATE INDEX session_packs_code ON session_packs (clinic_id, pack_code);

CREATE TABLE session_lots (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    lot_id TEXT NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    lot_version INTEGER NOT NULL,
    -- The lot as it stood when it was used.
    snapshot TEXT NOT NULL,
    added_by TEXT,
    added_at TIMESTAMP NOT NULL,
    PRIMARY KEY (session_id, lot_id)
);
CREATE INDEX session_lots_lot ON session_lots (clinic_id, lot_id);

CREATE TABLE session_starts (
    session_id TEXT NOT NULL PRIMARY KEY REFERENCES sessions(id),
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    started_at TIMESTAMP NOT NULL,
    started_by TEXT,
    -- Set when an owner started the session despite refusals.
    override_reason TEXT,
    refusals TEXT NOT NULL,
    -- The technician's eligibility and credentials as they stood at the start.
    technician_snapshot TEXT NOT NULL
);

CREATE TABLE session_completions (
    session_id TEXT NOT NULL PRIMARY KEY REFERENCES sessions(id),
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    completed_at TIMESTAMP NOT NULL,
    completed_by TEXT,
    notes TEXT
);
