#!/usr/bin/env bash
# Install llama.cpp's GGUF converter (convert_hf_to_gguf.py, convert_lora_to_gguf.py,
# conversion/, gguf-py/, models/templates/) from the pinned source distribution of
# llama-cpp-python into an ignored cache dir, for `brightrun-trainer export --gguf`
# and the agent's GGUF exports (the trainer looks there when BRIGHTRUN_LLAMA_CPP_DIR
# is unset). Idempotent: returns at once when the directory is complete.
# Usage: scripts/llama-cpp-converter.sh [PIP]   (PIP: the pip to download with)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION=0.3.36
SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
DEST="${BRIGHTRUN_LLAMA_CPP_CACHE:-$ROOT/.cache/llama.cpp-$VERSION}"
PIP="${1:-$ROOT/.venv/bin/pip}"

if [[ -f "$DEST/.complete" ]]; then
  echo "llama-cpp-converter: $DEST up to date"
  exit 0
fi
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
echo "llama-cpp-converter: downloading llama-cpp-python==$VERSION (source, ~76 MB)"
"$PIP" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$TMP"
SDIST="$TMP/llama_cpp_python-$VERSION.tar.gz"
echo "$SHA256  $SDIST" | sha256sum -c --quiet -
P="llama_cpp_python-$VERSION/vendor/llama.cpp"
tar xzf "$SDIST" -C "$TMP" "$P/convert_hf_to_gguf.py" "$P/convert_lora_to_gguf.py" "$P/conversion" "$P/gguf-py" \
  "$P/models/templates" "$P/LICENSE"
rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
mv "$TMP/$P" "$DEST"
touch "$DEST/.complete"
echo "llama-cpp-converter: installed into $DEST"
