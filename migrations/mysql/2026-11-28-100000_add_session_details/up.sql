-- What a user sees of their own sessions: which client opened each (the request's User-Agent,
-- cut to 255 characters). Creation and expiry times are already kept.
ALTER TABLE sessions ADD COLUMN user_agent VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL;
