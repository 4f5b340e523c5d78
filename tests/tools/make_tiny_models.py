#!/usr/bin/env python3
"""Writes tiny random-weight LLaMA-family models for the tests (the CTest fixture
`make_tiny_models`):

  python make_tiny_models.py OUTDIR

Each model is a few layers of a few dozen features, in one of the shapes the engine must read
(DESIGN.md §2): grouped-query and multi-query attention, tied and untied embeddings, odd widths
and vocabulary sizes, a head size of 128, F32/F16/Q8_0/Q4_0/Q4_1 tensors, qwen2 with QKV bias,
linear and Llama-3 rope scaling; and Hugging Face folders (config.json + safetensors, sharded with
model.safetensors.index.json or in one file, F32/F16/BF16) written with numpy alone. hf-llama.gguf
holds exactly the weights of hf-llama/ converted as llama.cpp's converter does (Q/K rows permuted
for adjacent-pair rotary, Llama-3 scaling as a rope_freqs tensor), so the two must agree.

Weights are drawn from a fixed seed. Float matrices are rounded to values float16 holds exactly,
so that the engine's FP16 copy of them is exact and comparisons with reference_llama.py are tight.
The vocabularies are small byte-level BPE (GGUF "gpt2" / tokenizer.json) and SentencePiece
(GGUF "llama") vocabularies learned here from tests/data/text, so prompts tokenize to real ids.
"""
import json
import math
import os
import re
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = os.path.join(HERE, "..", "data", "text", "declaration_gettysburg.txt")

CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


# ----------------------------------------------------------------------------------------------
# Vocabularies

def bytes_to_unicode():
    """GPT-2's reversible map from bytes to printable characters (openai/gpt-2 encoder.py)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def learn_merges(words, n_merges):
    """Plain BPE training (Sennrich et al. 2016): repeatedly merge the most frequent adjacent
    pair. words: {tuple of symbols: count}. Ties go to the lexically smallest pair so the result
    does not depend on dict order."""
    words = dict(words)
    merges = []
    for _ in range(n_merges):
        pairs = {}
        for w, c in words.items():
            for a, b in zip(w, w[1:]):
                pairs[(a, b)] = pairs.get((a, b), 0) + c
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merges.append(best)
        merged = {}
        for w, c in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(w[i] + w[i + 1])
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + c
        words = merged
    return merges


def bpe_vocab(n_merges):
    """Byte-level BPE: 256 byte symbols, n_merges learned merges, then the special tokens.
    Returns (tokens, types, merges, specials {text: id})."""
    text = open(TEXT, encoding="utf-8").read()
    b2u = bytes_to_unicode()
    words = {}
    for w in re.findall(r" ?[A-Za-z]+| ?[0-9]| ?[^\sA-Za-z0-9]+|\s+", text):
        key = tuple(b2u[b] for b in w.encode("utf-8"))
        words[key] = words.get(key, 0) + 1
    merges = learn_merges(words, n_merges)
    tokens = [b2u[b] for b in range(256)] + [a + b for a, b in merges]
    types = [1] * len(tokens)
    specials = {}
    for s in ("<|endoftext|>", "<|im_start|>", "<|im_end|>"):
        specials[s] = len(tokens)
        tokens.append(s)
        types.append(3)  # CONTROL
    return tokens, types, [f"{a} {b}" for a, b in merges], specials


def spm_vocab(n_pieces):
    """A SentencePiece-style (GGUF "llama") vocabulary: <unk>, <s>, </s>, the 256 byte-fallback
    pieces, then "▁"-prefixed pieces learned by BPE, scored by merge order as SentencePiece BPE
    models are."""
    text = open(TEXT, encoding="utf-8").read()
    words = {}
    for w in text.split():
        key = tuple("\u2581" + w)
        words[key] = words.get(key, 0) + 1
    chars = sorted({c for w in words for c in w})
    merges = learn_merges(words, n_pieces)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    types = [2, 3, 3] + [6] * 256  # UNKNOWN, CONTROL, CONTROL, BYTE
    scores = [0.0] * len(tokens)
    for c in chars:  # single characters first, as SentencePiece lists them
        tokens.append(c)
        types.append(1)
        scores.append(-1000.0 - len(tokens))
    seen = set(tokens)
    for i, (a, b) in enumerate(merges):
        if a + b in seen:
            continue
        seen.add(a + b)
        tokens.append(a + b)
        types.append(1)
        scores.append(-float(i))
    return tokens, types, scores


# ----------------------------------------------------------------------------------------------
# Weights

def f16_exact(a):
    """Rounds to the nearest float16 and back, so an FP16 copy of these values is exact."""
    return a.astype(np.float16).astype(np.float32)


def bf16_exact(a):
    """Rounds float32 to the nearest bfloat16 (ties to even) and back."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return (u.astype(np.uint32) << 16).view(np.float32)


