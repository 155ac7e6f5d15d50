#!/bin/bash
# Run once by the mysql:8.4 image's entrypoint (from /docker-entrypoint-initdb.d) when the
# replica's data folder is new: follow the primary by GTID auto-positioning, from the start of
# its binary log, so the database, the API's user and every table arrive by replication. The
# setting is kept in the data folder; later starts resume where the replica stopped.
# No `set -u`: the entrypoint sources a script it cannot execute, and its own code reads
# variables that may be unset.
set -eo pipefail
MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot <<SQL
CHANGE REPLICATION SOURCE TO
    SOURCE_HOST = 'mysql-primary',
    SOURCE_PORT = 3306,
    SOURCE_USER = 'repl',
    SOURCE_PASSWORD = '${MYSQL_REPLICATION_PASSWORD}',
    SOURCE_AUTO_POSITION = 1,
    SOURCE_CONNECT_RETRY = 5,
    GET_SOURCE_PUBLIC_KEY = 1;
START REPLICA;
SQL
