#!/usr/bin/env bash
# On the GPU machine: decode and prefill of a synthetic shape (SHAPE, default llama2-7b) in
# the precisions PRECISIONS (comma-separated) from two bundles (made by
# device-bundle.sh) in one run, alternating, so that a change is measured against its baseline
# on the same card at the same time (these machines are noisy).
#   usage: [SHAPE=...] [PRECISIONS='fp16,int4 --group 128'] [PROMPT=512 GEN=128 CTX=2048] \
#          device-compare.sh BASE_SHARE NEW_SHARE [rounds]
base="$(cd "$1" && pwd)" new="$(cd "$2" && pwd)" rounds="${3:-2}"
OUT="${OUT:-/tmp/parley-out}"
mkdir -p "$OUT"
run() { # share, label, precision...
  local share="$1" label="$2"; shift 2
  (PARLEY_DEVICE_ROOT="/tmp/parley-$label" source "$share/device-env.sh" &&
   timeout 120 parley-bench --synthetic "${SHAPE:-llama2-7b}" --precision "$@" -p "${PROMPT:-512}" -n "${GEN:-128}" \
     --ctx "${CTX:-2048}" |
   awk -v l="$label" -v p="$*" '/^(prefill|decode) /{printf "%-5s %-18s %s\n", l, p, $0}')
}
{
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
  for r in $(seq "$rounds"); do
    IFS=, read -ra precisions <<<"${PRECISIONS:-fp16,int8 --group 128,int4,int4 --group 128}"
    for p in "${precisions[@]}"; do
      run "$base" base $p
      run "$new" new $p
    done
  done
} 2>&1 | tee "$OUT/compare.txt"
