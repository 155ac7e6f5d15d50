-- Indexes for the filtered `users` list. A list filtered by role or by disabled (without a
-- prefix) is ordered by id, so each index ends with id: one range scan then serves both the
-- filter and the order, and a page costs the same however deep it is. The prefix filters need
-- nothing new: they are ordered by username_lower or email_lower, whose unique indexes serve
-- the range and the order at once. (InnoDB appends the primary key to every secondary index
-- anyway; naming id keeps the definition the same as SQLite's, which needs it.)
CREATE INDEX users_role_id ON users (role, id);
CREATE INDEX users_disabled_id ON users (disabled, id);
CREATE INDEX users_role_disabled_id ON users (role, disabled, id);
