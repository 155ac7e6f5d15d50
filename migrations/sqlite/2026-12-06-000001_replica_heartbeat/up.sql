-- See the MySQL migration of the same name. An embedded file has no replicas, so nothing
-- stamps this row; the table keeps both schemas the same.
CREATE TABLE replica_heartbeat (
    id INTEGER NOT NULL PRIMARY KEY,
    beat TIMESTAMP NOT NULL
);
INSERT INTO replica_heartbeat (id, beat) VALUES (1, CURRENT_TIMESTAMP);
