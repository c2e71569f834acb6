#!/usr/bin/env bash
# Measures each service's time from process start to ready, and its RSS idle and while
# running one AI-vs-AI match (the figures docs/benchmarks.md records). Release binaries.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cnit-target}"
cargo build -q --release -p engine -p economy -p gateway
bin="$CARGO_TARGET_DIR/release"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
rport=$(free_port)
redis-server --port "$rport" --save "" --appendonly no --dir "$work" --daemonize yes --pidfile "$work/redis.pid" >/dev/null
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  redis-cli -p "$rport" shutdown nosave >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
url="redis://127.0.0.1:$rport"
now_ms() { date +%s%3N; }
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

start() { # name port cmd...
  local name=$1 port=$2; shift 2
  local t0; t0=$(now_ms)
  "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 500); do
    if curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then break; fi
    sleep 0.01
  done
  echo "$name $pid $(( $(now_ms) - t0 ))"
}

eport=$(free_port); cport=$(free_port); gport=$(free_port); gops=$(free_port)
read -r _ epid eready < <(start engine "$eport" "$bin/engine" --redis-url "$url" --ops-addr "127.0.0.1:$eport")
read -r _ cpid cready < <(start economy "$cport" "$bin/economy" --redis-url "$url" --ops-addr "127.0.0.1:$cport")
read -r _ gpid gready < <(start gateway "$gport" "$bin/gateway" --redis-url "$url" --listen "127.0.0.1:$gport" --ops-addr "127.0.0.1:$gops")
sleep 2
e_idle=$(rss_mb "$epid"); c_idle=$(rss_mb "$cpid"); g_idle=$(rss_mb "$gpid")
curl -sf -X POST -H 'content-type: application/json' \
  -d '{"mode":"ai_vs_ai","difficulty":"hard","map_size":64,"seed":7}' \
  "http://127.0.0.1:$gport/api/matches" >/dev/null
sleep "${MEASURE_MATCH_SECS:-20}"
e_one=$(rss_mb "$epid"); c_one=$(rss_mb "$cpid"); g_one=$(rss_mb "$gpid")
printf '| service | start → ready | RSS idle | RSS, one AI match (%ss) |\n|---|---|---|---|\n' "${MEASURE_MATCH_SECS:-20}"
printf '| engine | %s ms | %s MB | %s MB |\n' "$eready" "$e_idle" "$e_one"
printf '| economy | %s ms | %s MB | %s MB |\n' "$cready" "$c_idle" "$c_one"
printf '| gateway | %s ms | %s MB | %s MB |\n' "$gready" "$g_idle" "$g_one"
awk -v a="$e_idle" -v b="$c_idle" -v c="$g_idle" -v d="$e_one" -v e="$c_one" -v f="$g_one" \
  'BEGIN { printf "| total | | %.1f MB | %.1f MB |\n", a+b+c, d+e+f }'
