-- See the MySQL migration of the same name.
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE account_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    email_lower TEXT,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX account_tokens_user_purpose ON account_tokens (user_id, purpose);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);
CREATE TABLE mail_outbox (
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    recipient TEXT NOT NULL,
    message TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    last_error TEXT,
    created_at TIMESTAMP NOT NULL,
    failed_at TIMESTAMP
);
CREATE INDEX mail_outbox_due ON mail_outbox (failed_at, next_attempt_at);
