-- A laboratory may correct a spore-test result. Every version of the reading is kept: version 1
-- is the original, each correction adds the next with its reason. SQLite cannot change a
-- primary key in place, so the table is rebuilt with its rows.
CREATE TABLE spore_test_results_new (
    spore_test_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    result TEXT NOT NULL CHECK (result IN ('negative', 'positive')),
    control_result TEXT NOT NULL CHECK (control_result IN ('growth', 'no_growth')),
    read_at TIMESTAMP NOT NULL,
    lab_reference TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    correction_reason TEXT,
    PRIMARY KEY (spore_test_id, version)
);
INSERT INTO spore_test_results_new
    SELECT spore_test_id, 1, clinic_id, result, control_result, read_at, lab_reference, recorded_by, recorded_at, NULL
    FROM spore_test_results;
DROP TABLE spore_test_results;
ALTER TABLE spore_test_results_new RENAME TO spore_test_results;
CREATE INDEX spore_test_results_clinic ON spore_test_results (clinic_id, spore_test_id);

-- HTM 01-05's routine tests for benchtop sterilisers: the daily automatic control test and the
-- weekly air-leakage test (vacuum sterilisers), recorded beside the air-removal tests.
CREATE TABLE air_removal_tests_new (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    steriliser_id TEXT NOT NULL,
    performed_at TIMESTAMP NOT NULL,
    test_type TEXT NOT NULL CHECK (test_type IN ('bowie_dick', 'helix', 'electronic', 'automatic_control', 'air_leakage')),
    passed BOOLEAN NOT NULL,
    notes TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
INSERT INTO air_removal_tests_new SELECT id, version, clinic_id, steriliser_id, performed_at, test_type, passed, notes, recorded_by, recorded_at, amendment_reason FROM air_removal_tests;
DROP TABLE air_removal_tests;
ALTER TABLE air_removal_tests_new RENAME TO air_removal_tests;
CREATE INDEX air_removal_tests_steriliser ON air_removal_tests (clinic_id, steriliser_id, performed_at);
