#!/usr/bin/env bash
# On the GPU machine: the GPU tests, then compute-sanitizer memcheck and racecheck over the
# kernel tests (and memcheck over one backend comparison). Logs under $OUT; a summary at the end.
#   usage: device-check.sh [tests|sanitize|all]
set -uo pipefail
phase="${1:-all}"
source "$(dirname "${BASH_SOURCE[0]}")/device-env.sh"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.mem --format=csv | tee "$OUT/gpu.txt"
summary=()
run() { # name, command...
  local name="$1"; shift
  local t0=$SECONDS
  if timeout 300 "$@" >"$OUT/$name.log" 2>&1; then summary+=("PASS $name ($((SECONDS - t0)) s)"); else summary+=("FAIL $name ($((SECONDS - t0)) s)"); fi
  grep -E "^(PASS|FAIL|SKIP|QWARN|QINFO|Totals)|Loc:|relative error" "$OUT/$name.log" | grep -v "^PASS" | head -40
}
if [ "$phase" != sanitize ]; then
  run test_precision_planner test_precision_planner
  run test_cuda_kernels test_cuda_kernels
  run test_cuda_backend test_cuda_backend
fi
cs=/usr/local/cuda/bin/compute-sanitizer
if [ "$phase" = tests ]; then
  :
elif [ -x "$cs" ]; then
  run memcheck_kernels "$cs" --tool memcheck --error-exitcode 9 test_cuda_kernels
  run racecheck_kernels "$cs" --tool racecheck --error-exitcode 9 test_cuda_kernels gemv gemm rmsnorm rope \
      "attentionDecode:37 positions" "attentionDecode:1000 positions, split" "attentionDecode:GQA 9/3, head 64" \
      "attentionDecode:GQA 32/4, head 128, long" "attentionDecode:head 96" \
      "attentionDecode:8-bit cache, 37 positions" "attentionDecode:8-bit cache, GQA 32/4, head 128, long" \
      "attentionPrefill:head 128, 130 after 40 cached" "attentionPrefill:head 16 (simple path), 20 after 5" \
      "attentionPrefill:8-bit cache, head 128, 130 after 40 cached" sampling
  run memcheck_backend "$cs" --tool memcheck --error-exitcode 9 test_cuda_backend "matchesCpu:llama-gqa-f32.gguf int4" \
      "matchesCpu:qwen2-bias.gguf as stored" "matchesCpu:llama-hd128-f16.gguf int4, 8-bit K/V"
  for f in memcheck_kernels racecheck_kernels memcheck_backend; do grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT/$f.log" | tail -1; done
else
  summary+=("SKIP compute-sanitizer (not found at $cs)")
fi
printf '%s\n' "${summary[@]}" | tee "$OUT/check-summary.txt"
