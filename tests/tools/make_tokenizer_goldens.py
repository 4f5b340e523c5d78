#!/usr/bin/env python3
"""Writes the tokenizer goldens the engine's tests compare against, from the reference
implementations (run once by a developer; CI only reads the files it writes):

  tests/data/tokenizer/smollm2/tokenizer.json   a Hugging Face tokenizer.json for SmolLM2, built by
      the `tokenizers` library from the default model's GGUF vocabulary and merges, configured as
      SmolLM2's own tokenizer.json is: BPE, pre_tokenizer Sequence[Digits(individual_digits),
      ByteLevel(add_prefix_space=False, use_regex=True)], ByteLevel decoder, its 17 special tokens
  tests/data/tokenizer/smollm2/tokenizer_config.json   BOS/EOS and the chat template, as SmolLM2's
  tests/data/tokenizer/smollm2_goldens.jsonl   per corpus line: ids with special tokens parsed
      ("ids_special", what tokenizers' encode gives), ids with special-token text as plain text
      ("ids", the same pipeline without added tokens) and the decoded text
  tests/data/tokenizer/llama2_goldens.jsonl   per corpus line, from python `sentencepiece` on the
      LLaMA-2 tokenizer.model: ids without BOS, ids with control pieces ("<s>", "</s>", "<unk>")
      in the text parsed as those tokens (each stretch between them encoded on its own), the
      decoded text, and for some lines the ids with BOS (add_bos=True)
  tests/data/tokenizer/bpe_variants.json, bpe_variants_goldens.jsonl   the SmolLM2 vocabulary
      under the Llama-3 pre-tokenizer (Split(Llama-3 regex) + ByteLevel(use_regex=False), BPE
      ignore_merges), the Qwen2 one, and with <|im_start|> lstrip / <|im_end|> rstrip: the
      pre_tokenizer/ignore_merges/added_tokens parts of the tokenizer.json tokenizers writes for
      each, and per corpus line the ids (special tokens parsed)
  tests/data/tokenizer/pretokenizer_goldens.jsonl   per corpus line, the pieces tokenizers' own
      pre-tokenizers cut it into: Split(regex, "isolated") with the GPT-2, Llama-3 and Qwen2
      patterns, and SmolLM2's Sequence[Digits(individual_digits), Split(GPT-2 pattern)]

Needs: tokenizers, sentencepiece, gguf (system python3 on the dev machine).
  python3 tests/tools/make_tokenizer_goldens.py ~/.local/share/Parley/models/SmolLM2-135M-Instruct.Q4_1.gguf \
      ../shared/data/llama2-tokenizer.model
"""
import json
import os
import sys

import gguf
import sentencepiece
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "tokenizer")


def read_corpus():
    with open(os.path.join(DATA, "corpus.jsonl"), encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def gguf_string_array(reader, key):
    field = reader.fields[key]
    return [bytes(field.parts[i]).decode("utf-8") for i in field.data]


def gguf_scalar(reader, key):
    field = reader.fields[key]
    value = field.parts[field.data[0]]
    return value.tolist()[0] if hasattr(value, "tolist") else value


def smollm2_tokenizers(gguf_path):
    reader = gguf.GGUFReader(gguf_path)
    tokens = gguf_string_array(reader, "tokenizer.ggml.tokens")
    merges = [tuple(m.split(" ", 1)) for m in gguf_string_array(reader, "tokenizer.ggml.merges")]
    types_field = reader.fields["tokenizer.ggml.token_type"]
    types = [int(types_field.parts[i][0]) for i in types_field.data]
    template = bytes(reader.fields["tokenizer.chat_template"].parts[reader.fields["tokenizer.chat_template"].data[0]]).decode()
    vocab = {t: i for i, t in enumerate(tokens)}

    def build(with_added):
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])
        tok.decoder = decoders.ByteLevel()
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
        if with_added:
            specials = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
            tok.add_special_tokens(specials)
        return tok

    def variant(pattern, ignore_merges):
        tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
        tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3])
        return tok

    # SmolLM2 with added tokens that swallow neighbouring white space (as e.g. Phi-3's do).
    strip = build(False)
    strip.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=t == "<|im_start|>",
                                         rstrip=t == "<|im_end|>")
                              for t, ty in zip(tokens, types) if ty == 3])
    variants = {"llama3": variant(PATTERNS["llama3"], True), "qwen2": variant(PATTERNS["qwen2"], False), "strip": strip}
    return build(True), build(False), tokens, template, variants


