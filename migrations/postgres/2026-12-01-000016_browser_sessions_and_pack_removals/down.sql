DROP TABLE session_pack_removals;
DROP TABLE browser_sessions;
