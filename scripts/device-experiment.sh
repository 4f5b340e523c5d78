#!/usr/bin/env bash
# Measuring aid (trace build): decode tok/s and the in-graph trace under PARLEY_GEMV_EXPERIMENT bits.
source "$(dirname "${BASH_SOURCE[0]}")/device-env.sh"
{
for p in "int4" "fp16" "int8 --group 128"; do
  for e in ${EXPS:-0 1 2 4 6 8}; do
    echo "== $p exp $e"
    PARLEY_GEMV_EXPERIMENT=$e timeout 60 parley-bench --synthetic llama2-7b --precision $p -p 512 -n 128 --ctx 2048 | grep -E "^decode "
    [ "$p" = int4 ] && PARLEY_GEMV_EXPERIMENT=$e PARLEY_CUDA_TRACE=1 timeout 60 parley-bench --synthetic llama2-7b --precision $p -p 512 -n 32 --repeat 1 --ctx 2048 2>&1 | grep -E "^  "
  done
done
} 2>&1 | tee "$OUT/exp.txt"
