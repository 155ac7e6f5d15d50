-- The account lifecycle: whether the address was proven by a mail, whether an admin suspended
-- the account; the single-use tokens that mails carry; and the outbox those mails wait in.
ALTER TABLE users
    ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT FALSE;

-- Verification and password-reset tokens, kept only as SHA-256 hashes (hex). A newer token of
-- one kind replaces the user's older ones; using a token deletes it.
CREATE TABLE account_tokens (
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- `verify-email` or `reset-password`.
    purpose VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- For a verification: the lower-cased address it proves, so that a link sent to an
    -- earlier address cannot verify a later one.
    email_lower VARCHAR(508) COLLATE utf8mb4_bin NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (token_hash),
    KEY account_tokens_user_purpose (user_id, purpose),
    KEY account_tokens_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;

-- Mails waiting to be delivered, written in the same transaction as the change (and token)
-- they tell of. A worker in each replica claims due rows, sends them, and deletes each once
-- the SMTP server took it; a failure moves `next_attempt_at` on, with backoff, until
-- `attempts` reaches the limit and `failed_at` is set.
CREATE TABLE mail_outbox (
    id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- `verify-email`, `reset-password`, `email-changed`, `password-changed`, …: for metrics
    -- and logs; the message itself is below.
    kind VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    recipient VARCHAR(254) COLLATE utf8mb4_bin NOT NULL,
    -- The whole RFC 5322 message, as sent (so every retry sends the same Message-ID).
    message MEDIUMTEXT COLLATE utf8mb4_bin NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    -- When the row is next due; a claim pushes it past the time a send may take, so a
    -- replica killed mid-send leaves the row for another to retry.
    next_attempt_at DATETIME(6) NOT NULL,
    last_error VARCHAR(1000) COLLATE utf8mb4_bin NULL,
    created_at DATETIME(6) NOT NULL,
    failed_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    KEY mail_outbox_due (failed_at, next_attempt_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_bin;
