#!/usr/bin/env bash
# On the GPU machine, a measuring aid (not part of the suite): the decode step's time per stage
# (PARLEY_CUDA_PROFILE: eager launches with events between stages) for the LLaMA-2-7B shape in
# each precision and for SmolLM2-135M, and the effect of one shared-memory carveout for all
# kernels (PARLEY_CUDA_CARVEOUT).
source "$(dirname "${BASH_SOURCE[0]}")/device-env.sh"
for p in fp16 int8 int4; do
  echo "== llama2-7b $p, stages"
  PARLEY_CUDA_PROFILE=1 timeout 120 parley-bench --synthetic llama2-7b --precision $p -p 512 -n 32 --repeat 1 --ctx 2048 2>&1 |
    grep -v -E "^(model|backend|load|copy|bytes)"
done
echo "== smollm2-135m fp16, stages"
PARLEY_CUDA_PROFILE=1 timeout 60 parley-bench --synthetic smollm2-135m -p 512 -n 32 --repeat 1 2>&1 | tail -12
echo "== llama2-7b int4, carveout 100 for every kernel"
PARLEY_CUDA_CARVEOUT=100 timeout 60 parley-bench --synthetic llama2-7b --precision int4 -p 512 -n 128 --ctx 2048 2>&1 | grep -E "decode"
echo "== smollm2-135m, carveout 100 for every kernel"
PARLEY_CUDA_CARVEOUT=100 timeout 60 parley-bench --synthetic smollm2-135m -p 512 -n 128 2>&1 | grep -E "decode"
