#!/usr/bin/env bash
# screenshots.sh: builds the gateway (release), starts it in embedded mode on a free port
# and takes the README's screenshots (screenshots.js) into docs/screenshots/: a 1v1 against
# the hard AI at 0:30 and 5:00, and a battle. Takes about six minutes (real-time match).
# `screenshots.sh battle` or `screenshots.sh vs-hard` takes only those.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "chromium is missing: apt-get install -y chromium" >&2
  exit 1
fi
(cd "$root" && cargo build --quiet --release -p gateway)
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm ci --silent --no-audit --no-fund)

# shellcheck source=gateway.sh
source "$here/gateway.sh"
start_gateway "$CARGO_TARGET_DIR/release/gateway"
cd "$here"
GATEWAY_URL="$url" node screenshots.js "$@"
