ALTER TABLE inspector_grants DROP COLUMN client_details;
ALTER TABLE invitations DROP COLUMN invited_by;
ALTER TABLE invitations DROP COLUMN works_on_clients;
ALTER TABLE invitations DROP COLUMN role;
ALTER TABLE invitations DROP COLUMN clinic_id;
ALTER TABLE memberships DROP COLUMN works_on_clients;
