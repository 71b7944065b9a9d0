DROP INDEX session_packs_session;
DROP INDEX clients_clinic;
CREATE INDEX clients_clinic ON clients (clinic_id);
