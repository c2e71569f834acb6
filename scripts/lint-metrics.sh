#!/usr/bin/env bash
# Runs `promtool check metrics` on the real /metrics of every service: engine, economy and
# gateway over a throwaway redis-server, and the embedded gateway, each with a match
# running. Only the names the alerts and dashboard query (compose/metrics-used.txt) may
# keep a naming finding (unit abbreviation, `_count` suffix); anything else fails.
# Needs promtool (Debian package `prometheus`) and redis-server. PROFILE=release to use
# release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v promtool >/dev/null || { echo "promtool is missing: apt-get install prometheus" >&2; exit 1; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cnit-target}"
profile="${PROFILE:-debug}"
if [ "$profile" = release ]; then
  cargo build -q --release -p engine -p economy -p gateway
else
  cargo build -q -p engine -p economy -p gateway
fi
bin="$CARGO_TARGET_DIR/$profile"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pids=()
rport=$(free_port)
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
  --daemonize yes --pidfile "$work/redis.pid" >/dev/null
redis="redis://127.0.0.1:$rport"

wait_ok() { # url
  for _ in $(seq 1 300); do
    curl -sf "$1" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}
# Prints the player and ops URLs a gateway printed (`URL OPS_URL`).
gateway_urls() { # log
  local url ops
  for _ in $(seq 1 300); do
    url=$(grep -o 'open http://[0-9.]*:[0-9]*/' "$1" | head -n1 | cut -d' ' -f2 || true)
    ops=$(grep '^ops endpoint' "$1" | grep -o 'http://[0-9.]*:[0-9]*/' | head -n1 || true)
    if [ -n "$url" ] && [ -n "$ops" ]; then echo "$url $ops"; return 0; fi
    sleep 0.1
  done
  cat "$1" >&2
  return 1
}

eport=$(free_port); cport=$(free_port)
RUST_LOG=warn "$bin/engine" --redis-url "$redis" --ops-addr "127.0.0.1:$eport" >"$work/engine.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin/economy" --redis-url "$redis" --ops-addr "127.0.0.1:$cport" >"$work/economy.log" 2>&1 &
pids+=($!)
RUST_LOG=warn "$bin/gateway" --redis-url "$redis" --listen 127.0.0.1:0 --ops-addr 127.0.0.1:0 >"$work/gateway.log" 2>&1 &
pids+=($!)
RUST_LOG=warn REDIS_URL= "$bin/gateway" --listen 127.0.0.1:0 --ops-addr 127.0.0.1:0 >"$work/embedded.log" 2>&1 &
pids+=($!)
read -r gurl gops < <(gateway_urls "$work/gateway.log")
read -r eurl eops < <(gateway_urls "$work/embedded.log")
wait_ok "http://127.0.0.1:$eport/health"
wait_ok "http://127.0.0.1:$cport/health"
for url in "$gurl" "$eurl"; do
  curl -sf -X POST -H 'content-type: application/json' \
    -d '{"mode":"vs_ai","difficulty":"easy","map_size":32}' "${url}api/matches" >/dev/null
done
sleep "${LINT_MATCH_SECS:-5}"

kept=$(grep -v '^#' compose/metrics-used.txt)
status=0
for target in "engine http://127.0.0.1:$eport/" "economy http://127.0.0.1:$cport/" \
  "gateway $gops" "embedded-gateway $eops"; do
  read -r name url <<<"$target"
  curl -sf "${url}metrics" >"$work/$name.prom"
  findings=$(promtool check metrics <"$work/$name.prom" 2>&1 || true)
  bad=$(while IFS= read -r line; do
    [ -z "$line" ] && continue
    metric=${line%% *}
    if grep -qxF "$metric" <<<"$kept" &&
      { [[ $line == *"should not contain abbreviated units"* ]] || [[ $line == *'should not have "_count" suffix'* ]]; }; then
      continue
    fi
    echo "$line"
  done <<<"$findings")
  series=$(grep -c '^[a-z]' "$work/$name.prom" || true)
  if [ -n "$bad" ]; then
    echo "FAIL $name /metrics ($series series):"
    echo "$bad" | sed 's/^/  /'
    status=1
  else
    echo "ok   $name /metrics ($series series)"
  fi
done
exit "$status"
