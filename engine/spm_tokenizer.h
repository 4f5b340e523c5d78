#pragma once
// SentencePiece vocabularies through the SentencePiece library (github.com/google/sentencepiece):
// a tokenizer.model file as it is, or a GGUF's tokenizer.ggml.* "llama" vocabulary rebuilt as
// ModelProto bytes (sentencepiece_model.proto, written in protobuf wire format here) and loaded
// with LoadFromSerializedProto, so both give the same ids.
#include "engine/tokenizer.h"

#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace parley {

class GgufFile;

class SpmTokenizer : public Tokenizer {
public:
    // `path` names the source in errors; `addBos`: whether encode(addBos=true) adds BOS.
    SpmTokenizer(const std::string& path, const std::string& serializedModelProto, bool addBos);
    ~SpmTokenizer() override;

    static std::unique_ptr<SpmTokenizer> fromModelFile(const std::string& path);
    static std::unique_ptr<SpmTokenizer> fromGguf(const GgufFile& file);
    // The ModelProto bytes for a GGUF's SPM vocabulary (throws Error naming the file).
    static std::string modelProtoFromGguf(const GgufFile& file);

    std::vector<int32_t> encode(std::string_view text, bool addBos, bool parseSpecial) const override;
    std::string tokenBytes(int32_t id) const override;
    std::string tokenText(int32_t id) const override;
    std::optional<int32_t> findToken(std::string_view text) const override;
    int vocabSize() const override { return static_cast<int>(pieces_.size()); }
    TokenizerKind kind() const override { return TokenizerKind::SentencePiece; }
    bool isControl(int32_t id) const override;

private:
    void checkId(int32_t id) const;
    void encodeText(std::string_view text, std::vector<int32_t>& out) const;

    std::string path_;
    std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
    std::vector<std::string> pieces_;
    std::vector<std::string> bytes_;
    std::vector<bool> control_;
    struct SpecialPiece {
        std::string text;
        int32_t id;
    };
    std::vector<SpecialPiece> special_; // control and unknown pieces, longest first (parseSpecial)
};

} // namespace parley
