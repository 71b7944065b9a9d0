-- Inspectors' read-only access to a clinic for a period, and invitations for new accounts.

CREATE TABLE inspector_grants (
    id TEXT NOT NULL PRIMARY KEY,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    valid_from TIMESTAMP NOT NULL,
    valid_until TIMESTAMP NOT NULL,
    purpose TEXT,
    granted_by TEXT,
    granted_at TIMESTAMP NOT NULL,
    CHECK (valid_until > valid_from)
);
CREATE INDEX inspector_grants_access ON inspector_grants (clinic_id, user_id);

-- A revocation is a fact of its own: the grant row is never changed.
CREATE TABLE inspector_grant_revocations (
    grant_id TEXT NOT NULL PRIMARY KEY REFERENCES inspector_grants(id),
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    reason TEXT NOT NULL,
    revoked_by TEXT,
    revoked_at TIMESTAMP NOT NULL
);

-- A new account's way in: the token's SHA-256, usable once before it expires.
CREATE TABLE invitations (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX invitations_user ON invitations (user_id);
