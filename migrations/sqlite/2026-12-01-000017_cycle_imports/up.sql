-- Cycle records imported from the steriliser's own files. The files are kept byte for byte as
-- evidence, once per clinic whatever their name (the SHA-256 is the key); each cycle read from
-- one is a record of its own, never updated: what the device wrote does not change.

CREATE TABLE cycle_imports (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    files INTEGER NOT NULL,
    cycles INTEGER NOT NULL,
    already_imported INTEGER NOT NULL,
    -- What could not be read, file by file, as JSON: evidence of what the upload held.
    unreadable TEXT NOT NULL,
    imported_by TEXT,
    imported_at TIMESTAMP NOT NULL
);
CREATE INDEX cycle_imports_clinic ON cycle_imports (clinic_id, imported_at);

CREATE TABLE device_files (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    import_id TEXT NOT NULL REFERENCES cycle_imports(id),
    sha256 TEXT NOT NULL,
    -- The name as uploaded, with its folder inside a zip.
    name TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    -- The parser that read it; NULL for a file kept but not read (a binary curve, an unknown layout).
    format TEXT,
    encoding TEXT,
    content BLOB NOT NULL,
    uploaded_at TIMESTAMP NOT NULL,
    UNIQUE (clinic_id, sha256)
);
CREATE INDEX device_files_steriliser ON device_files (clinic_id, steriliser_id, uploaded_at);

CREATE TABLE imported_cycles (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    file_id TEXT NOT NULL REFERENCES device_files(id),
    import_id TEXT NOT NULL REFERENCES cycle_imports(id),
    format TEXT NOT NULL,
    cycle_number BIGINT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('load', 'air_removal_test', 'vacuum_test')),
    program_name TEXT NOT NULL,
    -- The device's clock placed in the clinic's zone; the device's own reading is in detail.
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    set_temperature_c REAL,
    set_hold_seconds REAL,
    peak_temperature_c REAL,
    peak_pressure_kpa REAL,
    hold_seconds BIGINT,
    device_result TEXT NOT NULL CHECK (device_result IN ('passed', 'failed', 'not_stated')),
    outcome TEXT NOT NULL CHECK (outcome IN ('pass', 'fail', 'not_stated')),
    serial TEXT,
    -- What was measured, without number or times: the same curve under two numbers shows here.
    fingerprint TEXT,
    vendor_check TEXT,
    -- The parsed record (phases, samples with the device's own text, notes) as JSON.
    detail TEXT NOT NULL,
    -- The checks on the record itself when it was imported, as JSON.
    warnings TEXT NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX imported_cycles_number ON imported_cycles (clinic_id, steriliser_id, cycle_number);
CREATE INDEX imported_cycles_started ON imported_cycles (clinic_id, started_at);

-- How a steriliser's CSV files are read; each change is a new version.
CREATE TABLE csv_mappings (
    steriliser_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    mapping TEXT NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    PRIMARY KEY (steriliser_id, version)
);
