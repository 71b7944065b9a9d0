-- A session's packs and a page of clients are read by clinic and by their own keys. Without
-- planner statistics (a new database, or one just filled by an import or a demo) SQLite picks
-- an index on the clinic alone and reads the clinic's whole history for one session; an index
-- on both is the best choice with statistics or without.
DROP INDEX clients_clinic;
CREATE INDEX clients_clinic ON clients (clinic_id, id);
CREATE INDEX session_packs_session ON session_packs (clinic_id, session_id);
