#!/usr/bin/env bash
# run.sh: builds the gateway, starts it in embedded mode (gateway + engine + economy over
# the in-memory bus) on a free port, runs the browser tests with node's test runner
# against it, and stops it. Screenshots land in tests-browser/screenshots/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
profile="${BROWSER_TEST_PROFILE:-release}"

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "chromium is missing: apt-get install -y chromium" >&2
  exit 1
fi
(cd "$root" && cargo build --quiet --profile "$profile" -p gateway)
[ -d "$here/node_modules/playwright-core" ] || (cd "$here" && npm ci --silent --no-audit --no-fund)
dir="$profile"; [ "$profile" = dev ] && dir=debug
bin="$CARGO_TARGET_DIR/$dir/gateway"

# shellcheck source=gateway.sh
source "$here/gateway.sh"
start_gateway "$bin"
echo "gateway (embedded) at $url"
cd "$here"
status=0
GATEWAY_URL="$url" node --test --test-concurrency=1 tests/ || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- gateway log ---" >&2
  tail -n 50 "$gateway_log" >&2
fi
exit "$status"
