#!/bin/sh
# Forms the Redis Cluster of docker-compose.yml's `scale` profile: 3 masters, each with a
# replica, from the six nodes at their fixed addresses. Run at every `docker compose up`: a
# cluster already formed is left as it is. Exits 0 once every slot is served and every master's
# replica is in sync (until then, the WAIT that a revocation needs would find no replica).
set -eu
nodes="10.250.0.11 10.250.0.12 10.250.0.13 10.250.0.14 10.250.0.15 10.250.0.16"

for ip in $nodes; do
    tries=0
    until [ "$(redis-cli -h "$ip" ping 2>/dev/null)" = PONG ]; do
        tries=$((tries + 1))
        [ "$tries" -lt 60 ] || { echo "redis node $ip does not answer" >&2; exit 1; }
        sleep 1
    done
done

if redis-cli -h 10.250.0.11 cluster info | grep -q '^cluster_known_nodes:6'; then
    echo "Redis Cluster already formed"
else
    # shellcheck disable=SC2046 # one argument per node
    redis-cli --cluster create $(for ip in $nodes; do printf '%s:6379 ' "$ip"; done) \
        --cluster-replicas 1 --cluster-yes
fi

whole() {
    online=0
    for ip in $nodes; do
        redis-cli -h "$ip" cluster info | grep -q '^cluster_state:ok' || return 1
        n=$(redis-cli -h "$ip" info replication | grep -c '^slave[0-9]*:.*state=online' || true)
        online=$((online + n))
    done
    [ "$online" -ge 3 ]
}

tries=0
until whole; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "the Redis Cluster is not whole after 60 s" >&2; exit 1; }
    sleep 0.5
done
echo "Redis Cluster ready: 3 masters, 3 replicas in sync"
