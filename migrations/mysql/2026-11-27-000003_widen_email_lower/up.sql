-- The lower-cased copy of an address can be longer than the address: U+0130 (İ) lower-cases
-- to two code points. Every valid address (at most 254) must fit, so room for twice that.
ALTER TABLE users MODIFY email_lower VARCHAR(508) COLLATE utf8mb4_bin NOT NULL;
