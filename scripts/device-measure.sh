#!/usr/bin/env bash
# On the GPU machine: parley-bench on the LLaMA-2-7B shape (synthetic weights made on the GPU)
# in FP16, INT8 and INT4, at a 512-token prompt and at 4096 tokens of context, and the Hugging
# Face transformers FP16 generate baseline on the same shape, same GPU, same run.
# Results: $OUT/bench.jsonl (one JSON object a run) and a table at the end.
#   usage: device-measure.sh [quick]   (quick: the 512-token runs only, no baseline)
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/device-env.sh"
mode="${1:-full}"
jsonl="$OUT/bench.jsonl"
: >"$jsonl"
bench() { timeout 120 parley-bench --json "$@" 2>>"$OUT/bench.err" | tee -a "$jsonl"; }
bench --synthetic llama2-7b --precision fp16 -p 512 -n 128 --ctx 2048
bench --synthetic llama2-7b --precision int8 -p 512 -n 128 --ctx 2048
bench --synthetic llama2-7b --precision int4 -p 512 -n 128 --ctx 2048
bench --synthetic llama2-7b --precision int4 --group 128 -p 512 -n 128 --ctx 2048
bench --synthetic llama2-7b --precision int4 --group 128 -p 512 -n 128 --ctx 2048 --kv-cache int8
bench --synthetic llama2-7b --precision int4 -p 512 -n 128 --ctx 2048 --no-pdl
if [ -f "$PARLEY_DEFAULT_MODEL" ]; then
  bench -m "$PARLEY_DEFAULT_MODEL" -p 512 -n 128 --ctx 2048
  parley-cli generate -m "$PARLEY_DEFAULT_MODEL" --backend cuda -p "The capital of France is" -n 16 --temp 0 \
    | tee "$OUT/generate-default.txt"
fi
if [ "$mode" = full ]; then
  for p in fp16 "int8" "int8 --group 128" "int4" "int4 --group 128"; do
    bench --gemv --synthetic llama2-7b --precision $p
  done
  bench --synthetic llama2-7b --precision int8 --group 128 -p 512 -n 128 --ctx 2048
  bench --synthetic llama2-7b --precision fp16 -p 4096 -n 64 --ctx 4160 --repeat 2
  bench --synthetic llama2-7b --precision int4 -p 4096 -n 64 --ctx 4160 --repeat 2
  bench --synthetic llama2-7b --precision int4 -p 4096 -n 64 --ctx 4160 --repeat 2 --kv-cache int8
  bench --synthetic llama2-13b --precision int4 -p 512 -n 128 --ctx 2048
  bench --synthetic smollm2-135m --precision fp16 -p 512 -n 128 --ctx 2048
  PYTHONUNBUFFERED=1 timeout 300 python3 "$(dirname "${BASH_SOURCE[0]}")/hf_baseline.py" --shape llama2-7b -p 512 -n 128 \
    2>"$OUT/hf.err" | tee -a "$jsonl"
fi
python3 - "$jsonl" <<'PY'
import json, sys
print(f"{'run':44} {'pp tok/s':>9} {'tg tok/s':>9} {'ttft ms':>8} {'roof %':>7} {'VRAM GiB':>9}")
gemv = []
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except Exception: continue
    if 'gemv' in r:
        gemv.append(r)
        continue
    name = f"{r.get('model')} {r.get('precision')} g{r.get('group','-')} p{r.get('prompt')}" + ("" if r.get('pdl', True) else " no-pdl") \
        + (" kv8" if r.get('kv_cache') == 'int8' else "")
    print(f"{name:44} {r.get('prefill_tok_s',0):9.0f} {r.get('decode_tok_s',0):9.1f} {r.get('ttft_ms',0):8.1f} "
          f"{r.get('roofline_pct',0):7.1f} {r.get('peak_vram_gib',0):9.2f}  bw {r.get('copy_bandwidth_gb_s',0):.0f}")
if gemv:
    print(f"\n{'GEMV alone':44} {'us':>9} {'GB/s':>9} {'% copy':>7}")
    for r in gemv:
        name = f"{r['gemv']} {r['precision']} g{r['group']} ({r['epilogue']})"
        print(f"{name:44} {r['us']:9.2f} {r['gb_s']:9.0f} {r['pct']:7.1f}")
PY
