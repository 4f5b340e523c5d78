#!/usr/bin/env bash
# Installs what is missing, builds Parley with its tests and runs the whole suite:
# the Release build, then the model-file robustness tests again under AddressSanitizer + UBSan.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$here/scripts/setup.sh"
jobs="$(nproc)"
export PARLEY_VENV="${PARLEY_VENV:-$HOME/.cache/parley/venv}"

cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DPARLEY_BUILD_TESTS=ON
cmake --build "$here/build" -j "$jobs"
(cd "$here/build" && ctest --output-on-failure -j "$jobs")

cmake -S "$here" -B "$here/build-sanitize" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPARLEY_BUILD_TESTS=ON -DPARLEY_SANITIZE=ON -DPARLEY_BUILD_GUI=OFF -DPARLEY_BUILD_CUDA=OFF
cmake --build "$here/build-sanitize" -j "$jobs"
(cd "$here/build-sanitize" && ctest --output-on-failure -j "$jobs" -L sanitize)
