DROP INDEX users_role_disabled_id ON users;
DROP INDEX users_disabled_id ON users;
DROP INDEX users_role_id ON users;
