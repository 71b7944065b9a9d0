-- A hepatitis B status of "offered" (accepted, series not complete): OSHA 29 CFR
-- 1910.1030(f)(2) asks that the vaccine be offered. SQLite cannot change a CHECK constraint in
-- place, so the table is rebuilt with its rows.
CREATE TABLE credentials_new (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('bloodborne_pathogen_training', 'hepatitis_b', 'first_aid_cpr', 'licence', 'infection_control', 'smp_pmu_training')),
    issuer TEXT,
    number TEXT,
    issued_on DATE,
    expires_on DATE,
    hepatitis_b_status TEXT CHECK (hepatitis_b_status IN ('offered', 'vaccinated', 'immune_by_titre', 'declined', 'contraindicated')),
    declined_on DATE,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
INSERT INTO credentials_new SELECT id, version, clinic_id, user_id, kind, issuer, number, issued_on, expires_on, hepatitis_b_status, declined_on, recorded_by, recorded_at, amendment_reason FROM credentials;
DROP TABLE credentials;
ALTER TABLE credentials_new RENAME TO credentials;
CREATE INDEX credentials_user ON credentials (clinic_id, user_id);
