#!/bin/bash
# Container health check for the cnit images: GET /ready on the service's ops port over bash's /dev/tcp (no curl needed).
# Port: CNIT_HEALTH_PORT if set, else the port of GATEWAY_LISTEN (gateway) or CNIT_OPS_ADDR (engine, economy).
set -u
case "${CNIT_SERVICE:-}" in
  gateway) addr="${GATEWAY_LISTEN:-0.0.0.0:8080}" ;;
  economy) addr="${CNIT_OPS_ADDR:-0.0.0.0:9102}" ;;
  *) addr="${CNIT_OPS_ADDR:-0.0.0.0:9101}" ;;
esac
port="${CNIT_HEALTH_PORT:-${addr##*:}}"
path="${CNIT_HEALTH_PATH:-/ready}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
IFS=' ' read -r -t 2 _proto status _rest <&3 || exit 1
# Drain the rest so the server is not reset mid-write.
while IFS= read -r -t 2 _ <&3; do :; done
exec 3<&-
[ "$status" = 200 ]
