#!/bin/bash
# Run once by the mysql:8.4 image's entrypoint (from /docker-entrypoint-initdb.d) when the
# primary's data folder is new: the account the replica replicates with. It goes into the
# binary log like everything else the entrypoint creates (the database, the API's user), so the
# replica, reading that log from its start, ends up with all of them.
# No `set -u`: the entrypoint sources a script it cannot execute, and its own code reads
# variables that may be unset.
set -eo pipefail
MYSQL_PWD="$MYSQL_ROOT_PASSWORD" mysql --protocol=socket -uroot <<SQL
CREATE USER 'repl'@'%' IDENTIFIED BY '${MYSQL_REPLICATION_PASSWORD}';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL
