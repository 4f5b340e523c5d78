#!/usr/bin/env python3
"""Writes tests/data/goldens/smollm2-135m-q4_1.json: what the independent numpy reference
(reference_llama.py) says about the default model, so that CI can check the C++ engine without
the reference or its dependencies.

  python3 make_goldens.py MODEL.gguf OUT.json

The reference here is exact (float64 activations); only the K/V cache is rounded to float16 as
the engine stores it.

Needs numpy, gguf and Hugging Face `tokenizers` (only to turn the texts into ids here; the
goldens store the ids, so the engine's own tokenizer is not under test in test_forward).

Contents:
  teacher_forced: the first TEACHER_TOKENS tokens of tests/data/text/declaration_gettysburg.txt,
      with the reference's top-1 id and its TOP_K largest logits (ids and values) per position.
  greedy: GREEDY_PROMPTS prompts (plain and ChatML), their ids and the reference's greedy
      continuation of GREEDY_TOKENS tokens (EOS is not treated specially: it is a token).
"""
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference_llama  # noqa: E402

TEACHER_TOKENS = 320
TOP_K = 10
GREEDY_TOKENS = 64

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def chatml(user):
    return (f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n")


GREEDY_PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "def fibonacci(n):\n",
    chatml("What is the tallest mountain in the world?"),
    chatml("Write a haiku about autumn leaves."),
]


def smollm_tokenizer(gguf_path):
    """SmolLM2's tokenizer as Hugging Face tokenizers builds it: byte-level BPE from the GGUF's
    vocab and merges, digits split one by one before the GPT-2 byte-level regex ("smollm" pre-
    tokenizer), control tokens as special tokens."""
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    r = GGUFReader(gguf_path)
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    merges = r.fields["tokenizer.ggml.merges"].contents()
    types = r.fields["tokenizer.ggml.token_type"].contents()
    tk = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, [tuple(m.split(" ")) for m in merges]))
    tk.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tk.decoder = decoders.ByteLevel()
    tk.add_special_tokens([AddedToken(t, special=True) for t, ty in zip(tokens, types) if ty == 3])
    return tk


def main():
    model_path, out_path = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    text_path = os.path.join(here, "..", "data", "text", "declaration_gettysburg.txt")
    tk = smollm_tokenizer(model_path)
    with open(model_path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()

    m = reference_llama.load(model_path)
    ids = tk.encode(open(text_path, encoding="utf-8").read()).ids[:TEACHER_TOKENS]
    logits = reference_llama.Runner(m).forward(ids)
    top = np.argsort(-logits, axis=1)[:, :TOP_K]
    teacher = {
        "source": "tests/data/text/declaration_gettysburg.txt",
        "tokens": ids,
        "top1": [int(t[0]) for t in top],
        "top_ids": top.tolist(),
        "top_logits": [[round(float(logits[i, j]), 5) for j in top[i]] for i in range(len(ids))],
    }
    # How close the runner-up is, per position: the engine's top-1 can only differ from the
    # reference's where this gap is tiny, so the test reports the smallest.
    gaps = [float(logits[i, top[i, 0]] - logits[i, top[i, 1]]) for i in range(len(ids))]
    print(f"teacher-forced: {len(ids)} tokens, smallest top-1/top-2 gap {min(gaps):.4f}")

    greedy = []
    for prompt in GREEDY_PROMPTS:
        pids = tk.encode(prompt).ids
        runner = reference_llama.Runner(m)
        step = runner.forward(pids)[-1]
        out, min_gap = [], float("inf")
        for i in range(GREEDY_TOKENS):
            order = np.argsort(-step)
            min_gap = min(min_gap, float(step[order[0]] - step[order[1]]))
            out.append(int(order[0]))
            if i + 1 < GREEDY_TOKENS:
                step = runner.forward([out[-1]])[-1]
        print(f"greedy {prompt[:40]!r}: {tk.decode(out)[:80]!r} (smallest gap {min_gap:.4f})")
        greedy.append({"prompt": prompt, "prompt_tokens": pids, "continuation": out,
                       "smallest_gap": round(min_gap, 5)})

    golden = {
        "model": os.path.basename(model_path),
        "model_sha256": sha,
        "reference": "tests/tools/reference_llama.py (numpy float64, K/V rounded to float16)",
        "teacher_forced": teacher,
        "greedy": greedy,
    }
    with open(out_path, "w") as f:
        json.dump(golden, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
