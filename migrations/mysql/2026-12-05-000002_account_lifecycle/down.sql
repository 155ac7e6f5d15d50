DROP TABLE mail_outbox;
DROP TABLE account_tokens;
ALTER TABLE users DROP COLUMN disabled, DROP COLUMN email_verified;
