-- A signed-in browser: the cookie carries a random id, only its SHA-256 is kept. The session ends
-- when signed out, when idle too long, at its absolute limit, or when the account's token version
-- moves on (a password change or deactivation).
CREATE TABLE browser_sessions (
    id_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    token_version BIGINT NOT NULL,
    csrf_token TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    ended_at TIMESTAMP
);
CREATE INDEX browser_sessions_user ON browser_sessions (user_id);

-- A pack scanned into a session and set aside before the start (a pack that may not be used, or
-- scanned by mistake). The use stays on record; the removal says who, when and why.
CREATE TABLE session_pack_removals (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    pack_code TEXT NOT NULL,
    clinic_id TEXT NOT NULL REFERENCES clinics(id),
    removed_by TEXT,
    removed_at TIMESTAMP NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (session_id, pack_code)
);
