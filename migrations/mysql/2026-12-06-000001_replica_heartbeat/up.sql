-- One row, stamped with the primary's clock by every server process that has read replicas;
-- a replica's lag is the age of the stamp it has applied (src/db/replicas.rs).
CREATE TABLE replica_heartbeat (
    id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
    beat DATETIME(6) NOT NULL
);
INSERT INTO replica_heartbeat (id, beat) VALUES (1, UTC_TIMESTAMP(6));
