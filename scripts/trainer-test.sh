#!/usr/bin/env bash
# Run the trainer's pytest suite in ./.venv (created/refreshed by trainer-setup.sh).
# BRIGHTRUN_DATASETS_DIR points at the real datasets (default: ../shared/data next
# to the repo root); with BRIGHTRUN_REQUIRE_DATASETS=1 (CI) their absence fails the
# tests instead of skipping them. Exit code 5 from pytest ("no tests collected") is a failure.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/trainer-setup.sh" || { echo "trainer-test: setup failed" >&2; exit 1; }

export BRIGHTRUN_DATASETS_DIR="${BRIGHTRUN_DATASETS_DIR:-$ROOT/../shared/data}"
if [[ ! -d "$BRIGHTRUN_DATASETS_DIR" ]]; then
  if [[ "${BRIGHTRUN_REQUIRE_DATASETS:-}" == "1" ]]; then
    echo "trainer-test: BRIGHTRUN_DATASETS_DIR=$BRIGHTRUN_DATASETS_DIR is absent and BRIGHTRUN_REQUIRE_DATASETS=1; the tests that need it will fail" >&2
  else
    echo "trainer-test: BRIGHTRUN_DATASETS_DIR=$BRIGHTRUN_DATASETS_DIR is absent; tests that need the real datasets will be skipped" >&2
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_DISABLE_PROGRESS_BARS=1

cd "$ROOT/trainer"
"$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider -rs "$@" tests
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "trainer-test: pytest collected no tests; that is a failure" >&2
  exit 1
fi
exit $rc
