ALTER TABLE refresh_tokens DROP COLUMN credentials_version;
ALTER TABLE users DROP COLUMN credentials_version;
