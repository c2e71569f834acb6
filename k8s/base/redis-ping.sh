#!/bin/sh
# Redis liveness/readiness check (k8s probes, compose healthcheck): healthy only when PING answers PONG.
# `redis-cli ping` alone exits 0 on any reply, including "LOADING" while the AOF is read. Authenticates as admin
# with REDIS_ADMIN_PASSWORD; REDIS_PING_PORT (default 6379) for tests.
REDISCLI_AUTH="${REDIS_ADMIN_PASSWORD:-}" \
  redis-cli --no-auth-warning --user admin -h 127.0.0.1 -p "${REDIS_PING_PORT:-6379}" ping 2>&1 | grep -qx PONG
