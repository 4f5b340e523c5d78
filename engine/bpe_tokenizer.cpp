// Byte-level BPE: loading (GGUF gpt2 vocabularies, Hugging Face tokenizer.json), checking, and
// encoding as described in bpe_tokenizer.h.
#include "engine/bpe_tokenizer.h"

#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/unicode.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <queue>
#include <sstream>

namespace parley {

namespace {

// Longest token text we accept: real vocabularies stay far below (whitespace runs of code
// vocabularies reach a few hundred bytes); a longer one means a broken or hostile file.
constexpr size_t kMaxTokenBytes = 64 * 1024;
constexpr size_t kMaxVocabulary = 16 * 1024 * 1024;

// GPT-2's reversible byte <-> character map (openai/gpt-2 encoder.py bytes_to_unicode): printable
// Latin-1 bytes stand for themselves, the other 68 bytes for U+0100 onwards, in byte order.
struct ByteMap {
    std::array<char32_t, 256> charOfByte{};
    std::unordered_map<char32_t, uint8_t> byteOfChar;
    ByteMap() {
        char32_t next = 256;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            charOfByte[b] = printable ? static_cast<char32_t>(b) : next++;
            byteOfChar[charOfByte[b]] = static_cast<uint8_t>(b);
        }
    }
};
const ByteMap& byteMap() {
    static const ByteMap map;
    return map;
}

std::string byteSymbol(uint8_t b) {
    std::string s;
    unicode::appendUtf8(s, byteMap().charOfByte[b]);
    return s;
}

// The bytes a byte-level token text stands for; characters outside the map (an added token's
// plain text) stay as they are.
std::string bytesOfByteLevelText(std::string_view text) {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        unicode::Utf8Decoded d = unicode::decodeUtf8(text, pos);
        if (d.status != unicode::Utf8Status::Complete) {
            out += text[pos++];
            continue;
        }
        auto it = byteMap().byteOfChar.find(d.codePoint);
        if (it != byteMap().byteOfChar.end()) out += static_cast<char>(it->second);
        else out.append(text.substr(pos, d.lengthBytes));
        pos += d.lengthBytes;
    }
    return out;
}

// Byte length of the white-space character (Unicode White_Space) at pos, or 0.
size_t whiteSpaceAt(std::string_view text, size_t pos) {
    if (pos >= text.size()) return 0;
    const unicode::Utf8Decoded d = unicode::decodeUtf8(text, pos);
    return d.status == unicode::Utf8Status::Complete && unicode::isWhiteSpace(d.codePoint) ? d.lengthBytes : 0;
}

// Byte length of the white-space character that ends at `end` (not before `begin`), or 0.
size_t whiteSpaceBefore(std::string_view text, size_t begin, size_t end) {
    size_t start = end;
    while (start > begin && end - start < 4) {
        --start;
        if ((static_cast<uint8_t>(text[start]) & 0xC0) != 0x80) break;
    }
    const size_t n = whiteSpaceAt(text, start);
    return start + n == end ? n : 0;
}

std::string shortened(std::string_view s) {
    return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 40)) + "...";
}

} // namespace

