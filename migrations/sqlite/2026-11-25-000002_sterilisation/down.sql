DROP TABLE air_removal_tests;
DROP TABLE spore_test_results;
DROP TABLE spore_tests;
DROP TABLE packs;
DROP TABLE cycles;
DROP TABLE steriliser_status_changes;
DROP TABLE sterilisers;
ALTER TABLE clinics DROP COLUMN pack_shelf_life_days;
