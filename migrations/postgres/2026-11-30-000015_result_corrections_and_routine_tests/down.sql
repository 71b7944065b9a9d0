DELETE FROM air_removal_tests WHERE test_type NOT IN ('bowie_dick', 'helix', 'electronic');
ALTER TABLE air_removal_tests DROP CONSTRAINT air_removal_tests_test_type_check;
ALTER TABLE air_removal_tests ADD CONSTRAINT air_removal_tests_test_type_check
    CHECK (test_type IN ('bowie_dick', 'helix', 'electronic'));
DROP INDEX spore_test_results_clinic;
DELETE FROM spore_test_results WHERE version > 1;
ALTER TABLE spore_test_results DROP CONSTRAINT spore_test_results_pkey;
ALTER TABLE spore_test_results ADD PRIMARY KEY (spore_test_id);
ALTER TABLE spore_test_results DROP COLUMN correction_reason;
ALTER TABLE spore_test_results DROP COLUMN version;
