#!/usr/bin/env bash
# gateway.sh: sourced by run.sh and bench/run.sh; `start_gateway BIN` starts the gateway
# binary in embedded mode on free ports, sets `url` (the game) and `ops_url` (/metrics,
# /health, /ready) once it prints them, and stops it (with its log) when the calling
# script exits.

start_gateway() {
  local bin="$1"
  gateway_log="$(mktemp)"
  RUST_LOG="${RUST_LOG:-warn}" "$bin" --listen 127.0.0.1:0 --ops-addr 127.0.0.1:0 >"$gateway_log" 2>&1 &
  gateway_pid=$!
  trap stop_gateway EXIT
  url=""
  ops_url=""
  for _ in $(seq 1 200); do
    url="$(grep -o 'open http://[0-9.]*:[0-9]*/' "$gateway_log" | head -n1 | cut -d' ' -f2 || true)"
    ops_url="$(grep '^ops endpoint' "$gateway_log" | grep -o 'http://[0-9.]*:[0-9]*/' | head -n1 || true)"
    [ -n "$url" ] && [ -n "$ops_url" ] && return 0
    if ! kill -0 "$gateway_pid" 2>/dev/null; then
      cat "$gateway_log" >&2
      echo "the gateway exited before printing its URL" >&2
      exit 1
    fi
    sleep 0.1
  done
  cat "$gateway_log" >&2
  echo "the gateway printed no URLs" >&2
  exit 1
}

stop_gateway() {
  kill "$gateway_pid" 2>/dev/null || true
  wait "$gateway_pid" 2>/dev/null || true
  rm -f "$gateway_log"
}
