-- Incidents, their follow-ups and closures.

CREATE TABLE incidents (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    kind TEXT NOT NULL CHECK (kind IN ('sharps_injury', 'blood_body_fluid_exposure', 'adverse_reaction', 'suspected_infection', 'equipment_failure', 'spill')),
    occurred_at TIMESTAMP NOT NULL,
    location TEXT NOT NULL,
    session_id TEXT,
    -- JSON array of the people involved (member, client, or a name, with their role).
    people TEXT NOT NULL,
    description TEXT NOT NULL,
    immediate_actions TEXT NOT NULL,
    sharps_device_type TEXT,
    sharps_device_brand TEXT,
    sharps_work_area TEXT,
    sharps_how TEXT,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX incidents_clinic_occurred ON incidents (clinic_id, occurred_at);

CREATE TABLE incident_follow_ups (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    incident_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('evaluation_offered', 'written_opinion', 'authority_report', 'other')),
    note TEXT NOT NULL,
    done_at TIMESTAMP NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL
);
CREATE INDEX incident_follow_ups_incident ON incident_follow_ups (clinic_id, incident_id);

CREATE TABLE incident_closures (
    incident_id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    closed_at TIMESTAMP NOT NULL,
    closed_by TEXT,
    summary TEXT NOT NULL
);
