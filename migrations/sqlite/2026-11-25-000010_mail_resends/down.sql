DROP TABLE mail_resends;
