-- Refresh tokens, kept only as SHA-256 hashes (hex). A family is one sign-in: each refresh adds
-- the successor's row and marks its predecessor rotated, and rotated rows stay until they expire
-- so that a rotated token presented again is recognised as reuse and ends the family.
CREATE TABLE refresh_tokens (
    token_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    family_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    -- The access session (token jti) issued together with this refresh token.
    session_id CHAR(36) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_agent VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
    created_at DATETIME(6) NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    rotated_at DATETIME(6) NULL,
    successor_hash CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NULL,
    PRIMARY KEY (token_hash),
    KEY refresh_tokens_family_id (family_id),
    KEY refresh_tokens_user_id (user_id),
    KEY refresh_tokens_session_id (session_id),
    KEY refresh_tokens_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = ascii COLLATE = ascii_bin;
