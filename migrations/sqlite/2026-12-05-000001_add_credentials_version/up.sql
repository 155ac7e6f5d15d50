-- See the MySQL migration of the same name.
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
