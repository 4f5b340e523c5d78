#!/usr/bin/env bash
# Installs what is missing, builds Parley (Release) and starts it with the default model.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$here/build" -j "$(nproc)"
models="${PARLEY_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/Parley/models}"
if [ -x "$here/build/bin/parley" ]; then
  exec "$here/build/bin/parley" "$@"
fi
exec "$here/build/bin/parley-cli" chat -m "$models/SmolLM2-135M-Instruct.Q4_1.gguf" "$@"
