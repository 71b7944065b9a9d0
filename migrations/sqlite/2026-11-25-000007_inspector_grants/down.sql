DROP TABLE invitations;
DROP TABLE inspector_grant_revocations;
DROP TABLE inspector_grants;
