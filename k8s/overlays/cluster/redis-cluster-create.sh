#!/bin/sh
# One-shot creation of the Redis Cluster (3 masters + 3 replicas) from its six nodes; the compose `cluster` profile's
# redis-cluster-create job and the Kubernetes cluster overlay's Job run it. POSIX sh (the redis:alpine image).
# Env: REDIS_CLUSTER_NODES (space-separated host:port of the six nodes), REDIS_ADMIN_PASSWORD. Idempotent: a node
# that already knows other nodes means the cluster exists, and it only waits for cluster_state:ok then.
set -eu
: "${REDIS_CLUSTER_NODES:?set REDIS_CLUSTER_NODES to the six nodes' host:port}"
: "${REDIS_ADMIN_PASSWORD:?set REDIS_ADMIN_PASSWORD}"
export REDISCLI_AUTH="$REDIS_ADMIN_PASSWORD"
cli() {
  redis-cli --no-auth-warning --user admin "$@"
}

count=0
for node in $REDIS_CLUSTER_NODES; do
  count=$((count + 1))
  host="${node%:*}"
  port="${node##*:}"
  tries=0
  until cli -h "$host" -p "$port" ping 2>/dev/null | grep -qx PONG; do
    tries=$((tries + 1))
    [ "$tries" -lt 120 ] || { echo "redis-cluster-create: $node does not answer PING" >&2; exit 1; }
    sleep 1
  done
done
[ "$count" -eq 6 ] || { echo "redis-cluster-create: need 6 nodes, got $count" >&2; exit 1; }

first="${REDIS_CLUSTER_NODES%% *}"
fhost="${first%:*}"
fport="${first##*:}"
known="$(cli -h "$fhost" -p "$fport" cluster info | tr -d '\r' | sed -n 's/^cluster_known_nodes://p')"
if [ "${known:-1}" -le 1 ]; then
  # Nodes announce their IPs; redis-cli wants IPs too.
  addrs=""
  for node in $REDIS_CLUSTER_NODES; do
    host="${node%:*}"
    ip="$(getent hosts "$host" | awk '{print $1; exit}')"
    [ -n "$ip" ] || { echo "redis-cluster-create: cannot resolve $host" >&2; exit 1; }
    addrs="$addrs $ip:${node##*:}"
  done
  # shellcheck disable=SC2086 # one argument per node
  cli --cluster create $addrs --cluster-replicas 1 --cluster-yes
fi
tries=0
until cli -h "$fhost" -p "$fport" cluster info | tr -d '\r' | grep -qx 'cluster_state:ok'; do
  tries=$((tries + 1))
  [ "$tries" -lt 120 ] || { echo "redis-cluster-create: cluster_state is not ok after 120 s" >&2; exit 1; }
  sleep 1
done
echo "redis-cluster-create: cluster_state:ok"
