DROP TABLE incident_closures;
DROP TABLE incident_follow_ups;
DROP TABLE incidents;
