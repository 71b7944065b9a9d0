DROP TABLE credential_verifications;
DROP TABLE credentials;
DROP TABLE lot_recalls;
DROP TABLE lots;
