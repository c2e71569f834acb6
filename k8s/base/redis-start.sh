#!/bin/sh
# Starts Redis with the cnit ACL users: renders redis-users.acl (passwords from the environment) and execs redis-server.
# Used by the Kubernetes StatefulSet, docker-compose and scripts/redis-acl-check.py; POSIX sh (the redis:alpine image).
# Env: REDIS_{ADMIN,ENGINE,ECONOMY,GATEWAY,REPLAY,EXPORTER}_PASSWORD (required; 16+ of A-Z a-z 0-9 . _ ~ -, so that
# they fit a redis:// URL unescaped: `openssl rand -hex 32`), CNIT_PREFIX (default cnit), REDIS_CONF_DIR (default: this
# script's directory, holding redis.conf and redis-users.acl), REDIS_ACL_FILE (where the rendered file goes, default
# /run/redis/users.acl: a writable in-memory volume). Extra arguments go to redis-server after the config file.
# REDIS_CLUSTER=yes makes the node a Redis Cluster node (docs/deploy.md, "Redis Cluster"): cluster-enabled, its
# nodes.conf in /data, REDIS_CLUSTER_NODE_TIMEOUT (ms, default 5000), and replicas log in to their master as admin;
# these go to a rendered include file beside the ACL file (it holds the admin password).
set -eu
conf_dir="${REDIS_CONF_DIR:-$(dirname "$0")}"
acl_file="${REDIS_ACL_FILE:-/run/redis/users.acl}"
prefix="${CNIT_PREFIX:-cnit}"

fail() {
  echo "redis-start: $*" >&2
  exit 1
}

# The prefix becomes part of key patterns: no glob characters.
case "$prefix" in
  "" | *[!A-Za-z0-9._-]*) fail "CNIT_PREFIX must be made of A-Z a-z 0-9 . _ - (is '$prefix')" ;;
esac

script=""
for user in ADMIN ENGINE ECONOMY GATEWAY REPLAY EXPORTER; do
  var="REDIS_${user}_PASSWORD"
  eval "pass=\${$var:-}"
  case "$pass" in
    "") fail "$var is not set" ;;
    *[!A-Za-z0-9._~-]*) fail "$var may hold only A-Z a-z 0-9 . _ ~ - (it goes into redis:// URLs unescaped)" ;;
  esac
  [ "${#pass}" -ge 16 ] || fail "$var is shorter than 16 characters"
  # Safe as a sed replacement: the characters above hold no / & or backslash.
  script="${script}s/\${${var}}/${pass}/g;"
done

umask 077
mkdir -p "$(dirname "$acl_file")"
# Comments and blank lines dropped; every placeholder must be filled.
sed -e '/^[[:space:]]*#/d' -e '/^[[:space:]]*$/d' -e "$script" -e "s/\$PREFIX/${prefix}/g" \
  "$conf_dir/redis-users.acl" >"$acl_file.tmp"
if grep -q '\$' "$acl_file.tmp"; then
  rm -f "$acl_file.tmp"
  fail "redis-users.acl has a placeholder this script does not fill"
fi
mv "$acl_file.tmp" "$acl_file"
if [ "${REDIS_CLUSTER:-no}" = yes ]; then
  timeout="${REDIS_CLUSTER_NODE_TIMEOUT:-5000}"
  case "$timeout" in
    "" | *[!0-9]*) fail "REDIS_CLUSTER_NODE_TIMEOUT must be a number of milliseconds (is '$timeout')" ;;
  esac
  cluster_conf="$(dirname "$acl_file")/cluster.conf"
  {
    echo "cluster-enabled yes"
    echo "cluster-config-file /data/nodes.conf"
    echo "cluster-node-timeout $timeout"
    echo "masteruser admin"
    echo "masterauth $REDIS_ADMIN_PASSWORD"
  } >"$cluster_conf"
  exec redis-server "$conf_dir/redis.conf" --aclfile "$acl_file" --include "$cluster_conf" "$@"
fi
exec redis-server "$conf_dir/redis.conf" --aclfile "$acl_file" "$@"