BpeTokenizer::BpeTokenizer(BpeVocabularySource source)
    : path_(std::move(source.path)), tokens_(std::move(source.tokens)), types_(std::move(source.types)),
      preTokenizer_(source.preTokenizer), ignoreMerges_(source.ignoreMerges), addPrefixSpace_(source.addPrefixSpace) {
    addBos_ = source.addBos;
    const size_t n = tokens_.size();
    if (n == 0) throw Error(path_ + ": the tokenizer has no tokens");
    if (n > kMaxVocabulary) throw Error(path_ + ": the tokenizer has " + std::to_string(n) + " tokens, too many");
    if (types_.size() != n)
        throw Error(path_ + ": " + std::to_string(types_.size()) + " token types for " + std::to_string(n) + " tokens");
    auto checkSpecialId = [&](int32_t id, const char* what) {
        if (id < -1 || id >= static_cast<int64_t>(n))
            throw Error(path_ + ": " + what + " token id " + std::to_string(id) + " is out of range (vocabulary of " +
                        std::to_string(n) + ")");
    };
    checkSpecialId(source.bos, "BOS");
    checkSpecialId(source.eos, "EOS");
    bos_ = source.bos;
    eos_ = source.eos;
    addSpacePrefix_ = false;

    idOfText_.reserve(n);
    bytes_.resize(n);
    for (size_t id = 0; id < n; ++id) {
        const std::string& t = tokens_[id];
        if (t.empty()) throw Error(path_ + ": token " + std::to_string(id) + " is empty");
        if (t.size() > kMaxTokenBytes)
            throw Error(path_ + ": token " + std::to_string(id) + " is " + std::to_string(t.size()) + " bytes long");
        idOfText_.emplace(t, static_cast<int32_t>(id)); // the first of duplicates wins
        switch (types_[id]) {
        case BpeTokenType::Control: case BpeTokenType::Unused: break; // no text
        case BpeTokenType::UserDefined: bytes_[id] = t; break;         // added text, not byte-level
        default: bytes_[id] = bytesOfByteLevelText(t); break;
        }
        if (types_[id] == BpeTokenType::Control || types_[id] == BpeTokenType::UserDefined)
            added_.push_back({t, static_cast<int32_t>(id), types_[id] == BpeTokenType::Control});
    }
    auto flag = [&](const std::vector<int32_t>& ids, bool AddedToken::*member) {
        for (int32_t id : ids)
            for (AddedToken& a : added_)
                if (a.id == id) a.*member = true;
    };
    flag(source.lstripIds, &AddedToken::lstrip);
    flag(source.rstripIds, &AddedToken::rstrip);
    std::stable_sort(added_.begin(), added_.end(),
                     [](const AddedToken& a, const AddedToken& b) { return a.text.size() > b.text.size(); });
    for (const AddedToken& a : added_) addedFirstByte_[static_cast<uint8_t>(a.text[0])] = true;

    // Real vocabularies lack some byte symbols (SmolLM2 has none for 21 bytes, mostly ones that
    // never occur in UTF-8); like Hugging Face's BPE without an unknown token, such bytes are
    // dropped from the text.
    for (int b = 0; b < 256; ++b) {
        auto it = idOfText_.find(byteSymbol(static_cast<uint8_t>(b)));
        byteSymbolId_[b] = it == idOfText_.end() ? -1 : it->second;
    }

    merges_.reserve(source.merges.size());
    int32_t rank = 0;
    for (const auto& [left, right] : source.merges) {
        auto describe = [&] { return "merge " + std::to_string(rank) + " ('" + shortened(left) + " " + shortened(right) + "')"; };
        auto l = idOfText_.find(left), r = idOfText_.find(right), m = idOfText_.find(left + right);
        if (l == idOfText_.end() || r == idOfText_.end())
            throw Error(path_ + ": " + describe() + " names a token that is not in the vocabulary");
        if (m == idOfText_.end())
            throw Error(path_ + ": " + describe() + " makes a token that is not in the vocabulary");
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(l->second)) << 32) | static_cast<uint32_t>(r->second);
        merges_.emplace(key, Merge{rank, m->second}); // a repeated pair keeps its first (lowest) rank
        ++rank;
    }
}

void BpeTokenizer::checkId(int32_t id) const {
    if (id < 0 || id >= vocabSize())
        throw Error(path_ + ": token id " + std::to_string(id) + " is out of range (vocabulary of " +
                    std::to_string(vocabSize()) + ")");
}

std::string BpeTokenizer::tokenBytes(int32_t id) const {
    checkId(id);
    return bytes_[id];
}

std::string BpeTokenizer::tokenText(int32_t id) const {
    checkId(id);
    return tokens_[id];
}

std::optional<int32_t> BpeTokenizer::findToken(std::string_view text) const {
    auto it = idOfText_.find(std::string(text));
    if (it == idOfText_.end()) return std::nullopt;
    return it->second;
}

