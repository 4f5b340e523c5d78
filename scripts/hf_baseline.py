#!/usr/bin/env python3
"""The baseline a user would otherwise run (DESIGN.md §6): Hugging Face transformers `generate`
in FP16, greedy, batch 1, on the same synthetic shape parley-bench measures (random weights made
on the GPU), so both numbers come from the same GPU in the same run. Prints one JSON line like
parley-bench --json.

  python3 hf_baseline.py --shape llama2-7b -p 512 -n 128 [--repeat 3]
"""
import argparse
import json
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPES = {
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=32, vocab_size=32000),
    "llama2-13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
                       num_key_value_heads=40, vocab_size=32000),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="llama2-7b", choices=sorted(SHAPES))
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = LlamaConfig(max_position_embeddings=4096, rms_norm_eps=1e-5, **SHAPES[a.shape])
    torch.set_default_dtype(torch.float16)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg)
    model.eval()
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.randint(0, cfg.vocab_size, (1, a.p), device="cuda")
    mask = torch.ones_like(ids)

    def gen(n):
        torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        torch.cuda.synchronize()
        assert out.shape[1] == a.p + n
        return time.perf_counter() - t

    gen(4)  # warm-up
    ttft = sorted(gen(1) for _ in range(a.repeat))[a.repeat // 2]
    total = sorted(gen(a.n) for _ in range(a.repeat))[a.repeat // 2]
    decode = (a.n - 1) / max(total - ttft, 1e-9)
    print(json.dumps({
        "model": a.shape, "backend": f"transformers {__import__('transformers').__version__} torch {torch.__version__} "
        + torch.cuda.get_device_name(), "precision": "fp16 (HF generate)", "group": 0, "prompt": a.p, "generate": a.n,
        "prefill_tok_s": a.p / ttft, "decode_tok_s": decode, "ttft_ms": ttft * 1e3,
        "peak_vram_gib": torch.cuda.max_memory_allocated() / 2**30, "roofline_pct": 0, "copy_bandwidth_gb_s": 0,
    }))


if __name__ == "__main__":
    main()
