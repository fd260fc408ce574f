#!/usr/bin/env bash
# The whole test suite: installs what the tests need (redis-server and
# redis-tools from Debian, for the differential and client tests), then
# type-checks, lints and runs every test file with node:test.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" != "--no-setup" ]; then
  bash scripts/install-test-deps.sh
fi

npx tsc -p tsconfig.json --noEmit
npx eslint src sim bench test

# Node 20's --test does not expand globs itself: list the files.
mapfile -t files < <(find test src sim -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found" >&2
  exit 1
fi
exec node --import tsx --test --test-concurrency=2 --test-timeout=300000 "${files[@]}"
