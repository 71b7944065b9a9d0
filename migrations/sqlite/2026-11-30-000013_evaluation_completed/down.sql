CREATE TABLE incident_follow_ups_old (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('evaluation_offered', 'written_opinion', 'authority_report', 'other')),
    note TEXT NOT NULL,
    done_at TIMESTAMP NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);
INSERT INTO incident_follow_ups_old SELECT id, clinic_id, incident_id, kind, note, done_at, recorded_by, recorded_at FROM incident_follow_ups WHERE kind <> 'evaluation_completed';
DROP TABLE incident_follow_ups;
ALTER TABLE incident_follow_ups_old RENAME TO incident_follow_ups;
CREATE INDEX incident_follow_ups_incident ON incident_follow_ups (clinic_id, incident_id);
