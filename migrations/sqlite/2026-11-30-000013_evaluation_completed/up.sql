-- A follow-up may record that the exposed person's medical evaluation was completed: the
-- written opinion is due 15 days after it (29 CFR 1910.1030(f)(5)). SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with its rows.
CREATE TABLE incident_follow_ups_new (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('evaluation_offered', 'evaluation_completed', 'written_opinion', 'authority_report', 'other')),
    note TEXT NOT NULL,
    done_at TIMESTAMP NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);
INSERT INTO incident_follow_ups_new SELECT id, clinic_id, incident_id, kind, note, done_at, recorded_by, recorded_at FROM incident_follow_ups;
DROP TABLE incident_follow_ups;
ALTER TABLE incident_follow_ups_new RENAME TO incident_follow_ups;
CREATE INDEX incident_follow_ups_incident ON incident_follow_ups (clinic_id, incident_id);
