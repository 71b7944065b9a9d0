-- Sterilisation records. Amendable records keep every version: (id, version) rows, never updated;
-- the current view of a record is its highest version.

ALTER TABLE clinics ADD COLUMN pack_shelf_life_days INTEGER DEFAULT 30;

CREATE TABLE sterilisers (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    make TEXT NOT NULL,
    model TEXT NOT NULL,
    serial_number TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('pre_vacuum', 'gravity', 'other')),
    chamber_litres REAL,
    location TEXT,
    installed_on DATE,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX sterilisers_clinic ON sterilisers (clinic_id);

CREATE TABLE steriliser_status_changes (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    in_service BOOLEAN NOT NULL,
    cause TEXT NOT NULL CHECK (cause IN ('manual', 'spore_test_positive')),
    reason TEXT NOT NULL,
    spore_test_id TEXT,
    changed_by TEXT,
    changed_at TIMESTAMP NOT NULL
);
CREATE INDEX steriliser_status_changes_steriliser ON steriliser_status_changes (clinic_id, steriliser_id, changed_at);

CREATE TABLE cycles (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    cycle_number BIGINT NOT NULL,
    program_name TEXT NOT NULL,
    program_temperature_c REAL NOT NULL,
    program_hold_minutes REAL NOT NULL,
    started_at TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    peak_temperature_c REAL NOT NULL,
    peak_pressure_kpa REAL NOT NULL,
    hold_minutes REAL NOT NULL,
    operator_id TEXT NOT NULL,
    load_indicator_type INTEGER NOT NULL,
    load_indicator_passed BOOLEAN NOT NULL,
    notes TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX cycles_steriliser ON cycles (clinic_id, steriliser_id, started_at);
CREATE INDEX cycles_clinic_started ON cycles (clinic_id, started_at);
-- Cycle numbers are checked for duplicates and gaps on every new cycle.
CREATE INDEX cycles_number ON cycles (clinic_id, steriliser_id, cycle_number);

CREATE TABLE packs (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    cycle_id TEXT NOT NULL,
    code TEXT NOT NULL,
    contents TEXT NOT NULL,
    indicator_type INTEGER,
    indicator_passed BOOLEAN,
    -- The clinic's shelf life when the pack was made; NULL means event-related expiry.
    shelf_life_days INTEGER,
    created_at TIMESTAMP NOT NULL,
    UNIQUE (clinic_id, code)
);
CREATE INDEX packs_cycle ON packs (clinic_id, cycle_id);

CREATE TABLE spore_tests (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    cycle_id TEXT NOT NULL,
    bi_product TEXT NOT NULL,
    bi_lot TEXT NOT NULL,
    placed_at TIMESTAMP NOT NULL,
    incubation TEXT NOT NULL CHECK (incubation IN ('in_house', 'mail_in')),
    incubation_hours REAL,
    posted_on DATE,
    lab_name TEXT,
    lab_deadline DATE,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX spore_tests_steriliser ON spore_tests (clinic_id, steriliser_id, placed_at);
CREATE INDEX spore_tests_cycle ON spore_tests (clinic_id, cycle_id);

-- One result per test: a second one is refused by the primary key.
CREATE TABLE spore_test_results (
    spore_test_id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    result TEXT NOT NULL CHECK (result IN ('negative', 'positive')),
    control_result TEXT NOT NULL CHECK (control_result IN ('growth', 'no_growth')),
    read_at TIMESTAMP NOT NULL,
    lab_reference TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);

CREATE TABLE air_removal_tests (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    performed_at TIMESTAMP NOT NULL,
    test_type TEXT NOT NULL CHECK (test_type IN ('bowie_dick', 'helix', 'electronic')),
    passed BOOLEAN NOT NULL,
    notes TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX air_removal_tests_steriliser ON air_removal_tests (clinic_id, steriliser_id, performed_at);
