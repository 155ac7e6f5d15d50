-- See the MySQL migration of the same name.
CREATE INDEX users_role_id ON users (role, id);
CREATE INDEX users_disabled_id ON users (disabled, id);
CREATE INDEX users_role_disabled_id ON users (role, disabled, id);
