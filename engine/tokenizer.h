#pragma once
// Text <-> token ids. Two kinds (DESIGN.md §2):
//   - SentencePiece vocabularies, through the SentencePiece library: from a tokenizer.model file,
//     or from a GGUF's tokenizer.ggml.* SPM vocab turned into ModelProto bytes and loaded with
//     LoadFromSerializedProto. Both give identical ids.
//   - GPT-2-style byte-level BPE (GGUF tokenizer.ggml.model = "gpt2", or tokenizer.json),
//     implemented here: pre-tokenizer regex, merges by rank, byte mapping, added/special tokens.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

class GgufFile;

enum class TokenizerKind { SentencePiece, BytePairEncoding };

class Tokenizer {
public:
    virtual ~Tokenizer() = default;

    // Ids for text. addBos prepends the BOS token where the vocabulary has one (whether the
    // model wants it: addsBosByDefault()). With parseSpecial, the text of special/control tokens
    // ("<|im_start|>", "<s>") becomes those tokens, as chat templates need; without it such text
    // is tokenized as ordinary characters. Non-special added tokens (user-defined) are always
    // matched, as Hugging Face and SentencePiece do.
    virtual std::vector<int32_t> encode(std::string_view text, bool addBos, bool parseSpecial) const = 0;
    // The bytes a token stands for in running text: SPM's U+2581 becomes a space, byte-fallback
    // pieces <0xNN> become that byte, BPE byte symbols become their bytes. Control tokens (BOS,
    // EOS, <|im_end|>) give an empty string. A piece may be part of a UTF-8 character.
    virtual std::string tokenBytes(int32_t id) const = 0;
    // The vocabulary's own text for a token ("<|im_end|>", "▁the", "Ġthe").
    virtual std::string tokenText(int32_t id) const = 0;
    virtual std::optional<int32_t> findToken(std::string_view text) const = 0;
    virtual int vocabSize() const = 0;
    virtual TokenizerKind kind() const = 0;
    virtual bool isControl(int32_t id) const = 0;

    int32_t bos() const { return bos_; } // -1 where there is none
    int32_t eos() const { return eos_; }
    // Whether the model expects BOS before a text (GGUF tokenizer.ggml.add_bos_token,
    // tokenizer.json's post-processor or tokenizer_config.json add_bos_token; a tokenizer.model
    // and GGUF SentencePiece vocabularies without the key do).
    bool addsBosByDefault() const { return addBos_ && bos_ >= 0; }
    // SPM: decoding the first piece of a text drops the space its leading U+2581 stands for.
    bool stripsLeadingSpace() const { return kind() == TokenizerKind::SentencePiece && addSpacePrefix_; }

    // Loaders. Each throws Error naming the file and the problem.
    static std::unique_ptr<Tokenizer> fromGguf(const GgufFile& file);
    // A tokenizer.model, a tokenizer.json, or a Hugging Face folder holding either.
    static std::unique_ptr<Tokenizer> fromPath(const std::string& path);

protected:
    int32_t bos_ = -1;
    int32_t eos_ = -1;
    bool addSpacePrefix_ = true;
    bool addBos_ = false;
};

// Turns a stream of token ids into text that never ends in half a UTF-8 character.
class StreamingDetokenizer {
public:
    explicit StreamingDetokenizer(const Tokenizer& tokenizer, bool atTextStart = true);
    // The text that became complete with this token (possibly empty).
    std::string push(int32_t id);
    // What is left at the end (an incomplete character is replaced by U+FFFD).
    std::string flush();

private:
    const Tokenizer& tokenizer_;
    std::string pending_;
    bool atTextStart_;
};

// Whole-sequence decode built on the streaming one.
std::string decodeTokens(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool atTextStart = true);

} // namespace parley
