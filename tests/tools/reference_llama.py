#!/usr/bin/env python3
"""An independent LLaMA-family forward pass in numpy: the reference the C++ engine is checked
against (tests/test_forward.cpp runs it on the tiny models; make_goldens.py runs it on the
default model and stores what it says as fixtures).

It shares no code with the engine. GGUF files are read with the `gguf` package's GGUFReader
and dequantized with `gguf.quants.dequantize`; Hugging Face folders are read with the small
safetensors parser below (the format: an 8-byte little-endian header length, a JSON header,
then raw little-endian tensor bytes). The arithmetic is float64 throughout, written after
Meta's reference model.py (RMSNorm, rotary embeddings, grouped-query attention, SwiGLU).

The K/V cache is rounded to float16 as the engine stores it (DESIGN.md §2), so that greedy
continuations compare like for like; --kv-f32 turns that off.

--act-int8 rounds the activations that meet integer weights (GGUF Q8_0/Q4_0/Q4_1/Q4_K/Q6_K) to
int8 per block of 32 values, step max|x|/127, before the product: the scheme of ggml's q8_0
activations, for studying what that rounding costs. Without it the reference is exact float64.

Usage:
  reference_llama.py MODEL --tokens "1 2 3" [--logits-out FILE] [--generate N]
MODEL is a .gguf file or a Hugging Face folder. --logits-out writes float32 logits, one row of
vocab values per input position, little-endian. --generate N appends N greedy tokens and prints
them as the last line ("generated: id id ...").
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np


# ----------------------------------------------------------------------------------------------
# Loading

class Model:
    def __init__(self):
        self.arch = "llama"
        self.n_layer = 0
        self.n_embd = 0
        self.n_head = 0
        self.n_head_kv = 0
        self.head_dim = 0
        self.n_ff = 0
        self.vocab = 0
        self.eps = 1e-5
        self.theta = 10000.0
        self.neox = False          # rotate (i, i + d/2) pairs instead of (2i, 2i+1)
        self.freq_divisors = None  # [head_dim/2] per-frequency divisors (Llama-3 scaling)
        self.linear_factor = 1.0   # positions are divided by this (linear scaling)
        self.tensors = {}          # HF-style names -> float64 arrays, matrices [out][in]
        self.integer = set()       # names of matrices stored as integer blocks (Q8_0, Q4_x, ...)


def load_gguf(path):
    from gguf import GGUFReader
    from gguf.quants import dequantize

    r = GGUFReader(path)

    def field(key, default=None):
        f = r.fields.get(key)
        if f is None:
            return default
        return f.contents()

    m = Model()
    arch = field("general.architecture")
    if arch not in ("llama", "qwen2"):
        raise SystemExit(f"{path}: unsupported architecture {arch}")
    m.arch = arch
    m.n_layer = int(field(f"{arch}.block_count"))
    m.n_embd = int(field(f"{arch}.embedding_length"))
    m.n_head = int(field(f"{arch}.attention.head_count"))
    m.n_head_kv = int(field(f"{arch}.attention.head_count_kv", m.n_head))
    m.head_dim = int(field(f"{arch}.attention.key_length", m.n_embd // m.n_head))
    m.n_ff = int(field(f"{arch}.feed_forward_length"))
    m.eps = float(field(f"{arch}.attention.layer_norm_rms_epsilon", 1e-5))
    m.theta = float(field(f"{arch}.rope.freq_base", 10000.0))
    # llama.cpp's converter permutes llama Q/K rows so that adjacent pairs rotate; qwen2 keeps
    # the Hugging Face (NeoX) layout.
    m.neox = arch == "qwen2"
    if field(f"{arch}.rope.scaling.type") == "linear":
        m.linear_factor = float(field(f"{arch}.rope.scaling.factor", 1.0))

    names = {
        "token_embd.weight": "model.embed_tokens.weight",
        "output_norm.weight": "model.norm.weight",
        "output.weight": "lm_head.weight",
        "rope_freqs.weight": "rope_freqs",
    }
    per_layer = {
        "attn_norm.weight": "input_layernorm.weight",
        "attn_q.weight": "self_attn.q_proj.weight",
        "attn_k.weight": "self_attn.k_proj.weight",
        "attn_v.weight": "self_attn.v_proj.weight",
        "attn_q.bias": "self_attn.q_proj.bias",
        "attn_k.bias": "self_attn.k_proj.bias",
        "attn_v.bias": "self_attn.v_proj.bias",
        "attn_output.weight": "self_attn.o_proj.weight",
        "ffn_norm.weight": "post_attention_layernorm.weight",
        "ffn_gate.weight": "mlp.gate_proj.weight",
        "ffn_up.weight": "mlp.up_proj.weight",
        "ffn_down.weight": "mlp.down_proj.weight",
    }
    for t in r.tensors:
        # GGUF shapes list the contiguous dimension first; numpy wants it last.
        shape = [int(d) for d in reversed(list(t.shape))]
        values = dequantize(t.data, t.tensor_type).reshape(shape).astype(np.float64)
        if t.name in names:
            hf = names[t.name]
        elif t.name.startswith("blk."):
            _, layer, rest = t.name.split(".", 2)
            hf = f"model.layers.{layer}.{per_layer[rest]}"
        else:
            raise SystemExit(f"{path}: unexpected tensor {t.name}")
        m.tensors[hf] = values
        if t.tensor_type.name in ("Q8_0", "Q4_0", "Q4_1", "Q4_K", "Q6_K"):
            m.integer.add(hf)
    if "rope_freqs" in m.tensors:
        m.freq_divisors = m.tensors.pop("rope_freqs")
    m.vocab = m.tensors["model.embed_tokens.weight"].shape[0]
    return m


SAFETENSORS_DTYPES = {"F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32.
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            values = u16.view(np.float32)
        else:
            values = np.frombuffer(raw, dtype=np.dtype(SAFETENSORS_DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = values.reshape(info["shape"]).astype(np.float64)
    return out


def llama3_freq_divisors(inv_freq, scaling):
    """Meta's apply_scaling (llama-models, Llama 3.1 reference): low frequencies are divided by
    `factor`, high ones kept, the band between interpolated smoothly. Returned as a divisor per
    frequency."""
    factor = scaling["factor"]
    low = scaling.get("low_freq_factor", 1.0)
    high = scaling.get("high_freq_factor", 4.0)
    old_ctx = scaling.get("original_max_position_embeddings", 8192)
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    out = []
    for freq in inv_freq:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            new = freq
        elif wavelen > low_wavelen:
            new = freq / factor
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            new = (1 - smooth) * freq / factor + smooth * freq
        out.append(freq / new)
    return np.array(out, dtype=np.float64)


def load_hf(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    archs = cfg.get("architectures", [])
    if archs and archs[0] == "Qwen2ForCausalLM":
        arch = "qwen2"
    elif archs and archs[0] in ("LlamaForCausalLM", "MistralForCausalLM"):
        arch = "llama"
    else:
        raise SystemExit(f"{folder}: unsupported architecture {archs}")
    m = Model()
    m.arch = arch
    m.n_layer = cfg["num_hidden_layers"]
    m.n_embd = cfg["hidden_size"]
    m.n_head = cfg["num_attention_heads"]
    m.n_head_kv = cfg.get("num_key_value_heads", m.n_head)
    m.head_dim = cfg.get("head_dim", m.n_embd // m.n_head)
    m.n_ff = cfg["intermediate_size"]
    m.eps = cfg.get("rms_norm_eps", 1e-6)
    m.theta = cfg.get("rope_theta", 10000.0)
    m.neox = True
    files = sorted(p for p in os.listdir(folder) if p.endswith(".safetensors"))
    for p in files:
        m.tensors.update(read_safetensors(os.path.join(folder, p)))
    scaling = cfg.get("rope_scaling")
    if scaling:
        kind = scaling.get("rope_type", scaling.get("type"))
        if kind == "linear":
            m.linear_factor = scaling["factor"]
        elif kind == "llama3":
            inv = m.theta ** (-np.arange(0, m.head_dim, 2, dtype=np.float64) / m.head_dim)
            m.freq_divisors = llama3_freq_divisors(inv, scaling)
    if "lm_head.weight" not in m.tensors and not cfg.get("tie_word_embeddings", True):
        raise SystemExit(f"{folder}: lm_head.weight missing and embeddings not tied")
    m.vocab = m.tensors["model.embed_tokens.weight"].shape[0]
    return m


def load(path):
    return load_hf(path) if os.path.isdir(path) else load_gguf(path)


# ----------------------------------------------------------------------------------------------
# Forward pass

def rms_norm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, positions, m):
    """x: [n][heads][head_dim], rotated in place of pairs by angle pos * freq."""
    d = m.head_dim
    inv_freq = m.theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)  # [d/2]
    if m.freq_divisors is not None:
        inv_freq = inv_freq / m.freq_divisors
    pos = positions.astype(np.float64) / m.linear_factor
    angles = pos[:, None] * inv_freq[None, :]  # [n][d/2]
    cos = np.cos(angles)[:, None, :]
    sin = np.sin(angles)[:, None, :]
    if m.neox:
        a, b = x[..., : d // 2], x[..., d // 2:]
    else:
        a, b = x[..., 0::2], x[..., 1::2]
    ra = a * cos - b * sin
    rb = a * sin + b * cos
    out = np.empty_like(x)
    if m.neox:
        out[..., : d // 2], out[..., d // 2:] = ra, rb
    else:
        out[..., 0::2], out[..., 1::2] = ra, rb
    return out


def int8_blocks(x):
    """Activations rounded to int8 per block of 32 along the last axis (step max|x|/127, to
    nearest even), and back; a last partial block stays as it is."""
    cols = x.shape[-1] // 32 * 32
    if cols == 0:
        return x
    blocks = x[..., :cols].reshape(*x.shape[:-1], cols // 32, 32)
    amax = np.abs(blocks).max(axis=-1, keepdims=True)
    step = (amax / 127).astype(np.float32).astype(np.float64)
    inv = np.where(amax > 0, 127 / np.where(amax > 0, amax, 1), 0)
    q = np.rint(blocks * inv)
    out = x.copy()
    out[..., :cols] = (q * step).reshape(*x.shape[:-1], cols)
    return out


class Runner:
    def __init__(self, m, kv_f16=True, act_int8=False):
        self.m = m
        self.kv_f16 = kv_f16
        self.act_int8 = act_int8
        self.k = [np.zeros((0, m.n_head_kv, m.head_dim)) for _ in range(m.n_layer)]
        self.v = [np.zeros((0, m.n_head_kv, m.head_dim)) for _ in range(m.n_layer)]

    def mm(self, x, name):
        """x [n][in] times the matrix `name` [out][in], transposed."""
        if self.act_int8 and name in self.m.integer:
            x = int8_blocks(x)
        return x @ self.m.tensors[name].T

    def forward(self, tokens):
        """Runs tokens after those already cached; returns logits [n][vocab]."""
        m, t, mm = self.m, self.m.tensors, self.mm
        n = len(tokens)
        start = self.k[0].shape[0]
        positions = np.arange(start, start + n)
        x = t["model.embed_tokens.weight"][np.array(tokens)]  # [n][n_embd]
        group = m.n_head // m.n_head_kv
        for L in range(m.n_layer):
            p = f"model.layers.{L}."
            h = rms_norm(x, t[p + "input_layernorm.weight"], m.eps)
            q = mm(h, p + "self_attn.q_proj.weight")
            k = mm(h, p + "self_attn.k_proj.weight")
            v = mm(h, p + "self_attn.v_proj.weight")
            if p + "self_attn.q_proj.bias" in t:
                q = q + t[p + "self_attn.q_proj.bias"]
                k = k + t[p + "self_attn.k_proj.bias"]
                v = v + t[p + "self_attn.v_proj.bias"]
            q = rope(q.reshape(n, m.n_head, m.head_dim), positions, m)
            k = rope(k.reshape(n, m.n_head_kv, m.head_dim), positions, m)
            v = v.reshape(n, m.n_head_kv, m.head_dim)
            if self.kv_f16:
                k = k.astype(np.float16).astype(np.float64)
                v = v.astype(np.float16).astype(np.float64)
            self.k[L] = np.concatenate([self.k[L], k])
            self.v[L] = np.concatenate([self.v[L], v])
            K, V = self.k[L], self.v[L]  # [start+n][kv_heads][head_dim]
            total = K.shape[0]
            # Causal mask: query i (position start+i) sees keys 0 .. start+i.
            mask = np.arange(total)[None, :] > positions[:, None]  # [n][total]
            out = np.empty((n, m.n_head, m.head_dim))
            for hh in range(m.n_head):
                kv = hh // group
                scores = q[:, hh, :] @ K[:, kv, :].T / math.sqrt(m.head_dim)  # [n][total]
                scores[mask] = -np.inf
                scores -= scores.max(axis=1, keepdims=True)
                w = np.exp(scores)
                w /= w.sum(axis=1, keepdims=True)
                out[:, hh, :] = w @ V[:, kv, :]
            x = x + mm(out.reshape(n, -1), p + "self_attn.o_proj.weight")
            h = rms_norm(x, t[p + "post_attention_layernorm.weight"], m.eps)
            gate = mm(h, p + "mlp.gate_proj.weight")
            up = mm(h, p + "mlp.up_proj.weight")
            act = gate / (1 + np.exp(-gate)) * up  # SiLU(gate) * up
            x = x + mm(act, p + "mlp.down_proj.weight")
        x = rms_norm(x, t["model.norm.weight"], m.eps)
        return mm(x, "lm_head.weight" if "lm_head.weight" in t else "model.embed_tokens.weight")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--tokens", required=True, help="space-separated token ids")
    ap.add_argument("--logits-out")
    ap.add_argument("--generate", type=int, default=0)
    ap.add_argument("--kv-f32", action="store_true")
    ap.add_argument("--act-int8", action="store_true")
    a = ap.parse_args()
    m = load(a.model)
    tokens = [int(s) for s in a.tokens.split()]
    runner = Runner(m, kv_f16=not a.kv_f32, act_int8=a.act_int8)
    logits = runner.forward(tokens)
    if a.logits_out:
        logits.astype("<f4").tofile(a.logits_out)
    if a.generate:
        out = []
        nxt = int(np.argmax(logits[-1]))
        for i in range(a.generate):
            out.append(nxt)
            if i + 1 < a.generate:
                nxt = int(np.argmax(runner.forward([nxt])[-1]))
        print("generated: " + " ".join(map(str, out)))


if __name__ == "__main__":
    main()
