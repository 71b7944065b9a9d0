-- Consumable lots and technician credentials. Amendable records keep every version as
-- (id, version) rows; recalls and verifications are separate append-only facts.

CREATE TABLE lots (
    id TEXT NOT NULL,
    version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    kind TEXT NOT NULL CHECK (kind IN ('needle_cartridge', 'pigment', 'other')),
    manufacturer TEXT NOT NULL,
    product_name TEXT NOT NULL,
    product_code TEXT,
    gtin TEXT,
    lot_number TEXT NOT NULL,
    expiry_date DATE NOT NULL,
    sterilisation_method TEXT NOT NULL CHECK (sterilisation_method IN ('ethylene_oxide', 'gamma', 'e_beam', 'not_sterile')),
    supplier TEXT,
    received_on DATE NOT NULL,
    quantity_received INTEGER NOT NULL,
    recorded_by TEXT,
    recorded_at TIMESTAMP NOT NULL,
    amendment_reason TEXT,
    PRIMARY KEY (id, version)
);
CREATE INDEX lots_clinic_received ON lots (clinic_id, received_on);
CREATE INDEX lots_number ON lots (clinic_id, lot_number);

-- One recall per lot: a second one is refused by the primary key.
CREATE TABLE lot_recalls (
    lot_id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    reason TEXT NOT NULL,
    reference TEXT NOT NULL,
    recalled_by TEXT,
    recalled_at TIMESTAMP NOT NULL
);

CREATE TABLE credentials (
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
CREATE INDEX credentials_user ON credentials (clinic_id, user_id);

-- An owner's verification of one version of a credential; an amendment needs a new one.
CREATE TABLE credential_verifications (
    credential_id TEXT NOT NULL,
    credential_version INTEGER NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    verified_by TEXT NOT NULL,
    verified_at TIMESTAMP NOT NULL,
    PRIMARY KEY (credential_id, credential_version)
);
