#!/usr/bin/env python3
"""CPU speed of Parley next to llama-cpp-python on the same GGUF file, same thread count, same
prompt, measured in the same run (these machines are noisy: alternate the two, take medians).

Needs llama-cpp-python in the Python that runs this (pip install llama-cpp-python; it is not part
of the test suite). Usage:
  scripts/bench_cpu_vs_llamacpp.py --parley build/bin/parley-bench -m MODEL [--threads 2]
      [-p 128] [-n 64] [--rounds 3]
Prints a Markdown table for docs/benchmarks.md.
"""
import argparse
import json
import os
import statistics
import subprocess
import time


def run_parley(bench, model, threads, n_prompt, n_gen):
    out = subprocess.run([bench, "-m", model, "--backend", "cpu", "--threads", str(threads),
                          "-p", str(n_prompt), "-n", str(n_gen), "--repeat", "1", "--json"],
                         check=True, capture_output=True, text=True).stdout
    j = json.loads(out.strip().splitlines()[-1])
    return j["prefill_tok_s"], j["decode_tok_s"]


def run_llamacpp(llm, n_prompt, n_gen):
    # Random-looking but fixed prompt tokens, like llama-bench's pp/tg tests.
    vocab = llm.n_vocab()
    prompt = [(i * 7919 + 13) % (vocab - 100) + 50 for i in range(n_prompt)]
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    tok = prompt[-1]
    for _ in range(n_gen):
        llm.eval([tok])
        tok = (tok * 31 + 7) % (vocab - 100) + 50
    t2 = time.perf_counter()
    return n_prompt / (t1 - t0), n_gen / (t2 - t1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parley", required=True)
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()

    import llama_cpp
    llm = llama_cpp.Llama(model_path=a.model, n_ctx=a.p + a.n + 8, n_threads=a.threads,
                          n_threads_batch=a.threads, n_batch=512, verbose=False)
    results = {"parley": [], "llama.cpp": []}
    for _ in range(a.rounds):
        results["parley"].append(run_parley(a.parley, a.model, a.threads, a.p, a.n))
        results["llama.cpp"].append(run_llamacpp(llm, a.p, a.n))
    print(f"| engine | prefill pp{a.p} tok/s | decode tg{a.n} tok/s |")
    print("| --- | --- | --- |")
    med = {}
    for name, rows in results.items():
        pp = statistics.median(r[0] for r in rows)
        tg = statistics.median(r[1] for r in rows)
        med[name] = (pp, tg)
        print(f"| {name} | {pp:.1f} | {tg:.1f} |")
    print(f"\nParley / llama.cpp: prefill {med['parley'][0] / med['llama.cpp'][0]:.2f}x, "
          f"decode {med['parley'][1] / med['llama.cpp'][1]:.2f}x "
          f"(llama-cpp-python {llama_cpp.__version__}, {a.threads} threads, {a.rounds} rounds, medians)")


if __name__ == "__main__":
    main()
