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

# shellcheck source=../gateway.sh
source "$here/gateway.sh"
start_gateway "$CARGO_TARGET_DIR/release/gateway"
cd "$here"
GATEWAY_URL="$url" node bench/frame-time.js
