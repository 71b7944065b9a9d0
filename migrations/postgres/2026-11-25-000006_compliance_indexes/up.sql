-- The compliance view looks at overridden session starts (the only way a session starts without
-- what its jurisdiction requires) and at recent loads; both must stay cheap as years of records
-- pile up.
CREATE INDEX session_starts_overridden ON session_starts (clinic_id) WHERE override_reason IS NOT NULL;
CREATE INDEX session_lots_session ON session_lots (session_id, added_at);
