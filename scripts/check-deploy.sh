#!/usr/bin/env bash
# Checks of the deployment files (no Docker engine or cluster needed): alert rules and their unit tests, the
# Prometheus and Alertmanager configs, the compose file, every overlay rendered by `kubectl kustomize` against
# Kubernetes schemas, the dashboard, the metrics list, and the Redis ACL users against a real redis-server and
# the real services (scripts/redis-acl-check.py). scripts/install-deps.sh installs every tool it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tools-env.sh
source scripts/tools-env.sh

K8S_VERSION="${K8S_VERSION:-1.30.0}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0
failures=()

# check NAME CMD...: run one check, keep going on failure, show its output only when it fails.
# The check runs as a background job so that `set -e` still stops it at its first failing command
# (bash ignores -e for anything run as an `if` condition).
check() {
  local name="$1"
  shift
  ("$@") >"$tmp/out" 2>&1 &
  if wait "$!"; then
    passed=$((passed + 1))
    printf '  ok    %s\n' "$name"
  else
    failed=$((failed + 1))
    failures+=("$name")
    printf '  FAIL  %s\n' "$name"
    sed 's/^/        /' "$tmp/out"
  fi
}

need_tools() {
  local missing=()
  for tool in promtool amtool docker-compose redis-server redis-cli cargo; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  have_kustomize || missing+=("kubectl (with kustomize)")
  python3 -c 'import yaml, kubernetes_validate, websockets' 2>/dev/null || missing+=("python3: kubernetes-validate, websockets")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing: %s\n' "${missing[@]}"
    echo "scripts/install-deps.sh installs them"
    return 1
  fi
}