bool BpeTokenizer::isControl(int32_t id) const {
    checkId(id);
    return types_[id] == BpeTokenType::Control;
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool addBos, bool parseSpecial) const {
    std::vector<int32_t> out;
    if (addBos && bos_ >= 0) out.push_back(bos_);
    // Added tokens first: at each position the longest one that starts there (Hugging Face's
    // leftmost-longest match); the text between them goes through the pre-tokenizer. An added
    // token with lstrip/rstrip swallows the white space before/after it.
    size_t segmentStart = 0, pos = 0;
    while (pos < text.size()) {
        const AddedToken* found = nullptr;
        if (addedFirstByte_[static_cast<uint8_t>(text[pos])]) {
            for (const AddedToken& a : added_) {
                if (a.control && !parseSpecial) continue;
                if (text.compare(pos, a.text.size(), a.text) == 0) {
                    found = &a;
                    break; // longest first
                }
            }
        }
        if (!found) {
            ++pos;
            continue;
        }
        size_t segmentEnd = pos;
        if (found->lstrip)
            while (size_t n = whiteSpaceBefore(text, segmentStart, segmentEnd)) segmentEnd -= n;
        encodeText(text.substr(segmentStart, segmentEnd - segmentStart), out);
        out.push_back(found->id);
        pos += found->text.size();
        if (found->rstrip)
            while (size_t n = whiteSpaceAt(text, pos)) pos += n;
        segmentStart = pos;
    }
    encodeText(text.substr(segmentStart), out);
    return out;
}

void BpeTokenizer::encodeText(std::string_view text, std::vector<int32_t>& out) const {
    if (text.empty()) return;
    if (addPrefixSpace_ && text.front() != ' ') {
        std::string spaced(1, ' ');
        spaced += text;
        for (std::string_view piece : preTokenize(preTokenizer_, spaced)) encodePiece(piece, out);
        return;
    }
    for (std::string_view piece : preTokenize(preTokenizer_, text)) encodePiece(piece, out);
}

void BpeTokenizer::encodePiece(std::string_view piece, std::vector<int32_t>& out) const {
    if (piece.empty()) return;
    if (ignoreMerges_) {
        std::string mapped;
        for (char c : piece) mapped += byteSymbol(static_cast<uint8_t>(c));
        if (auto it = idOfText_.find(mapped); it != idOfText_.end()) {
            out.push_back(it->second);
            return;
        }
    }
    // Symbols in a linked list; candidate merges in a min-heap by (rank, position). A popped
    // candidate whose symbols have changed since it was pushed is stale and skipped.
    struct Symbol {
        int32_t id;
        int32_t prev, next;
    };
    std::vector<Symbol> symbols;
    symbols.reserve(piece.size());
    for (char c : piece) {
        const int32_t id = byteSymbolId_[static_cast<uint8_t>(c)];
        if (id < 0) continue; // a byte the vocabulary cannot spell
        const int32_t i = static_cast<int32_t>(symbols.size());
        symbols.push_back({id, i - 1, -1});
        if (i > 0) symbols[i - 1].next = i;
    }
    const int32_t n = static_cast<int32_t>(symbols.size());
    if (n == 0) return;
    struct Candidate {
        int32_t rank, left, leftId, rightId;
        bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> heap;
    auto consider = [&](int32_t left) {
        if (left < 0) return;
        const int32_t right = symbols[left].next;
        if (right < 0) return;
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(symbols[left].id)) << 32) |
                             static_cast<uint32_t>(symbols[right].id);
        auto it = merges_.find(key);
        if (it != merges_.end()) heap.push({it->second.rank, left, symbols[left].id, symbols[right].id});
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i);
    std::vector<bool> alive(n, true);
    while (!heap.empty()) {
        const Candidate c = heap.top();
        heap.pop();
        if (!alive[c.left] || symbols[c.left].id != c.leftId) continue;
        const int32_t right = symbols[c.left].next;
        if (right < 0 || symbols[right].id != c.rightId) continue;
        const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(c.leftId)) << 32) | static_cast<uint32_t>(c.rightId);
        symbols[c.left].id = merges_.at(key).result;
        symbols[c.left].next = symbols[right].next;
        if (symbols[right].next >= 0) symbols[symbols[right].next].prev = c.left;
        alive[right] = false;
        consider(symbols[c.left].prev);
        consider(c.left);
    }
    for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
}

