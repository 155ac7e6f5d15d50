-- See the MySQL migration of the same name.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
