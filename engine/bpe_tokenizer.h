#pragma once
// GPT-2-style byte-level BPE (Radford et al. 2019, openai/gpt-2 encoder.py; Hugging Face
// tokenizers' ByteLevel + BPE): text -> added/special tokens split out (leftmost, longest) ->
// pre-tokenizer pieces -> each piece's bytes as the 256 byte symbols -> merges applied by rank
// (lowest first, leftmost among equals) -> ids.
#include "engine/bpe_pretokenizer.h"
#include "engine/tokenizer.h"

#include <array>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace parley {

class GgufFile;

// What a token is, with the numbering of GGUF's tokenizer.ggml.token_type (= SentencePiece's).
enum class BpeTokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// A vocabulary as the file gives it, before checking.
struct BpeVocabularySource {
    std::string path;                       // for error messages
    std::vector<std::string> tokens;        // index = id; byte-level text ("Ġthe")
    std::vector<BpeTokenType> types;        // same size as tokens
    std::vector<std::pair<std::string, std::string>> merges; // in rank order
    PreTokenizer preTokenizer = PreTokenizer::Gpt2;
    bool ignoreMerges = false;              // a piece that is a whole token stays one (Llama-3)
    bool addPrefixSpace = false;            // HF ByteLevel(add_prefix_space)
    int32_t bos = -1, eos = -1;
    bool addBos = false;
    // Added tokens that take the white space before (lstrip) or after (rstrip) them along
    // (tokenizer.json added_tokens flags), by id.
    std::vector<int32_t> lstripIds, rstripIds;
};

class BpeTokenizer : public Tokenizer {
public:
    explicit BpeTokenizer(BpeVocabularySource source); // throws Error naming source.path

    static std::unique_ptr<BpeTokenizer> fromGguf(const GgufFile& file);
    // A Hugging Face tokenizer.json with a byte-level BPE model; tokenizer_config.json beside it,
    // where present, names BOS/EOS.
    static std::unique_ptr<BpeTokenizer> fromJson(const std::string& path);

    std::vector<int32_t> encode(std::string_view text, bool addBos, bool parseSpecial) const override;
    std::string tokenBytes(int32_t id) const override;
    std::string tokenText(int32_t id) const override;
    std::optional<int32_t> findToken(std::string_view text) const override;
    int vocabSize() const override { return static_cast<int>(tokens_.size()); }
    TokenizerKind kind() const override { return TokenizerKind::BytePairEncoding; }
    bool isControl(int32_t id) const override;
    PreTokenizer preTokenizer() const { return preTokenizer_; }

private:
    void checkId(int32_t id) const;
    void encodeText(std::string_view text, std::vector<int32_t>& out) const;
    void encodePiece(std::string_view piece, std::vector<int32_t>& out) const;

    std::string path_;
    std::vector<std::string> tokens_;
    std::vector<BpeTokenType> types_;
    std::vector<std::string> bytes_; // what each token stands for in running text
    std::unordered_map<std::string, int32_t> idOfText_;
    std::array<int32_t, 256> byteSymbolId_{};
    struct Merge {
        int32_t rank;
        int32_t result;
    };
    std::unordered_map<uint64_t, Merge> merges_; // (left id << 32 | right id) -> merge
    PreTokenizer preTokenizer_;
    bool ignoreMerges_;
    bool addPrefixSpace_;
    // Added tokens matched in text before pre-tokenizing: control ones only with parseSpecial.
    struct AddedToken {
        std::string text;
        int32_t id;
        bool control;
        bool lstrip = false, rstrip = false;
    };
    std::vector<AddedToken> added_; // longest first
    std::array<bool, 256> addedFirstByte_{}; // quick rejection while scanning text
};

} // namespace parley
