// SentencePiece vocabularies: loading through the library, GGUF -> ModelProto, encode/decode.
#include "engine/spm_tokenizer.h"

#include "engine/error.h"
#include "engine/gguf.h"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_map>

namespace parley {

namespace {

constexpr uint64_t kMaxModelFileBytes = 512ull * 1024 * 1024;
constexpr size_t kMaxPieceBytes = 64 * 1024;
constexpr size_t kMaxPieces = 16 * 1024 * 1024;
const std::string kSpaceMarker = "\xE2\x96\x81"; // U+2581, SentencePiece's visible space

// SentencePiece piece types (sentencepiece_model.proto, ModelProto.SentencePiece.Type); the same
// numbers as GGUF's tokenizer.ggml.token_type.
enum PieceType : int { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

// ---- protobuf wire format (developers.google.com/protocol-buffers/docs/encoding) ----------------

void putVarint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out += static_cast<char>(0x80 | (v & 0x7F));
        v >>= 7;
    }
    out += static_cast<char>(v);
}
void putTag(std::string& out, uint32_t field, uint32_t wireType) { putVarint(out, (uint64_t(field) << 3) | wireType); }
void putVarintField(std::string& out, uint32_t field, int64_t v) {
    putTag(out, field, 0);
    putVarint(out, static_cast<uint64_t>(v)); // negative int32 values take ten bytes, as protobuf writes them
}
void putBytesField(std::string& out, uint32_t field, const std::string& bytes) {
    putTag(out, field, 2);
    putVarint(out, bytes.size());
    out += bytes;
}
void putFloatField(std::string& out, uint32_t field, float v) {
    putTag(out, field, 5);
    char raw[4];
    std::memcpy(raw, &v, 4); // little-endian fixed32 on the hosts we build for
    out.append(raw, 4);
}

// Reads fields of one message; every length is checked against the bytes there.
class WireReader {
public:
    explicit WireReader(std::string_view bytes) : b_(bytes) {}
    struct Field {
        uint32_t number = 0;
        uint32_t wireType = 0;
        uint64_t varint = 0;
        std::string_view bytes;
    };
    // False at the end or on malformed input (then ok() is false).
    bool next(Field& f) {
        if (pos_ >= b_.size() || !ok_) return false;
        uint64_t key;
        if (!varint(key)) return fail();
        f.number = static_cast<uint32_t>(key >> 3);
        f.wireType = static_cast<uint32_t>(key & 7);
        switch (f.wireType) {
        case 0: return varint(f.varint) || fail();
        case 1: return skip(8, f) || fail();
        case 5: return skip(4, f) || fail();
        case 2: {
            uint64_t n;
            if (!varint(n)) return fail();
            return skip(n, f) || fail();
        }
        default: return fail();
        }
    }
    bool ok() const { return ok_; }

private:
    bool fail() { ok_ = false; return false; }
    bool varint(uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= b_.size()) return false;
            const uint8_t c = static_cast<uint8_t>(b_[pos_++]);
            v |= uint64_t(c & 0x7F) << shift;
            if (c < 0x80) return true;
        }
        return false;
    }
    bool skip(uint64_t n, Field& f) {
        if (n > b_.size() - pos_) return false;
        f.bytes = b_.substr(pos_, n);
        pos_ += n;
        return true;
    }
    std::string_view b_;
    size_t pos_ = 0;
    bool ok_ = true;
};

// normalizer_spec.add_dummy_prefix of ModelProto bytes (default true, as the .proto says).
bool addsDummyPrefix(std::string_view modelProto) {
    bool result = true;
    WireReader top(modelProto);
    WireReader::Field f;
    while (top.next(f)) {
        if (f.number != 3 || f.wireType != 2) continue; // ModelProto.normalizer_spec
        WireReader spec(f.bytes);
        WireReader::Field g;
        while (spec.next(g))
            if (g.number == 3 && g.wireType == 0) result = g.varint != 0; // NormalizerSpec.add_dummy_prefix
    }
    return result;
}

std::string shortened(std::string_view s) {
    return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 40)) + "...";
}

int hexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

} // namespace

