-- A per-user counter of "every sign-in so far ends": bumped by a password change, logoutAll
-- and any later revocation of all sessions. A sign-in re-reads it after storing its session
-- and withdraws when it moved, so no session created from a credential check outlives a
-- revocation that raced it. Each refresh-token row carries the value of its sign-in: a
-- token older than the user's current value is refused.
ALTER TABLE users ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN credentials_version BIGINT NOT NULL DEFAULT 0;
