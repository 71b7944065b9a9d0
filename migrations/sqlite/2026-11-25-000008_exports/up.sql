-- Audit exports: the request, and (once built) its outcome. The zip itself is a file.

CREATE TABLE exports (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    period_from TIMESTAMP NOT NULL,
    period_to TIMESTAMP NOT NULL,
    requested_by TEXT,
    requested_at TIMESTAMP NOT NULL,
    CHECK (period_to > period_from)
);
CREATE INDEX exports_clinic ON exports (clinic_id, requested_at);

CREATE TABLE export_results (
    export_id TEXT NOT NULL PRIMARY KEY REFERENCES exports(id),
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    succeeded BOOLEAN NOT NULL,
    sha256 TEXT,
    bytes BIGINT,
    chain_head TEXT,
    error TEXT,
    finished_at TIMESTAMP NOT NULL
);
