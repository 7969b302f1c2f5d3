#!/usr/bin/env bash
# Benchmark of the streaming dataset validator (issue 3): generates 100 MB
# and 500 MB brightrun-lora-v4 JSONL into a temp dir, then in ONE process
# measures validation throughput and peak memory against decode-only
# baselines. Runs on one core (GOMAXPROCS=1, pinned to CPU 0 when taskset
# is available). Usage: bench/validate/run.sh [sizes-in-MB, default 100,500]
set -euo pipefail
cd "$(dirname "$0")/../.."
sizes="${1:-100,500}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/validate-bench" ./bench/validate
pin=()
if command -v taskset >/dev/null 2>&1; then pin=(taskset -c 0); fi
GOMAXPROCS=1 "${pin[@]}" "$tmp/validate-bench" -sizes "$sizes" -dir "$tmp" -procs 1