SpmTokenizer::SpmTokenizer(const std::string& path, const std::string& serializedModelProto, bool addBos)
    : path_(path), processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
    addBos_ = addBos;
    const auto status = processor_->LoadFromSerializedProto(serializedModelProto);
    if (!status.ok()) throw Error(path + ": not a usable SentencePiece model (" + status.ToString() + ")");
    const int n = processor_->GetPieceSize();
    if (n <= 0) throw Error(path + ": the SentencePiece model has no pieces");
    addSpacePrefix_ = addsDummyPrefix(serializedModelProto);
    bos_ = processor_->bos_id();
    eos_ = processor_->eos_id();
    if (bos_ >= n || bos_ < -1) bos_ = -1;
    if (eos_ >= n || eos_ < -1) eos_ = -1;
    pieces_.resize(n);
    bytes_.resize(n);
    control_.resize(n);
    for (int id = 0; id < n; ++id) {
        const std::string& piece = processor_->IdToPiece(id);
        pieces_[id] = piece;
        control_[id] = processor_->IsControl(id);
        if (processor_->IsControl(id)) {
            special_.push_back({piece, id});
        } else if (processor_->IsUnknown(id)) {
            special_.push_back({piece, id});
            bytes_[id] = " \xE2\x81\x87 "; // the library's unk_surface default, " ⁇ "
        } else if (processor_->IsByte(id) && piece.size() == 6 && piece.compare(0, 3, "<0x") == 0 && piece[5] == '>' &&
                   hexDigit(piece[3]) >= 0 && hexDigit(piece[4]) >= 0) {
            bytes_[id] = std::string(1, static_cast<char>(hexDigit(piece[3]) * 16 + hexDigit(piece[4])));
        } else {
            std::string text;
            for (size_t pos = 0; pos < piece.size();) {
                if (piece.compare(pos, kSpaceMarker.size(), kSpaceMarker) == 0) {
                    text += ' ';
                    pos += kSpaceMarker.size();
                } else {
                    text += piece[pos++];
                }
            }
            bytes_[id] = std::move(text);
        }
    }
    special_.erase(std::remove_if(special_.begin(), special_.end(), [](const SpecialPiece& s) { return s.text.empty(); }),
                   special_.end());
    std::stable_sort(special_.begin(), special_.end(),
                     [](const SpecialPiece& a, const SpecialPiece& b) { return a.text.size() > b.text.size(); });
}

SpmTokenizer::~SpmTokenizer() = default;

std::unique_ptr<SpmTokenizer> SpmTokenizer::fromModelFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary | std::ios::ate);
    if (!in) throw Error(path + ": cannot open the file");
    const std::streamoff size = in.tellg();
    if (size <= 0) throw Error(path + ": the file is empty");
    if (static_cast<uint64_t>(size) > kMaxModelFileBytes)
        throw Error(path + ": " + std::to_string(size) + " bytes is too large for a SentencePiece model");
    in.seekg(0);
    std::string bytes(static_cast<size_t>(size), '\0');
    if (!in.read(bytes.data(), size)) throw Error(path + ": cannot read the file");
    WireReader check(bytes);
    WireReader::Field f;
    while (check.next(f)) {
    }
    if (!check.ok()) throw Error(path + ": not a SentencePiece model (malformed protobuf)");
    return std::make_unique<SpmTokenizer>(path, bytes, /*addBos=*/true);
}

std::string SpmTokenizer::modelProtoFromGguf(const GgufFile& file) {
    const std::string& path = file.path();
    const auto& tokens = file.getArray("tokenizer.ggml.tokens", GgufValueType::String);
    const auto& scores = file.getArray("tokenizer.ggml.scores", GgufValueType::Float32);
    const auto& types = file.getArray("tokenizer.ggml.token_type", GgufValueType::Int32);
    if (tokens.empty()) throw Error(path + ": no tokenizer.ggml.tokens");
    if (tokens.size() > kMaxPieces) throw Error(path + ": too many tokens (" + std::to_string(tokens.size()) + ")");
    if (scores.size() != tokens.size())
        throw Error(path + ": tokenizer.ggml.scores has " + std::to_string(scores.size()) + " entries for " +
                    std::to_string(tokens.size()) + " tokens");
    if (types.size() != tokens.size())
        throw Error(path + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) + " entries for " +
                    std::to_string(tokens.size()) + " tokens");
    const int64_t n = static_cast<int64_t>(tokens.size());
    auto id = [&](const char* key) {
        const int64_t v = file.getInt(key, -1);
        if (v < -1 || v >= n)
            throw Error(path + ": " + key + " " + std::to_string(v) + " is out of range (vocabulary of " + std::to_string(n) + ")");
        return v;
    };
    const int64_t bos = id("tokenizer.ggml.bos_token_id");
    const int64_t eos = id("tokenizer.ggml.eos_token_id");
    const int64_t unk = id("tokenizer.ggml.unknown_token_id");
    const int64_t pad = id("tokenizer.ggml.padding_token_id");

    std::string proto;
    bool hasBytePieces = false, hasUnknown = false;
    std::unordered_map<std::string_view, size_t> seen;
    for (int64_t i = 0; i < n; ++i) {
        const std::string& piece = tokens[i].s;
        const double score = scores[i].f;
        int64_t type = types[i].i;
        if (piece.empty()) throw Error(path + ": token " + std::to_string(i) + " is empty");
        if (piece.size() > kMaxPieceBytes)
            throw Error(path + ": token " + std::to_string(i) + " is " + std::to_string(piece.size()) + " bytes long");
        if (!std::isfinite(score)) throw Error(path + ": token " + std::to_string(i) + " has a score that is not a number");
        if (type == 0) type = kNormal;
        if (type < kNormal || type > kByte)
            throw Error(path + ": token " + std::to_string(i) + " has unknown type " + std::to_string(type));
        if (auto [it, fresh] = seen.emplace(piece, i); !fresh)
            throw Error(path + ": token " + std::to_string(i) + " ('" + shortened(piece) + "') repeats token " +
                        std::to_string(it->second));
        hasBytePieces |= type == kByte;
        hasUnknown |= type == kUnknown;
        std::string message;
        putBytesField(message, 1, piece);                        // SentencePiece.piece
        putFloatField(message, 2, static_cast<float>(score));    // SentencePiece.score
        if (type != kNormal) putVarintField(message, 3, type);   // SentencePiece.type
        putBytesField(proto, 1, message);                        // ModelProto.pieces
    }
    if (!hasUnknown) throw Error(path + ": the SentencePiece vocabulary has no unknown token");

    // TrainerSpec: what encoding depends on. GGUF "llama" vocabularies are BPE models; a whole
    // text is one word to merge in (llama.cpp does the same), so whitespace-only pieces are allowed.
    std::string trainer;
    putVarintField(trainer, 3, 2);         // model_type = BPE
    putVarintField(trainer, 4, n);         // vocab_size
    putVarintField(trainer, 26, 1);        // allow_whitespace_only_pieces
    putVarintField(trainer, 35, hasBytePieces ? 1 : 0); // byte_fallback
    putVarintField(trainer, 40, unk);      // unk_id
    putVarintField(trainer, 41, bos);      // bos_id
    putVarintField(trainer, 42, eos);      // eos_id
    putVarintField(trainer, 43, pad);      // pad_id
    putBytesField(proto, 2, trainer);      // ModelProto.trainer_spec

    // NormalizerSpec: no character normalization (GGUF keeps no charsmap for llama vocabularies),
    // whitespace escaped to U+2581, the dummy prefix as the file says.
    std::string normalizer;
    putBytesField(normalizer, 1, "identity");                                             // name
    putVarintField(normalizer, 3, file.getBool("tokenizer.ggml.add_space_prefix", true)); // add_dummy_prefix
    putVarintField(normalizer, 4, 0);                                                     // remove_extra_whitespaces
    putVarintField(normalizer, 5, 1);                                                     // escape_whitespaces
    putBytesField(proto, 3, normalizer);   // ModelProto.normalizer_spec
    return proto;
}

