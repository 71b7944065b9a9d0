-- A laboratory may correct a spore-test result. Every version of the reading is kept: version 1
-- is the original, each correction adds the next with its reason.
ALTER TABLE spore_test_results ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE spore_test_results ALTER COLUMN version DROP DEFAULT;
ALTER TABLE spore_test_results ADD COLUMN correction_reason TEXT;
ALTER TABLE spore_test_results DROP CONSTRAINT spore_test_results_pkey;
ALTER TABLE spore_test_results ADD PRIMARY KEY (spore_test_id, version);
CREATE INDEX spore_test_results_clinic ON spore_test_results (clinic_id, spore_test_id);

-- HTM 01-05's routine tests for benchtop sterilisers: the daily automatic control test and the
-- weekly air-leakage test (vacuum sterilisers), recorded beside the air-removal tests.
ALTER TABLE air_removal_tests DROP CONSTRAINT air_removal_tests_test_type_check;
ALTER TABLE air_removal_tests ADD CONSTRAINT air_removal_tests_test_type_check
    CHECK (test_type IN ('bowie_dick', 'helix', 'electronic', 'automatic_control', 'air_leakage'));
