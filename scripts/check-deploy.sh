#!/usr/bin/env bash
# Static checks of the deployment files (no Docker engine or cluster needed): alert rules and their unit tests,
# Prometheus configs, the compose file, every rendered kustomize overlay against Kubernetes schemas, the
# dashboard, and the list of metrics the rules and dashboard use. Needs promtool, docker-compose,
# python3 with kubernetes-validate (and PyYAML); uses `kubectl kustomize` when present, else scripts/kustomize_lite.py.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.30.0}"
# auto: kubectl kustomize when present (cross-checked with scripts/kustomize_lite.py); lite: only our renderer.
KUSTOMIZE_RENDERER="${KUSTOMIZE_RENDERER:-auto}"
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
  command -v promtool >/dev/null || missing+=("promtool (apt-get install --no-install-recommends prometheus)")
  command -v docker-compose >/dev/null || missing+=("docker-compose (apt-get install --no-install-recommends docker-compose)")
  python3 -c 'import yaml, kubernetes_validate' 2>/dev/null || missing+=("kubernetes-validate (pip install kubernetes-validate)")
  if [ ${#missing[@]} -gt 0 ]; then
    printf 'missing: %s\n' "${missing[@]}"
    return 1
  fi
}

headers() {
  local files=()
  mapfile -t files < <(find compose k8s -type f | sort)
  python3 scripts/deploy_checks.py headers "${files[@]}" scripts/check-deploy.sh scripts/metrics-used.sh scripts/*.py
}

# promtool check config on a copy laid out as in the container: prometheus.yml + rules/alerts.yml.
prom_config() {
  local config="$1" dir="$tmp/prom-$2"
  mkdir -p "$dir/rules"
  cp "$config" "$dir/prometheus.yml"
  cp k8s/monitoring/alerts.yml "$dir/rules/alerts.yml"
  promtool check config "$dir/prometheus.yml"
}

compose_file() {
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

have_kubectl_kustomize() {
  [ "$KUSTOMIZE_RENDERER" != lite ] && command -v kubectl >/dev/null && kubectl kustomize --help >/dev/null 2>&1
}

# Render DIR to OUT: with kubectl kustomize when present (and then our renderer must agree),
# else with scripts/kustomize_lite.py.
render() {
  local dir="$1" out="$2"
  if have_kubectl_kustomize; then
    kubectl kustomize "$dir" >"$out"
    python3 scripts/kustomize_lite.py compare "$dir" "$out"
  else
    python3 scripts/kustomize_lite.py build "$dir" >"$out"
  fi
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
echo "deployment checks (kustomize: $(have_kubectl_kustomize && echo 'kubectl kustomize + scripts/kustomize_lite.py cross-check' || echo 'scripts/kustomize_lite.py'); Kubernetes schemas $K8S_VERSION)"
check "tools installed" need_tools
check "every file starts with a comment saying what it is for" headers
check "promtool check rules" promtool check rules k8s/monitoring/alerts.yml
check "promtool test rules (a firing and a silent case per alert)" promtool test rules k8s/monitoring/alerts.test.yml
check "promtool check config: compose/prometheus/prometheus.yml" prom_config compose/prometheus/prometheus.yml compose
check "promtool check config: k8s/monitoring/prometheus.yml" prom_config k8s/monitoring/prometheus.yml k8s
check "docker-compose config + compose consistency" compose_file
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

echo "check-deploy took $((SECONDS - start)) s"
if [ "$failed" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "check-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
