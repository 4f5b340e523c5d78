// Hand-written matchers for the pre-tokenizer patterns listed in bpe_pretokenizer.h.
// Each matcher gets the code points of one text piece and a start index and returns where the
// first alternative that matches there ends. Lookahead (?!\S) at the end of the piece succeeds,
// as it does when Hugging Face runs the regex on that piece alone.
#include "engine/bpe_pretokenizer.h"

#include "engine/unicode.h"

#include <algorithm>

namespace parley {

namespace {

constexpr char32_t kNotACodePoint = 0xFFFFFFFF; // an invalid UTF-8 byte: "other"

struct CodePoints {
    std::vector<char32_t> values;
    std::vector<size_t> byteOffsets; // size values.size() + 1

    explicit CodePoints(std::string_view text) {
        values.reserve(text.size());
        byteOffsets.reserve(text.size() + 1);
        size_t pos = 0;
        while (pos < text.size()) {
            unicode::Utf8Decoded d = unicode::decodeUtf8(text, pos);
            byteOffsets.push_back(pos);
            values.push_back(d.status == unicode::Utf8Status::Complete ? d.codePoint : kNotACodePoint);
            pos += d.status == unicode::Utf8Status::Complete ? d.lengthBytes : 1;
        }
        byteOffsets.push_back(text.size());
    }
};

bool isL(char32_t c) { return c != kNotACodePoint && unicode::isLetter(c); }
bool isN(char32_t c) { return c != kNotACodePoint && unicode::isNumber(c); }
bool isS(char32_t c) { return c != kNotACodePoint && unicode::isWhiteSpace(c); }
bool isOther(char32_t c) { return !isL(c) && !isN(c) && !isS(c); } // [^\s\p{L}\p{N}]
bool isCrLf(char32_t c) { return c == U'\r' || c == U'\n'; }
char32_t asciiLower(char32_t c) { return c >= U'A' && c <= U'Z' ? c + 32 : c; }

class Matcher {
public:
    Matcher(const std::vector<char32_t>& c, size_t end) : c_(c), end_(end) {}

    template <typename Pred> size_t run(size_t i, Pred pred) const {
        while (i < end_ && pred(c_[i])) ++i;
        return i;
    }
    bool at(size_t i, char32_t want) const { return i < end_ && c_[i] == want; }
    template <typename Pred> bool is(size_t i, Pred pred) const { return i < end_ && pred(c_[i]); }

    // 's|'t|'re|'ve|'m|'ll|'d, optionally ASCII case-insensitive; 0 when none matches.
    size_t contraction(size_t i, bool ignoreCase) const {
        if (!at(i, U'\'') || i + 1 >= end_) return 0;
        auto lower = [&](size_t k) { return ignoreCase ? asciiLower(c_[k]) : c_[k]; };
        const char32_t a = lower(i + 1);
        if (a == U's' || a == U't' || a == U'm' || a == U'd') return i + 2;
        if (i + 2 >= end_) return 0;
        const char32_t b = lower(i + 2);
        if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return i + 3;
        return 0;
    }

    // \s+(?!\S)|\s+ from i, where c[i] is white space.
    size_t trailingWhiteSpace(size_t i) const {
        const size_t j = run(i, isS);
        if (j == end_) return j;          // (?!\S) holds at the end of the piece
        return std::max(i + 1, j - 1);    // leave the last space to the word that follows
    }

    size_t gpt2(size_t i) const {
        if (size_t e = contraction(i, false)) return e;
        const size_t k = at(i, U' ') ? i + 1 : i; // the optional leading space
        if (is(k, isL)) return run(k, isL);
        if (is(k, isN)) return run(k, isN);
        if (is(k, isOther)) return run(k, isOther);
        if (is(i, isS)) return trailingWhiteSpace(i);
        return i + 1;
    }