headers() {
  local files=()
  mapfile -t files < <(find compose k8s -type f | sort)
  python3 scripts/deploy_checks.py headers "${files[@]}" scripts/*.sh scripts/*.py
}

# promtool check config on a copy laid out as in the container: prometheus.yml + rules/alerts.yml.
prom_config() {
  local config="$1" dir="$tmp/prom-$2"
  mkdir -p "$dir/rules"
  cp "$config" "$dir/prometheus.yml"
  cp k8s/monitoring/alerts.yml "$dir/rules/alerts.yml"
  promtool check config "$dir/prometheus.yml"
}

# The secrets compose refuses to start without (each `${VAR:?...}`), with throwaway values for the checks.
COMPOSE_SECRETS=(GATEWAY_TOKEN_SECRET REDIS_ADMIN_PASSWORD REDIS_ENGINE_PASSWORD REDIS_ECONOMY_PASSWORD
  REDIS_GATEWAY_PASSWORD REDIS_REPLAY_PASSWORD REDIS_EXPORTER_PASSWORD)

compose_file() {
  local var
  for var in "${COMPOSE_SECRETS[@]}"; do
    export "$var=check-deploy-$var"
  done
  docker-compose -f compose/docker-compose.yml config -q
  docker-compose -f compose/docker-compose.yml config >"$tmp/compose.yml"
  python3 scripts/deploy_checks.py compose "$tmp/compose.yml"
  bash -n compose/healthcheck.sh
  [ -x compose/healthcheck.sh ]
  # One Dockerfile for all three: multi-stage, non-root, with a health check.
  grep -q '^FROM rust:.* AS build' compose/Dockerfile
  grep -q '^FROM debian:.*-slim AS runtime' compose/Dockerfile
  grep -q '^USER 10001' compose/Dockerfile
  grep -q '^HEALTHCHECK ' compose/Dockerfile
  grep -q 'type=cache' compose/Dockerfile
}

# No secret has a public default: without any one of them, compose refuses to start and names it.
compose_secrets_required() {
  local var out
  for var in "${COMPOSE_SECRETS[@]}"; do
    for other in "${COMPOSE_SECRETS[@]}"; do
      export "$other=check-deploy-$other"
    done
    unset "$var"
    if out="$(docker-compose -f compose/docker-compose.yml config -q 2>&1)"; then
      echo "docker-compose config passes without $var"
      return 1
    fi
    grep -q "$var" <<<"$out" || { echo "without $var: $out"; return 1; }
  done
}

# The `cluster` profile, rendered with the services pointed at the nodes as docs/deploy.md says.
compose_cluster() {
  local var
  for var in "${COMPOSE_SECRETS[@]}"; do
    export "$var=check-deploy-$var"
  done
  CNIT_REDIS_SCHEME=redis+cluster CNIT_REDIS_HOSTS=redis-node-1:6379,redis-node-2:6379,redis-node-3:6379 \
    docker-compose -f compose/docker-compose.yml --profile cluster config >"$tmp/compose-cluster.yml"
  python3 scripts/deploy_checks.py compose-cluster "$tmp/compose-cluster.yml"
  sh -n k8s/overlays/cluster/redis-cluster-create.sh
  [ -x k8s/overlays/cluster/redis-cluster-create.sh ]
}

render() {
  kubectl kustomize "$1" >"$2"
}

# kubernetes-validate --strict; its warnings (e.g. a kind without a schema) count as failures too.
validate() {
  local out="$1" log="$tmp/validate.log"
  kubernetes-validate --strict --quiet -k "$K8S_VERSION" "$out" >"$log" 2>&1 || { cat "$log"; return 1; }
  if grep -Eq 'WARN|ERROR' "$log"; then
    cat "$log"
    return 1
  fi
  [ "$(grep -c '^kind:' "$out")" -gt 0 ]
}

overlay() {
  local name="$1" out="$tmp/k8s-$1.yaml"
  render "k8s/overlays/$name" "$out"
  validate "$out"
  python3 scripts/deploy_checks.py k8s "$name" "$out"
}

metrics_list() {
  scripts/metrics-used.sh >"$tmp/metrics-used"
  [ -s "$tmp/metrics-used" ]
  if ! diff -u <(grep -v '^#' compose/metrics-used.txt) "$tmp/metrics-used"; then
    echo "compose/metrics-used.txt is stale: regenerate it (docs/deploy.md, 'Metrics used')"
    return 1
  fi
}

start=$SECONDS
redis_acl() {
  # The services the scenario runs (incremental: cargo test has usually built them already).
  cargo build -q --bins -p engine -p economy -p gateway -p replay-tool
  python3 scripts/redis-acl-check.py "$CARGO_TARGET_DIR/debug"
}

echo "deployment checks (kustomize: $(kubectl version --client 2>/dev/null | grep -i kustomize || echo none); Kubernetes schemas $K8S_VERSION)"
check "tools installed" need_tools
check "every file starts with a comment saying what it is for" headers
check "promtool check rules" promtool check rules k8s/monitoring/alerts.yml
check "promtool test rules (a firing and a silent case per alert)" promtool test rules k8s/monitoring/alerts.test.yml
check "promtool check config: compose/prometheus/prometheus.yml" prom_config compose/prometheus/prometheus.yml compose
check "promtool check config: k8s/monitoring/prometheus.yml" prom_config k8s/monitoring/prometheus.yml k8s
check "amtool check-config: k8s/monitoring/alertmanager.yml" amtool check-config k8s/monitoring/alertmanager.yml
check "docker-compose config + compose consistency" compose_file
check "docker-compose refuses to start without each secret" compose_secrets_required
check "docker-compose profile cluster: six Redis Cluster nodes, create job, services on the cluster" compose_cluster
for dir in k8s/overlays/*/; do
  name="$(basename "$dir")"
  check "k8s overlay $name: render, kubernetes-validate --strict, consistency" overlay "$name"
done
check "k8s base renders alone" render k8s/base "$tmp/k8s-base.yaml"
check "k8s monitoring renders alone" render k8s/monitoring "$tmp/k8s-monitoring.yaml"
dashboard() {
  local json=k8s/monitoring/grafana/cnit-overview.json
  python3 scripts/deploy_checks.py dashboard "$json"
  # promtool parses every panel query (as recording rules).
  python3 scripts/deploy_checks.py dashboard-rules "$json" >"$tmp/dashboard-rules.yml"
  promtool check rules "$tmp/dashboard-rules.yml"
}
check "grafana dashboard (structure, every query parses)" dashboard
check "compose/metrics-used.txt matches the rules and dashboard" metrics_list
check "Redis ACL users: real redis-server, services at work as their users, forbidden commands refused" redis_acl

echo "check-deploy took $((SECONDS - start)) s"
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "check-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
