-- The stock on the shelf is the packs of recent loads not yet opened in a started session. The
-- sessions started since the oldest of those packs was made are read by clinic and time, and the
-- index holds the session too, so neither the starts (with their snapshots) nor the packs'
-- rows are read.
CREATE INDEX session_starts_clinic_started ON session_starts (clinic_id, started_at, session_id);
