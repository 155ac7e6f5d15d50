DROP INDEX users_role_disabled_id;
DROP INDEX users_disabled_id;
DROP INDEX users_role_id;
