#!/usr/bin/env bash
# Measures the RSS of embedded mode (release gateway binary) with MATCHES AI-vs-AI matches
# always running (a new one is created through the lobby API whenever one ends), sampling
# every SAMPLE_S seconds for DURATION_S seconds; prints the samples, the start and end RSS
# and the growth slope (least squares) over the last SLOPE_S seconds (docs/benchmarks.md).
# Usage: scripts/measure-embedded-rss.sh [CSV_OUT]   (env: DURATION_S=1800 MATCHES=4
#        SAMPLE_S=30 SLOPE_S=1200 MAP_SIZE=64 DIFFICULTY=hard GATEWAY_BIN=path)
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${DURATION_S:-1800}
matches=${MATCHES:-4}
sample=${SAMPLE_S:-30}
slope_window=${SLOPE_S:-1200}
map_size=${MAP_SIZE:-64}
difficulty=${DIFFICULTY:-hard}
out=${1:-$(mktemp --suffix=.csv)}
if [ -z "${GATEWAY_BIN:-}" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cnit-target}"
  cargo build -q --release -p gateway
  GATEWAY_BIN="$CARGO_TARGET_DIR/release/gateway"
fi
log=$(mktemp)
RUST_LOG=warn "$GATEWAY_BIN" --listen 127.0.0.1:0 --ops-addr 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 200); do
  url=$(grep -o 'open http://[0-9.]*:[0-9]*/' "$log" | head -n1 | cut -d' ' -f2 || true)
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; echo "the gateway printed no URL" >&2; exit 1; }

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
# Live matches listed by the lobby (every match here is one this script created).
live_count() {
  curl -sf "${url}api/matches" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["live"]))'
}
create() {
  curl -sf -X POST -H 'content-type: application/json' \
    -d "{\"mode\":\"ai_vs_ai\",\"difficulty\":\"$difficulty\",\"map_size\":$map_size}" \
    "${url}api/matches" >/dev/null
}

created=0
top_up() {
  local live; live=$(live_count)
  while [ "$live" -lt "$matches" ]; do
    create
    created=$((created + 1))
    live=$((live + 1))
  done
}

echo "elapsed_s,rss_kb,matches_created" >"$out"
start=$(date +%s)
next_sample=$start
while :; do
  now=$(date +%s)
  elapsed=$((now - start))
  top_up
  if [ "$now" -ge "$next_sample" ]; then
    echo "$elapsed,$(rss_kb),$created" | tee -a "$out"
    next_sample=$((next_sample + sample))
  fi
  [ "$elapsed" -ge "$duration" ] && break
  sleep 5
done

python3 - "$out" "$slope_window" "$matches" "$map_size" "$difficulty" <<'PY'
import csv, sys
path, window, matches, size, diff = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = [(int(r["elapsed_s"]), int(r["rss_kb"]) / 1024, int(r["matches_created"])) for r in csv.DictReader(open(path))]
end = rows[-1][0]
tail = [r for r in rows if r[0] >= end - window]
n = len(tail)
mx = sum(r[0] for r in tail) / n / 60
my = sum(r[1] for r in tail) / n
num = sum((r[0] / 60 - mx) * (r[1] - my) for r in tail)
den = sum((r[0] / 60 - mx) ** 2 for r in tail)
slope = num / den if den else 0.0
print(f"{matches} AI-vs-AI matches ({diff}, map {size}) kept running for {end} s; {rows[-1][2]} matches created")
print(f"RSS start {rows[0][1]:.1f} MB, end {rows[-1][1]:.1f} MB, max {max(r[1] for r in rows):.1f} MB")
print(f"slope over the last {window // 60} min: {slope:.2f} MB/min")
print(f"samples: {path}")
PY
