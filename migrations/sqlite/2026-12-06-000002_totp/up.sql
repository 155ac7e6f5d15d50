-- See the MySQL migration of the same name.
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE user_totp (
    user_id TEXT NOT NULL PRIMARY KEY,
    secret TEXT,
    pending_secret TEXT,
    pending_expires_at TIMESTAMP,
    last_step BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE mfa_recovery_codes (
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE mfa_challenges (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    credentials_version BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);
