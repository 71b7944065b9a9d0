DROP TABLE mail_settings;
DROP TABLE mail_keys;
DROP TABLE mail_outbox;
