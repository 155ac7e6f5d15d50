-- Multi-factor sign-in with TOTP (API.md section 10): whether it is on, the user's secret
-- (encrypted), the recovery codes that stand in for it (hashed), and the challenges a right
-- password opens while the second factor is awaited.
ALTER TABLE users ADD COLUMN mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE;

-- One row per user who has started an enrolment or has MFA on. `secret` is the confirmed
-- secret (NULL until the first confirmation), `pending_secret` one being enrolled until
-- `pending_expires_at`. Both are AES-256-GCM, the user's id bound in as associated data, in
-- unpadded base64 of nonce || ciphertext || tag. `last_step` is the highest 30-second step
-- whose code was accepted: a code of that step or an earlier one is refused (replay).
CREATE TABLE user_totp (
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    secret VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
    pending_secret VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL,
    pending_expires_at DATETIME(6) NULL,
    last_step BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;

-- Recovery codes, only as keyed hashes (HMAC-SHA-256, hex); using one deletes it.
CREATE TABLE mfa_recovery_codes (
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    code_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    PRIMARY KEY (user_id, code_hash)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;

-- A sign-in waiting for its second factor: the `mfaToken` (SHA-256, hex) a right password
-- earned, the credentials it was checked against (a password change in between ends it), and
-- the wrong codes tried so far.
CREATE TABLE mfa_challenges (
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    credentials_version BIGINT NOT NULL,
    attempts INT NOT NULL DEFAULT 0,
    expires_at DATETIME(6) NOT NULL,
    PRIMARY KEY (token_hash),
    KEY mfa_challenges_user (user_id),
    KEY mfa_challenges_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
