DROP TABLE csv_mappings;
DROP TABLE imported_cycles;
DROP TABLE device_files;
DROP TABLE cycle_imports;
