CREATE TABLE credentials_old (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    kind TEXT NOT NULL CHECK (kind IN ('bloodborne_pathogen_training', 'hepatitis_b', 'first_aid_cpr', 'licence', 'infection_control', 'smp_pmu_training')),
    issuer TEXT,
    number TEXT,
    issued_on DATE,
    expires_on DATE,
    hepatitis_b_status TEXT CHECK (hepatitis_b_status IN ('vaccinated', 'immune_by_titre', 'declined', 'contraindicated')),
    declined_on DATE,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
INSERT INTO credentials_old SELECT id, version, clinic_id, user_id, kind, issuer, number, issued_on, expires_on, hepatitis_b_status, declined_on, recorded_by, recorded_at, amendment_reason FROM credentials WHERE hepatitis_b_status IS NULL OR hepatitis_b_status <> 'offered';
DROP TABLE credentials;
ALTER TABLE credentials_old RENAME TO credentials;
CREATE INDEX credentials_user ON credentials (clinic_id, user_id);
