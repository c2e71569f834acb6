#!/usr/bin/env bash
# run.sh: builds the gateway (release), starts it in embedded mode on a free port, runs the
# client frame-time benchmark (bench/frame-time.js) against it, and stops it. A
# measurement, not a test: it is not part of tests-browser/run.sh or scripts/test.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "chromium is missing: apt-get install -y chromium" >&2
  exit 1
fi
(cd "$root" && cargo build --quiet --release -p gateway)
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm ci --silent --no-audit --no-fund)

log="$(mktemp)"
RUST_LOG="${RUST_LOG:-warn}" "$CARGO_TARGET_DIR/release/gateway" --listen 127.0.0.1:0 >"$log" 2>&1 &
pid=$!
stop() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap stop EXIT

url=""
for _ in $(seq 1 200); do
  url="$(grep -o 'http://[0-9.]*:[0-9]*/' "$log" | head -n1 || true)"
  [ -n "$url" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    cat "$log" >&2
    echo "the gateway exited before printing its URL" >&2
    exit 1
  fi
  sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; echo "the gateway printed no URL" >&2; exit 1; }
cd "$here"
GATEWAY_URL="$url" node bench/frame-time.js
