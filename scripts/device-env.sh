#!/usr/bin/env bash
# Sourced on the GPU machine: unpacks the bundle made by device-bundle.sh (once) and sets the
# paths the programs and tests need.
share="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="${PARLEY_DEVICE_ROOT:-/tmp/parley-device}"
if [ ! -d "$root/bundle" ]; then mkdir -p "$root" && tar -C "$root" -xJf "$share/bundle.tar.xz"; fi
b="$root/bundle"
export PATH="$b/bin:/usr/local/cuda/bin:$PATH"
export LD_LIBRARY_PATH="$b/lib:$b/syslib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export PARLEY_BIN_DIR="$b/bin" PARLEY_TEST_DATA="$b/data" PARLEY_TEST_MODELS="$b/test-models"
# PARLEY_DEFAULT_MODEL may be set by the caller (the model travels in parts, see docs/benchmarks.md).
export PARLEY_SHARED_DATA="$b/shared-data" PARLEY_DEFAULT_MODEL="${PARLEY_DEFAULT_MODEL:-$b/no-default-model.gguf}"
export QT_QPA_PLATFORM=offscreen
export OUT="${OUT:-/tmp/parley-out}"
mkdir -p "$OUT"
