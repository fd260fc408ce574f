#!/usr/bin/env bash
# Debian packages the tests drive as real peers: redis-server (differential
# tests) and redis-tools (redis-cli). Installed only when missing.
set -euo pipefail
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "tests need ${need[*]}: run as root or install them with apt-get" >&2
    exit 1
  fi
  echo "installing ${need[*]} for the tests" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