class Shape:
    def __init__(self, **kw):
        self.arch = "llama"
        self.n_layer = 2
        self.n_embd = 64
        self.n_head = 4
        self.n_head_kv = 2
        self.n_ff = 128
        self.ctx = 128
        self.eps = 1e-5
        self.theta = 10000.0
        self.tied = False
        self.bias = False
        self.__dict__.update(kw)

    @property
    def head_dim(self):
        return self.n_embd // self.n_head


def random_weights(rng, s, vocab):
    """HF-named float32 weights [out][in] of a model of shape s."""
    hd = s.head_dim
    w = {"model.embed_tokens.weight": rng.standard_normal((vocab, s.n_embd)).astype(np.float32)}

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols)) / math.sqrt(cols)).astype(np.float32)

    for L in range(s.n_layer):
        p = f"model.layers.{L}."
        w[p + "input_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(s.n_embd)).astype(np.float32)
        w[p + "self_attn.q_proj.weight"] = mat(s.n_head * hd, s.n_embd) * 2
        w[p + "self_attn.k_proj.weight"] = mat(s.n_head_kv * hd, s.n_embd) * 2
        w[p + "self_attn.v_proj.weight"] = mat(s.n_head_kv * hd, s.n_embd)
        if s.bias:
            w[p + "self_attn.q_proj.bias"] = (0.5 * rng.standard_normal(s.n_head * hd)).astype(np.float32)
            w[p + "self_attn.k_proj.bias"] = (0.5 * rng.standard_normal(s.n_head_kv * hd)).astype(np.float32)
            w[p + "self_attn.v_proj.bias"] = (0.5 * rng.standard_normal(s.n_head_kv * hd)).astype(np.float32)
        w[p + "self_attn.o_proj.weight"] = mat(s.n_embd, s.n_head * hd)
        w[p + "post_attention_layernorm.weight"] = (1 + 0.1 * rng.standard_normal(s.n_embd)).astype(np.float32)
        w[p + "mlp.gate_proj.weight"] = mat(s.n_ff, s.n_embd)
        w[p + "mlp.up_proj.weight"] = mat(s.n_ff, s.n_embd)
        w[p + "mlp.down_proj.weight"] = mat(s.n_embd, s.n_ff)
    w["model.norm.weight"] = (1 + 0.1 * rng.standard_normal(s.n_embd)).astype(np.float32)
    if not s.tied:
        w["lm_head.weight"] = mat(vocab, s.n_embd) * 4
    return w


def llama3_rope_factors(s, scaling):
    """Per-frequency divisors as llama.cpp's converter writes them into rope_freqs.weight,
    following Meta's apply_scaling."""
    hd = s.head_dim
    inv = s.theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    low_wl = scaling["original_max_position_embeddings"] / scaling["low_freq_factor"]
    high_wl = scaling["original_max_position_embeddings"] / scaling["high_freq_factor"]
    out = []
    for f in inv:
        wl = 2 * math.pi / f
        if wl < high_wl:
            out.append(1.0)
        elif wl > low_wl:
            out.append(scaling["factor"])
        else:
            smooth = (scaling["original_max_position_embeddings"] / wl - scaling["low_freq_factor"]) / (
                scaling["high_freq_factor"] - scaling["low_freq_factor"])
            out.append(1 / ((1 - smooth) / scaling["factor"] + smooth))
    return np.array(out, dtype=np.float32)


def permute_for_gguf(w, n_head):
    """llama.cpp's converter reorders each head's Q/K rows from (first half, second half) pairs
    to adjacent pairs, so that ggml's normal rope reproduces Hugging Face's rotate_half."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


GGUF_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def gguf_name(hf):
    if hf == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf == "model.norm.weight":
        return "output_norm.weight"
    if hf == "lm_head.weight":
        return "output.weight"
    _, _, layer, rest = hf.split(".", 3)
    return f"blk.{layer}.{GGUF_NAMES[rest]}"


# ----------------------------------------------------------------------------------------------
# Writers

def write_gguf(path, s, weights, qtype, vocab, rope=None, embd_qtype=None, permute=None, rope_freqs=None):
    """qtype: the matrices' type; embd_qtype: token embedding / output (default qtype); 1-D
    tensors stay F32. Float matrices are stored f16-exact. permute: apply llama.cpp's Q/K
    permutation (for weights in Hugging Face layout)."""
    w = gguf.GGUFWriter(path, s.arch)
    a = s.arch
    w.add_name(os.path.basename(path).rsplit(".", 1)[0])
    w.add_block_count(s.n_layer)
    w.add_context_length(s.ctx)
    w.add_embedding_length(s.n_embd)
    w.add_feed_forward_length(s.n_ff)
    w.add_head_count(s.n_head)
    w.add_head_count_kv(s.n_head_kv)
    w.add_layer_norm_rms_eps(s.eps)
    w.add_rope_freq_base(s.theta)
    w.add_rope_dimension_count(s.head_dim)
    if rope and rope[0] == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(rope[1])
    kind = vocab[0]
    if kind == "bpe":
        tokens, types, merges, specials = vocab[1]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("smollm")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(specials["<|endoftext|>"])
        w.add_eos_token_id(specials["<|im_end|>"])
        w.add_add_bos_token(False)
        w.add_chat_template(CHATML_TEMPLATE)
    else:
        tokens, types, scores = vocab[1]
        w.add_tokenizer_model("llama")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_scores(scores)
        w.add_bos_token_id(1)
        w.add_eos_token_id(2)
        w.add_unk_token_id(0)
        w.add_add_bos_token(True)
    vocab_size = weights["model.embed_tokens.weight"].shape[0]
    w.add_vocab_size(vocab_size)

    if rope_freqs is not None:
        w.add_tensor("rope_freqs.weight", rope_freqs.astype(np.float32))
    for hf, value in weights.items():
        name = gguf_name(hf)
        if permute and hf.endswith("q_proj.weight"):
            value = permute_for_gguf(value, s.n_head)
        if permute and hf.endswith("k_proj.weight"):
            value = permute_for_gguf(value, s.n_head_kv)
        if permute and hf.endswith("q_proj.bias"):
            value = permute_for_gguf(value, s.n_head)
        if permute and hf.endswith("k_proj.bias"):
            value = permute_for_gguf(value, s.n_head_kv)
        if value.ndim == 1:
            w.add_tensor(name, value.astype(np.float32))
            continue
        t = qtype
        if hf in ("model.embed_tokens.weight", "lm_head.weight") and embd_qtype is not None:
            t = embd_qtype
        if t == Q.F32:
            w.add_tensor(name, f16_exact(value))
        elif t == Q.F16:
            w.add_tensor(name, value.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(value, t), raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


SAFETENSORS_DTYPE = {"F32": ("<f4", 4), "F16": ("<f2", 2), "BF16": (None, 2)}


def safetensors_bytes(tensors):
    """tensors: {name: (dtype, array)} -> the bytes of a .safetensors file
    (https://huggingface.co/docs/safetensors: 8-byte little-endian header size, JSON header,
    data; the header padded with spaces to a multiple of 8)."""
    header, blobs, offset = {}, [], 0
    for name, (dtype, arr) in tensors.items():
        if dtype == "BF16":
            raw = (bf16_exact(arr).view(np.uint32) >> 16).astype("<u2").tobytes()
        else:
            raw = arr.astype(SAFETENSORS_DTYPE[dtype][0]).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_hf(folder, s, weights, dtypes, shards, vocab, rope_scaling=None):
    """dtypes: {hf name: "F32"/"F16"/"BF16"}; shards: list of lists of names (one list: a single
    model.safetensors without index)."""
    os.makedirs(folder, exist_ok=True)
    tokens, types, merges, specials = vocab
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM"}[s.arch]
    cfg = {
        "architectures": [arch],
        "model_type": s.arch,
        "hidden_size": s.n_embd,
        "intermediate_size": s.n_ff,
        "num_hidden_layers": s.n_layer,
        "num_attention_heads": s.n_head,
        "num_key_value_heads": s.n_head_kv,
        "max_position_embeddings": s.ctx,
        "rms_norm_eps": s.eps,
        "rope_theta": s.theta,
        "vocab_size": len(tokens),
        "tie_word_embeddings": s.tied,
        "bos_token_id": specials["<|endoftext|>"],
        "eos_token_id": specials["<|im_end|>"],
        "torch_dtype": "bfloat16",
        "hidden_act": "silu",
    }
    if rope_scaling:
        cfg["rope_scaling"] = rope_scaling
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    if len(shards) == 1:
        with open(os.path.join(folder, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes({n: (dtypes[n], weights[n]) for n in shards[0]}))
    else:
        weight_map, total = {}, 0
        for i, names in enumerate(shards):
            fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
            with open(os.path.join(folder, fname), "wb") as f:
                f.write(safetensors_bytes({n: (dtypes[n], weights[n]) for n in names}))
            for n in names:
                weight_map[n] = fname
                total += weights[n].size * SAFETENSORS_DTYPE[dtypes[n]][1]
        with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    # tokenizer.json in Hugging Face tokenizers' format: byte-level BPE.
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in specials.items()]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(tokens) if t not in specials},
                  "merges": merges},
    }
    with open(os.path.join(folder, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False)
    with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
        json.dump({"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>", "chat_template": CHATML_TEMPLATE,
                   "add_bos_token": False}, f, indent=2)


# ----------------------------------------------------------------------------------------------

def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261127)
    bpe = bpe_vocab(61)   # 256 + 61 + 3 = 320 tokens
    bpe_odd = bpe_vocab(44)  # 303 tokens: an odd vocabulary size
    spm = spm_vocab(40)

    def vocab_size(v):
        return len(v[0])

    # 1. GQA (4 query heads over 2 KV heads), untied, F32.
    s = Shape(n_embd=64, n_head=4, n_head_kv=2, n_ff=160)
    write_gguf(f"{out}/llama-gqa-f32.gguf", s, random_weights(rng, s, vocab_size(bpe)), Q.F32, ("bpe", bpe))

    # 2. Multi-head attention, tied embeddings, Q8_0 everywhere.
    s = Shape(n_embd=64, n_head=8, n_head_kv=8, n_ff=128, tied=True, ctx=96)
    write_gguf(f"{out}/llama-tied-q8_0.gguf", s, random_weights(rng, s, vocab_size(bpe)), Q.Q8_0, ("bpe", bpe))

    # 3. Q4_0 matrices with a Q8_0 embedding and output, 3 layers, GQA 6/2, odd vocabulary.
    s = Shape(n_layer=3, n_embd=96, n_head=6, n_head_kv=2, n_ff=192)
    write_gguf(f"{out}/llama-q4_0.gguf", s, random_weights(rng, s, vocab_size(bpe_odd)), Q.Q4_0,
               ("bpe", bpe_odd), embd_qtype=Q.Q8_0)

    # 4. Q4_1, multi-query attention, Llama-3 rope scaling as a rope_freqs tensor.
    s = Shape(n_embd=64, n_head=4, n_head_kv=1, n_ff=128, ctx=128)
    scaling = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    write_gguf(f"{out}/llama-q4_1-rope-llama3.gguf", s, random_weights(rng, s, vocab_size(bpe)), Q.Q4_1,
               ("bpe", bpe), rope_freqs=llama3_rope_factors(s, scaling))

    # 5. Odd sizes: width 40 (5 heads of 8), MLP 100, SentencePiece vocabulary, F16, linear scaling.
    s = Shape(n_embd=40, n_head=5, n_head_kv=5, n_ff=100, ctx=80)
    write_gguf(f"{out}/llama-f16-odd-spm.gguf", s, random_weights(rng, s, vocab_size(spm)), Q.F16,
               ("spm", spm), rope=("linear", 2.0))

    # 6. qwen2: QKV bias, NeoX rotary, F16, large theta.
    s = Shape(arch="qwen2", n_embd=64, n_head=4, n_head_kv=2, n_ff=128, bias=True, theta=1000000.0, eps=1e-6)
    write_gguf(f"{out}/qwen2-bias.gguf", s, random_weights(rng, s, vocab_size(bpe)), Q.F16, ("bpe", bpe))

    # 7. Hugging Face folder, sharded, F32/F16/BF16, Llama-3 rope scaling; and its GGUF twin.
    s = Shape(n_embd=64, n_head=4, n_head_kv=2, n_ff=96, ctx=128)
    w = random_weights(rng, s, vocab_size(bpe))
    dtypes = {}
    for i, n in enumerate(w):
        dtypes[n] = "F32" if w[n].ndim == 1 else ("F16", "BF16", "F32")[i % 3]
        w[n] = bf16_exact(w[n]) if dtypes[n] == "BF16" else f16_exact(w[n]) if w[n].ndim == 2 else w[n]
    names = list(w)
    shards = [names[: len(names) // 3], names[len(names) // 3: 2 * len(names) // 3], names[2 * len(names) // 3:]]
    write_hf(f"{out}/hf-llama", s, w, dtypes, shards, bpe, rope_scaling=dict(scaling, rope_type="llama3"))
    write_gguf(f"{out}/hf-llama.gguf", s, w, Q.F32, ("bpe", bpe), permute=True,
               rope_freqs=llama3_rope_factors(s, scaling))

    # 8. Hugging Face qwen2 folder: one model.safetensors, tied embeddings, BF16.
    s = Shape(arch="qwen2", n_embd=48, n_head=4, n_head_kv=2, n_ff=80, bias=True, tied=True, theta=1000000.0)
    w = random_weights(rng, s, vocab_size(bpe))
    dtypes = {n: "BF16" if v.ndim == 2 else "F32" for n, v in w.items()}
    write_hf(f"{out}/hf-qwen2", s, w, dtypes, [list(w)], bpe)

    # 9. Head size 128 (2 query heads over 1 KV head), F16: the GPU's 8-bit K/V cache takes head
    # sizes 64 and 128 only, and the default model covers 64. Drawn last, so that the models
    # above keep their weights.
    s = Shape(n_embd=256, n_head=2, n_head_kv=1, n_ff=256)
    write_gguf(f"{out}/llama-hd128-f16.gguf", s, random_weights(rng, s, vocab_size(bpe)), Q.F16, ("bpe", bpe))

    with open(f"{out}/README.txt", "w") as f:
        f.write("Tiny random-weight models written by tests/tools/make_tiny_models.py.\n")


if __name__ == "__main__":
    main()
