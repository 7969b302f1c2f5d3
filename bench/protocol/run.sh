#!/usr/bin/env bash
# Agent-protocol load (loopback only, bounded: 60 s per engine): 100 jobs post
# metrics + heartbeat every 2 s, 200 clients poll job pages every 5 s.
# PostgreSQL runs when BRIGHTRUN_TEST_POSTGRES_URL is set (make test's server
# script: eval "$(scripts/pg-test-server.sh start /tmp/pg)").
set -euo pipefail
cd "$(dirname "$0")/../.."
BRIGHTRUN_BENCH=1 go test ./bench/protocol -run TestProtocolLoad -count=1 -v -timeout 10m 2>&1 | grep -E "RESULT|^(ok|FAIL|---)|_test.go"
