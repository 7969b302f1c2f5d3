#!/usr/bin/env bash
# Estimate accuracy on CPU: real runs of the EQ datasets with the local trainer
# (tiny model), comparing the self-calibrated duration estimate with the
# measured duration. Needs `make setup` (the trainer) and ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/../.."
BRIGHTRUN_BENCH=1 go test ./e2e -run TestEstimateAccuracyCPU -count=1 -v -timeout 40m 2>&1 | grep -E "RESULT|TOKENS|calibration run|^(ok|FAIL|---)"