PATTERNS = {
    "gpt2": r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    "llama3": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
    "qwen2": r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""",
}


def write_pretokenizer_goldens(corpus):
    splitters = {name: pre_tokenizers.Split(Regex(p), behavior="isolated") for name, p in PATTERNS.items()}
    splitters["smollm"] = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), splitters["gpt2"]])
    with open(os.path.join(DATA, "pretokenizer_goldens.jsonl"), "w", encoding="utf-8") as out:
        for text in corpus:
            entry = {"text": text}
            for name, splitter in splitters.items():
                entry[name] = [piece for piece, _ in splitter.pre_tokenize_str(text)]
                assert "".join(entry[name]) == text
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


def main():
    gguf_path, spm_path = sys.argv[1], sys.argv[2]
    corpus = read_corpus()
    write_pretokenizer_goldens(corpus)

    full, plain, tokens, template, variants = smollm2_tokenizers(gguf_path)
    folder = os.path.join(DATA, "smollm2")
    os.makedirs(folder, exist_ok=True)
    full.save(os.path.join(folder, "tokenizer.json"))
    # The keys of SmolLM2-135M-Instruct's tokenizer_config.json that name tokens and the template.
    config = {
        "add_prefix_space": False,
        "bos_token": "<|im_start|>",
        "eos_token": "<|im_end|>",
        "pad_token": "<|im_end|>",
        "unk_token": "<|endoftext|>",
        "chat_template": template,
        "model_max_length": 8192,
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": len(tokens),
    }
    with open(os.path.join(folder, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")
    # The saved file must load and agree with the tokenizer that wrote it.
    reloaded = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))

    with open(os.path.join(DATA, "smollm2_goldens.jsonl"), "w", encoding="utf-8") as out:
        for text in corpus:
            ids_special = full.encode(text, add_special_tokens=False).ids
            assert reloaded.encode(text, add_special_tokens=False).ids == ids_special
            ids = plain.encode(text, add_special_tokens=False).ids
            decoded = plain.decode(ids, skip_special_tokens=False)
            out.write(json.dumps({"text": text, "ids": ids, "ids_special": ids_special, "decoded": decoded},
                                 ensure_ascii=False) + "\n")

    parts = {}
    for name, tok in variants.items():
        saved = json.loads(tok.to_str())
        parts[name] = {"pre_tokenizer": saved["pre_tokenizer"], "ignore_merges": saved["model"]["ignore_merges"],
                       "added_tokens": saved["added_tokens"]}
    with open(os.path.join(DATA, "bpe_variants.json"), "w", encoding="utf-8") as f:
        json.dump(parts, f, ensure_ascii=False, indent=2)
        f.write("\n")
    with open(os.path.join(DATA, "bpe_variants_goldens.jsonl"), "w", encoding="utf-8") as out:
        for text in corpus:
            entry = {"text": text}
            for name, tok in variants.items():
                entry[name] = tok.encode(text, add_special_tokens=False).ids
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")

    sp = sentencepiece.SentencePieceProcessor(model_file=spm_path)
    specials = sorted((sp.id_to_piece(i) for i in range(sp.get_piece_size()) if sp.is_control(i) or sp.is_unknown(i)),
                      key=len, reverse=True)

    def encode_special(text):
        ids, start, pos = [], 0, 0
        while pos < len(text):
            hit = next((s for s in specials if text.startswith(s, pos)), None)
            if hit is None:
                pos += 1
                continue
            if pos > start:
                ids += sp.encode(text[start:pos])
            ids.append(sp.piece_to_id(hit))
            pos += len(hit)
            start = pos
        if start < len(text):
            ids += sp.encode(text[start:])
        return ids

    with open(os.path.join(DATA, "llama2_goldens.jsonl"), "w", encoding="utf-8") as out:
        for n, text in enumerate(corpus):
            ids = sp.encode(text)
            entry = {"text": text, "ids": ids, "ids_special": encode_special(text), "decoded": sp.decode(ids)}
            if n % 20 == 0:
                entry["ids_bos"] = sp.encode(text, add_bos=True)
            out.write(json.dumps(entry, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
