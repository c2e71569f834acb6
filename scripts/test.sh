#!/usr/bin/env bash
# Runs every check and test of the project: format, lints, Rust tests, checks of the deployment
# files, and the browser tests. This is the README's test command; on a fresh Debian machine with
# only Rust it first installs what is missing (scripts/install-deps.sh; CNIT_SKIP_INSTALL=1 skips that).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cnit-target}"

step() { printf '\n==> %s\n' "$*"; }

if [ "${CNIT_SKIP_INSTALL:-}" != 1 ]; then
  step "install missing tools"
  scripts/install-deps.sh
fi
# shellcheck source=tools-env.sh
source scripts/tools-env.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The engine's test-only fault injection is compiled only with its feature; lint it too
# (a check build writes no binaries, so the shared target directory is safe here).
cargo clippy -p replay-tool --features fault-injection --all-targets -- -D warnings

step "cargo test"
cargo test --workspace

step "desync audit against the engine's injected nondeterminism (test-only feature)"
# Its own target directory: the feature must not leak into the other builds' artifacts.
CARGO_TARGET_DIR="$CARGO_TARGET_DIR/fault-injection" \
  cargo test -p replay-tool --features fault-injection --test fault_injection

if [ -x scripts/check-deploy.sh ]; then
  step "deployment files (compose, k8s, alert rules, Redis ACL users)"
  scripts/check-deploy.sh
fi

if [ -x tests-browser/run.sh ]; then
  step "browser tests"
  tests-browser/run.sh
fi

step "all checks passed"
