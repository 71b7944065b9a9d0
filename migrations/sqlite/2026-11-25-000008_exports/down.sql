DROP TABLE export_results;
DROP TABLE exports;