std::unique_ptr<SpmTokenizer> SpmTokenizer::fromGguf(const GgufFile& file) {
    return std::make_unique<SpmTokenizer>(file.path(), modelProtoFromGguf(file),
                                          file.getBool("tokenizer.ggml.add_bos_token", true));
}

void SpmTokenizer::checkId(int32_t id) const {
    if (id < 0 || id >= vocabSize())
        throw Error(path_ + ": token id " + std::to_string(id) + " is out of range (vocabulary of " +
                    std::to_string(vocabSize()) + ")");
}

std::string SpmTokenizer::tokenBytes(int32_t id) const {
    checkId(id);
    return bytes_[id];
}

std::string SpmTokenizer::tokenText(int32_t id) const {
    checkId(id);
    return pieces_[id];
}

std::optional<int32_t> SpmTokenizer::findToken(std::string_view text) const {
    const int id = processor_->PieceToId(std::string(text));
    // PieceToId answers unk_id for unknown text: only the unknown piece itself maps to it.
    if (id < 0 || id >= vocabSize() || pieces_[id] != text) return std::nullopt;
    return id;
}

bool SpmTokenizer::isControl(int32_t id) const {
    checkId(id);
    return control_[id];
}

void SpmTokenizer::encodeText(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    std::vector<int> ids;
    const auto status = processor_->Encode(std::string(text), &ids);
    if (!status.ok()) throw Error(path_ + ": cannot encode text (" + status.ToString() + ")");
    out.insert(out.end(), ids.begin(), ids.end());
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool addBos, bool parseSpecial) const {
    std::vector<int32_t> out;
    if (addBos && bos_ >= 0) out.push_back(bos_);
    if (!parseSpecial) {
        encodeText(text, out);
        return out;
    }
    // Control pieces ("<s>", "</s>") and the unknown piece written in the text become those
    // tokens; each stretch of text between them is encoded on its own, with the dummy prefix
    // (as llama.cpp does, and as Meta's Llama-2 chat code encodes each [INST] turn separately).
    size_t segmentStart = 0, pos = 0;
    while (pos < text.size()) {
        const SpecialPiece* found = nullptr;
        for (const SpecialPiece& s : special_)
            if (text.compare(pos, s.text.size(), s.text) == 0) {
                found = &s;
                break;
            }
        if (!found) {
            ++pos;
            continue;
        }
        encodeText(text.substr(segmentStart, pos - segmentStart), out);
        out.push_back(found->id);
        pos += found->text.size();
        segmentStart = pos;
    }
    encodeText(text.substr(segmentStart), out);
    return out;
}

} // namespace parley
