#!/usr/bin/env bash
# On the GPU machine, a measuring aid for the decode GEMVs: the GEMV kernel checks, each decode
# matrix of the LLaMA-2-7B shape timed alone (parley-bench --gemv) in every precision, and the
# whole decode step at a 512-token prompt for comparison. Results also in $OUT/gemv.txt.
source "$(dirname "${BASH_SOURCE[0]}")/device-env.sh"
{
  nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
  timeout 120 test_cuda_kernels 2>&1 | grep -E "^(FAIL|Totals)|relative error" | head -20
  for p in "fp16" "int8" "int8 --group 128" "int4" "int4 --group 128"; do
    echo "== gemv $p"
    timeout 120 parley-bench --gemv --synthetic llama2-7b --precision $p
  done
  for p in "fp16" "int8 --group 128" "int4" "int4 --group 128"; do
    echo "== decode $p"
    timeout 120 parley-bench --synthetic llama2-7b --precision $p -p 512 -n 128 --ctx 2048 | grep -E "prefill|decode|VRAM"
  done
} 2>&1 | tee "$OUT/gemv.txt"
# The decode step's stages (eager launches with events between them): device-profile.sh.
if [ "${1:-}" = stages ]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/device-profile.sh" 2>&1 | tee -a "$OUT/gemv.txt"
fi
# The decode step's kernels inside the graph (a bundle built with cmake -DPARLEY_CUDA_TRACE=ON).
if [ "${1:-}" = trace ]; then
  for p in fp16 int4; do
    echo "== trace $p"
    PARLEY_CUDA_TRACE=1 timeout 120 parley-bench --synthetic llama2-7b --precision $p -p 512 -n 64 --repeat 1 --ctx 2048 2>&1 |
      grep -E "decode trace|^  |^decode  "
  done 2>&1 | tee -a "$OUT/gemv.txt"
fi