// ---- GGUF -------------------------------------------------------------------------------------

std::unique_ptr<BpeTokenizer> BpeTokenizer::fromGguf(const GgufFile& file) {
    BpeVocabularySource src;
    src.path = file.path();
    const auto& tokens = file.getArray("tokenizer.ggml.tokens", GgufValueType::String);
    const auto& types = file.getArray("tokenizer.ggml.token_type", GgufValueType::Int32);
    const auto& merges = file.getArray("tokenizer.ggml.merges", GgufValueType::String);
    if (tokens.empty()) throw Error(file.path() + ": no tokenizer.ggml.tokens");
    if (merges.empty()) throw Error(file.path() + ": the gpt2 tokenizer has no tokenizer.ggml.merges");
    if (!types.empty() && types.size() != tokens.size())
        throw Error(file.path() + ": tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                    " entries for " + std::to_string(tokens.size()) + " tokens");
    src.tokens.reserve(tokens.size());
    for (const GgufValue& t : tokens) src.tokens.push_back(t.s);
    src.types.reserve(tokens.size());
    for (size_t i = 0; i < tokens.size(); ++i) {
        const int64_t t = types.empty() ? 1 : types[i].i;
        if (t < 0 || t > 6) throw Error(file.path() + ": token " + std::to_string(i) + " has unknown type " + std::to_string(t));
        src.types.push_back(t == 0 ? BpeTokenType::Normal : static_cast<BpeTokenType>(t));
    }
    src.merges.reserve(merges.size());
    for (size_t i = 0; i < merges.size(); ++i) {
        const std::string& m = merges[i].s;
        const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
        if (space == std::string::npos || space + 1 >= m.size())
            throw Error(file.path() + ": merge " + std::to_string(i) + " ('" + shortened(m) + "') is not two tokens");
        src.merges.emplace_back(m.substr(0, space), m.substr(space + 1));
    }
    const std::string pre = file.getString("tokenizer.ggml.pre");
    auto kind = preTokenizerFromGgufName(pre);
    if (!kind) throw Error(file.path() + ": unsupported pre-tokenizer '" + shortened(pre) + "'");
    src.preTokenizer = *kind;
    src.ignoreMerges = *kind == PreTokenizer::Llama3; // as llama.cpp and Llama-3's tokenizer.json
    auto id = [&](const char* key) {
        const int64_t v = file.getInt(key, -1);
        if (v < -1 || v >= static_cast<int64_t>(tokens.size()))
            throw Error(file.path() + ": " + key + " " + std::to_string(v) + " is out of range (vocabulary of " +
                        std::to_string(tokens.size()) + ")");
        return static_cast<int32_t>(v);
    };
    src.bos = id("tokenizer.ggml.bos_token_id");
    src.eos = id("tokenizer.ggml.eos_token_id");
    id("tokenizer.ggml.unknown_token_id");
    id("tokenizer.ggml.padding_token_id");
    src.addBos = file.getBool("tokenizer.ggml.add_bos_token", false);
    return std::make_unique<BpeTokenizer>(std::move(src));
}

// ---- tokenizer.json ---------------------------------------------------------------------------

namespace {

using nlohmann::json;

json readJsonFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(path + ": cannot open the file");
    std::stringstream text;
    text << in.rdbuf();
    try {
        return json::parse(text.str());
    } catch (const json::exception& e) {
        throw Error(path + ": not valid JSON (" + e.what() + ")");
    }
}

// A token named in tokenizer_config.json: "…" or {"content": "…"}.
std::optional<std::string> configToken(const json& config, const char* key) {
    if (!config.contains(key)) return std::nullopt;
    const json& v = config[key];
    if (v.is_string()) return v.get<std::string>();
    if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
    return std::nullopt;
}

struct JsonPreTokenizer {
    PreTokenizer kind;
    bool addPrefixSpace;
};

JsonPreTokenizer readPreTokenizer(const std::string& path, const json& pre) {
    auto fail = [&]() -> JsonPreTokenizer {
        throw Error(path + ": unsupported pre_tokenizer " + shortened(pre.dump()));
    };
    auto type = [](const json& j) { return j.is_object() && j.contains("type") && j["type"].is_string() ? j["type"].get<std::string>() : std::string(); };
    auto useRegex = [](const json& j) { return !j.contains("use_regex") || j["use_regex"] == true; };
    auto prefixSpace = [](const json& j) { return j.contains("add_prefix_space") && j["add_prefix_space"] == true; };
    if (type(pre) == "ByteLevel") {
        if (!useRegex(pre)) fail();
        return {PreTokenizer::Gpt2, prefixSpace(pre)};
    }
    if (type(pre) != "Sequence" || !pre.contains("pretokenizers") || !pre["pretokenizers"].is_array() ||
        pre["pretokenizers"].size() != 2)
        return fail();
    const json& first = pre["pretokenizers"][0];
    const json& second = pre["pretokenizers"][1];
    if (type(second) != "ByteLevel") return fail();
    if (type(first) == "Digits" && first.value("individual_digits", false) && useRegex(second))
        return {PreTokenizer::SmolLM, prefixSpace(second)};
    if (type(first) == "Split" && !useRegex(second) && first.value("behavior", "") == "Isolated" &&
        !first.value("invert", false) && first.contains("pattern") && first["pattern"].is_object() &&
        first["pattern"].contains("Regex") && first["pattern"]["Regex"].is_string()) {
        if (auto kind = preTokenizerFromRegex(first["pattern"]["Regex"].get<std::string>()))
            return {*kind, prefixSpace(second)};
    }
    return fail();
}

} // namespace

