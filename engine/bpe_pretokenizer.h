#pragma once
// Pre-tokenizers of byte-level BPE vocabularies: they cut text into the pieces BPE merges stay
// inside. Each is the model's regular expression matched by hand (no regex engine), alternative
// by alternative in the order the pattern lists them, as a backtracking engine would:
//   Gpt2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//          (openai/gpt-2 encoder.py; Hugging Face ByteLevel with use_regex)
//   SmolLM every \p{N} isolated first (HF Digits(individual_digits=true)), then Gpt2 on the rest
//   Llama3 (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//          ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+        (meta-llama/llama3 tokenizer.py)
//   Qwen2  as Llama3 with \p{N} (single digits)                     (Qwen2 tokenizer.json)
// Bytes that are not valid UTF-8 count as one "other" character each.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

enum class PreTokenizer { Gpt2, SmolLM, Llama3, Qwen2 };
const char* preTokenizerName(PreTokenizer p);
// The GGUF tokenizer.ggml.pre names (llama.cpp's) this engine knows; nullopt otherwise.
std::optional<PreTokenizer> preTokenizerFromGgufName(std::string_view name);
// A Hugging Face Split pre-tokenizer's regex, where it is one of the patterns above.
std::optional<PreTokenizer> preTokenizerFromRegex(std::string_view pattern);

// The pieces of `text`, in order; concatenated they give `text` back.
std::vector<std::string_view> preTokenize(PreTokenizer kind, std::string_view text);

} // namespace parley
