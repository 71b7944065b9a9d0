DROP INDEX session_lots_session;
DROP INDEX session_starts_overridden;
