#!/usr/bin/env bash
# Runs every test: Go tests (SQLite and a real PostgreSQL started here when
# BRIGHTRUN_TEST_POSTGRES_URL is not given), browser tests (Chromium), then the
# trainer's pytest suite. Exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
pgdir=""
if [ -z "${BRIGHTRUN_TEST_POSTGRES_URL:-}" ]; then
  if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    pgdir=$(mktemp -d /tmp/brightrun-pg.XXXXXX)
    eval "$(scripts/pg-test-server.sh start "$pgdir")" || { echo "could not start PostgreSQL" >&2; exit 1; }
    export BRIGHTRUN_REQUIRE_POSTGRES=1
    trap 'scripts/pg-test-server.sh stop "$pgdir"; rm -rf "$pgdir"' EXIT
    echo "PostgreSQL test server: $BRIGHTRUN_TEST_POSTGRES_URL"
  else
    echo "PostgreSQL not installed: its tests will skip (apt-get install postgresql, or set BRIGHTRUN_TEST_POSTGRES_URL)"
  fi
fi

echo "== Go tests (SQLite + PostgreSQL + browser)"
go run gotest.tools/gotestsum@v1.13.0 --format pkgname-and-test-fails -- -count=1 -timeout 45m ./... || status=1

if [ "${BRIGHTRUN_SKIP_TRAINER:-}" != "1" ] && [ -x scripts/trainer-test.sh ]; then
  echo "== Trainer tests (pytest)"
  scripts/trainer-test.sh || status=1
fi
exit $status
