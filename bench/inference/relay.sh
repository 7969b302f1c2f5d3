#!/usr/bin/env bash
# The server's own overhead per inference request (loopback, SQLite, a Go agent
# double that answers at once): caller wait minus the agent's time, against a
# /healthz round trip in the same run. About 20 s.
set -euo pipefail
cd "$(dirname "$0")/../.."
BRIGHTRUN_BENCH=1 go test ./bench/inference -run TestRelayOverhead -count=1 -v -timeout 5m 2>&1 | grep -E "RESULT|^(ok|FAIL|---)|_test.go"
