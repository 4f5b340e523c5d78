// Tokenizer factories (which kind a file holds) and the streaming detokenizer.
#include "engine/tokenizer.h"

#include "engine/bpe_tokenizer.h"
#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/spm_tokenizer.h"
#include "engine/unicode.h"

#include <filesystem>

namespace parley {

std::unique_ptr<Tokenizer> Tokenizer::fromGguf(const GgufFile& file) {
    const std::string model = file.getString("tokenizer.ggml.model");
    if (model.empty()) throw Error(file.path() + ": the file has no tokenizer (tokenizer.ggml.model)");
    if (model == "llama") return SpmTokenizer::fromGguf(file);
    if (model == "gpt2") return BpeTokenizer::fromGguf(file);
    throw Error(file.path() + ": unsupported tokenizer '" + model.substr(0, 40) + "'");
}

std::unique_ptr<Tokenizer> Tokenizer::fromPath(const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        // A Hugging Face folder: LLaMA-family SPM models ship tokenizer.model (their tokenizer.json
        // is a different BPE flavour); byte-level BPE models ship only tokenizer.json.
        const fs::path dir(path);
        if (fs::exists(dir / "tokenizer.model", ec)) return SpmTokenizer::fromModelFile((dir / "tokenizer.model").string());
        if (fs::exists(dir / "tokenizer.json", ec)) return BpeTokenizer::fromJson((dir / "tokenizer.json").string());
        throw Error(path + ": the folder has no tokenizer.model or tokenizer.json");
    }
    if (!fs::exists(path, ec)) throw Error(path + ": no such file");
    if (fs::path(path).extension() == ".json") return BpeTokenizer::fromJson(path);
    if (fs::path(path).extension() == ".gguf") {
        GgufFile file(path);
        return fromGguf(file);
    }
    return SpmTokenizer::fromModelFile(path);
}

StreamingDetokenizer::StreamingDetokenizer(const Tokenizer& tokenizer, bool atTextStart)
    : tokenizer_(tokenizer), atTextStart_(atTextStart) {}

std::string StreamingDetokenizer::push(int32_t id) {
    std::string bytes = tokenizer_.tokenBytes(id);
    if (bytes.empty()) return {}; // control tokens leave the text (and its start) as it is
    if (atTextStart_) {
        // SentencePiece's dummy prefix: the space the first piece's U+2581 stands for was
        // added by the encoder, so decoding drops it (as SentencePiece's Decode does).
        if (tokenizer_.stripsLeadingSpace() && bytes.front() == ' ' &&
            tokenizer_.tokenText(id).rfind("\xE2\x96\x81", 0) == 0)
            bytes.erase(0, 1);
        atTextStart_ = false;
    }
    pending_ += bytes;
    // Emit every whole character; keep an unfinished one; bytes that can never become a
    // character turn into U+FFFD (Unicode §3.9, "maximal subpart" replacement).
    std::string out;
    size_t pos = 0;
    while (pos < pending_.size()) {
        const unicode::Utf8Decoded d = unicode::decodeUtf8(pending_, pos);
        if (d.status == unicode::Utf8Status::Incomplete) break;
        if (d.status == unicode::Utf8Status::Complete) out.append(pending_, pos, d.lengthBytes);
        else out += unicode::kReplacementCharacter;
        pos += d.lengthBytes;
    }
    pending_.erase(0, pos);
    return out;
}

std::string StreamingDetokenizer::flush() {
    std::string out;
    if (!pending_.empty()) out = std::string(unicode::kReplacementCharacter);
    pending_.clear();
    return out;
}

std::string decodeTokens(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool atTextStart) {
    StreamingDetokenizer detokenizer(tokenizer, atTextStart);
    std::string text;
    for (int32_t id : ids) text += detokenizer.push(id);
    text += detokenizer.flush();
    return text;
}

} // namespace parley
