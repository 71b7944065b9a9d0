-- Whether a member works on clients: practitioner rules (credentials, eligibility) apply only to
-- those who do. Technicians always do; an owner chooses. Members recorded before this kept the
-- rules they had.
ALTER TABLE memberships ADD COLUMN works_on_clients BOOLEAN NOT NULL DEFAULT TRUE;

-- An invitation may carry a clinic's membership: the account joins when its owner accepts.
ALTER TABLE invitations ADD COLUMN clinic_id TEXT REFERENCES clinics(id);
ALTER TABLE invitations ADD COLUMN role TEXT;
ALTER TABLE invitations ADD COLUMN works_on_clients BOOLEAN;
ALTER TABLE invitations ADD COLUMN invited_by TEXT;

-- An inspector's grant may, for an investigation, show clients' contact details.
ALTER TABLE inspector_grants ADD COLUMN client_details BOOLEAN NOT NULL DEFAULT FALSE;