    size_t llama3(size_t i, size_t maxDigits) const {
        if (size_t e = contraction(i, true)) return e;
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (is(i, isL)) return run(i, isL);
        if (!isCrLf(c_[i]) && !isN(c_[i]) && is(i + 1, isL)) return run(i + 1, isL);
        // \p{N}{1,maxDigits}
        if (is(i, isN)) {
            size_t j = i;
            while (j < end_ && j - i < maxDigits && isN(c_[j])) ++j;
            return j;
        }
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        const size_t k = at(i, U' ') ? i + 1 : i;
        if (is(k, isOther)) return run(run(k, isOther), isCrLf);
        if (is(i, isS)) {
            // \s*[\r\n]+ : up to and including the last CR/LF of the white-space run
            const size_t j = run(i, isS);
            for (size_t p = j; p > i; --p)
                if (isCrLf(c_[p - 1])) return p;
            return trailingWhiteSpace(i);
        }
        return i + 1;
    }

private:
    const std::vector<char32_t>& c_;
    size_t end_;
};

void splitWith(PreTokenizer kind, std::string_view text, const CodePoints& cps, size_t begin, size_t end,
               std::vector<std::string_view>& out) {
    Matcher m(cps.values, end);
    size_t i = begin;
    while (i < end) {
        size_t j;
        switch (kind) {
        case PreTokenizer::Llama3: j = m.llama3(i, 3); break;
        case PreTokenizer::Qwen2: j = m.llama3(i, 1); break;
        default: j = m.gpt2(i); break;
        }
        const size_t from = cps.byteOffsets[i], to = cps.byteOffsets[j];
        out.push_back(text.substr(from, to - from));
        i = j;
    }
}

} // namespace

const char* preTokenizerName(PreTokenizer p) {
    switch (p) {
    case PreTokenizer::Gpt2: return "gpt2";
    case PreTokenizer::SmolLM: return "smollm";
    case PreTokenizer::Llama3: return "llama3";
    case PreTokenizer::Qwen2: return "qwen2";
    }
    return "?";
}

std::optional<PreTokenizer> preTokenizerFromGgufName(std::string_view name) {
    // llama.cpp's names (src/llama-vocab.cpp): "default"/"gpt-2" use the GPT-2 pattern;
    // StarCoder-derived vocabularies (smollm, starcoder, refact) isolate digits first.
    if (name.empty() || name == "default" || name == "gpt2" || name == "gpt-2") return PreTokenizer::Gpt2;
    if (name == "smollm" || name == "starcoder" || name == "refact") return PreTokenizer::SmolLM;
    if (name == "llama3" || name == "llama-v3" || name == "llama-bpe") return PreTokenizer::Llama3;
    if (name == "qwen2") return PreTokenizer::Qwen2;
    return std::nullopt;
}

std::optional<PreTokenizer> preTokenizerFromRegex(std::string_view pattern) {
    static const char* kGpt2 = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    static const char* kLlama3 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    static const char* kQwen2 =
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    if (pattern == kGpt2) return PreTokenizer::Gpt2;
    if (pattern == kLlama3) return PreTokenizer::Llama3;
    if (pattern == kQwen2) return PreTokenizer::Qwen2;
    return std::nullopt;
}

std::vector<std::string_view> preTokenize(PreTokenizer kind, std::string_view text) {
    std::vector<std::string_view> out;
    if (text.empty()) return out;
    const CodePoints cps(text);
    const size_t n = cps.values.size();
    if (kind != PreTokenizer::SmolLM) {
        splitWith(kind, text, cps, 0, n, out);
        return out;
    }
    // Digits isolated, then the GPT-2 pattern on each stretch between them.
    size_t i = 0;
    while (i < n) {
        if (isN(cps.values[i])) {
            out.push_back(text.substr(cps.byteOffsets[i], cps.byteOffsets[i + 1] - cps.byteOffsets[i]));
            ++i;
            continue;
        }
        size_t j = i;
        while (j < n && !isN(cps.values[j])) ++j;
        splitWith(PreTokenizer::Gpt2, text, cps, i, j, out);
        i = j;
    }
    return out;
}

} // namespace parley
