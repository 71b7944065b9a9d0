-- Going back keeps each result's first version and the air-removal tests of the original types.
CREATE TABLE spore_test_results_old (
    spore_test_id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    result TEXT NOT NULL CHECK (result IN ('negative', 'positive')),
    control_result TEXT NOT NULL CHECK (control_result IN ('growth', 'no_growth')),
    read_at TIMESTAMP NOT NULL,
    lab_reference TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);
INSERT INTO spore_test_results_old
    SELECT spore_test_id, clinic_id, result, control_result, read_at, lab_reference, recorded_by, recorded_at
    FROM spore_test_results WHERE version = 1;
DROP TABLE spore_test_results;
ALTER TABLE spore_test_results_old RENAME TO spore_test_results;

CREATE TABLE air_removal_tests_old (
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
INSERT INTO air_removal_tests_old SELECT id, version, clinic_id, steriliser_id, performed_at, test_type, passed, notes, recorded_by, recorded_at, amendment_reason FROM air_removal_tests WHERE test_type IN ('bowie_dick', 'helix', 'electronic');
DROP TABLE air_removal_tests;
ALTER TABLE air_removal_tests_old RENAME TO air_removal_tests;
CREATE INDEX air_removal_tests_steriliser ON air_removal_tests (clinic_id, steriliser_id, performed_at);