std::unique_ptr<BpeTokenizer> BpeTokenizer::fromJson(const std::string& path) {
    const json root = readJsonFile(path);
    try {
        if (!root.is_object() || !root.contains("model") || !root["model"].is_object())
            throw Error(path + ": no \"model\" in the tokenizer");
        const json& model = root["model"];
        if (model.value("type", "") != "BPE")
            throw Error(path + ": unsupported tokenizer model type " + shortened(model.value("type", "(none)")));
        if (!model.value("continuing_subword_prefix", json()).is_null() || !model.value("end_of_word_suffix", json()).is_null())
            throw Error(path + ": BPE with subword prefixes or word suffixes is not supported");
        if (root.contains("normalizer") && !root["normalizer"].is_null())
            throw Error(path + ": unsupported normalizer " + shortened(root["normalizer"].dump()));
        if (!root.contains("pre_tokenizer") || root["pre_tokenizer"].is_null())
            throw Error(path + ": no pre_tokenizer (only byte-level BPE is supported)");
        const JsonPreTokenizer pre = readPreTokenizer(path, root["pre_tokenizer"]);

        const json& vocab = model.value("vocab", json());
        if (!vocab.is_object() || vocab.empty()) throw Error(path + ": no vocabulary in the model");
        const json addedTokens = root.value("added_tokens", json::array());
        if (!addedTokens.is_array()) throw Error(path + ": added_tokens is not a list");
        const size_t entries = vocab.size() + addedTokens.size();
        if (entries > kMaxVocabulary) throw Error(path + ": too many tokens");

        BpeVocabularySource src;
        src.path = path;
        src.preTokenizer = pre.kind;
        src.addPrefixSpace = pre.addPrefixSpace;
        src.ignoreMerges = model.value("ignore_merges", false);
        std::vector<bool> present(entries, false);
        src.tokens.resize(entries);
        src.types.assign(entries, BpeTokenType::Normal);
        size_t size = 0;
        auto place = [&](const json& idValue, const std::string& text) -> size_t {
            if (!idValue.is_number_integer()) throw Error(path + ": token '" + shortened(text) + "' has no integer id");
            const int64_t id = idValue.get<int64_t>();
            if (id < 0 || static_cast<uint64_t>(id) >= entries)
                throw Error(path + ": token id " + std::to_string(id) + " of '" + shortened(text) + "' is out of range");
            src.tokens[id] = text;
            present[id] = true;
            size = std::max(size, static_cast<size_t>(id) + 1);
            return static_cast<size_t>(id);
        };
        for (const auto& [text, id] : vocab.items()) place(id, text);
        for (const json& a : addedTokens) {
            if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id"))
                throw Error(path + ": an added token lacks its content or id");
            const size_t id = place(a["id"], a["content"].get<std::string>());
            src.types[id] = a.value("special", false) ? BpeTokenType::Control : BpeTokenType::UserDefined;
            if (a.value("lstrip", false)) src.lstripIds.push_back(static_cast<int32_t>(id));
            if (a.value("rstrip", false)) src.rstripIds.push_back(static_cast<int32_t>(id));
        }
        for (size_t id = 0; id < size; ++id)
            if (!present[id]) throw Error(path + ": no token has id " + std::to_string(id));
        src.tokens.resize(size);
        src.types.resize(size);

        const json& merges = model.value("merges", json());
        if (!merges.is_array() || merges.empty()) throw Error(path + ": no merges in the model");
        src.merges.reserve(merges.size());
        for (size_t i = 0; i < merges.size(); ++i) {
            const json& m = merges[i];
            if (m.is_string()) { // "left right"
                const std::string s = m.get<std::string>();
                const size_t space = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
                if (space == std::string::npos || space + 1 >= s.size())
                    throw Error(path + ": merge " + std::to_string(i) + " ('" + shortened(s) + "') is not two tokens");
                src.merges.emplace_back(s.substr(0, space), s.substr(space + 1));
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) { // ["left", "right"]
                src.merges.emplace_back(m[0].get<std::string>(), m[1].get<std::string>());
            } else {
                throw Error(path + ": merge " + std::to_string(i) + " is not two tokens");
            }
        }

        // BOS/EOS: tokenizer_config.json beside the file where there is one; the post-processor
        // says whether BOS is added.
        auto idOf = [&](const std::string& text) -> int32_t {
            for (size_t id = 0; id < src.tokens.size(); ++id)
                if (src.tokens[id] == text) return static_cast<int32_t>(id);
            return -1;
        };
        const std::filesystem::path configPath = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
        json config = json::object();
        if (std::filesystem::exists(configPath)) config = readJsonFile(configPath.string());
        if (auto t = configToken(config, "bos_token")) src.bos = idOf(*t);
        if (auto t = configToken(config, "eos_token")) src.eos = idOf(*t);
        if (src.eos < 0)
            for (const char* guess : {"<|endoftext|>", "<|end_of_text|>", "</s>"})
                if ((src.eos = idOf(guess)) >= 0) break;
        std::vector<const json*> processors;
        if (root.contains("post_processor") && root["post_processor"].is_object()) {
            const json& p = root["post_processor"];
            if (p.value("type", "") == "Sequence" && p.contains("processors") && p["processors"].is_array())
                for (const json& q : p["processors"]) processors.push_back(&q);
            else
                processors.push_back(&p);
        }
        for (const json* p : processors) {
            if (!p->is_object() || p->value("type", "") != "TemplateProcessing" || !p->contains("single")) continue;
            const json& single = (*p)["single"];
            if (single.is_array() && !single.empty() && single[0].is_object() && single[0].contains("SpecialToken")) {
                const json& st = single[0]["SpecialToken"];
                if (st.is_object() && st.contains("id") && st["id"].is_string()) {
                    const int32_t id = idOf(st["id"].get<std::string>());
                    if (id >= 0) {
                        src.bos = id;
                        src.addBos = true;
                    }
                }
            }
        }
        if (config.contains("add_bos_token") && config["add_bos_token"].is_boolean())
            src.addBos = config["add_bos_token"].get<bool>();
        return std::make_unique<BpeTokenizer>(std::move(src));
    } catch (const json::exception& e) {
        throw Error(path + ": unexpected tokenizer structure (" + std::string(e.what()) + ")");
    }
}

} // namespace parley
