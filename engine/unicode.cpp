// UTF-8 decoding (RFC 3629, Unicode §3.9 table 3-7) and category look-ups by binary search over
// the generated range tables.
#include "engine/unicode.h"

#include <algorithm>

namespace parley::unicode {

namespace {

bool inRanges(const CodePointRange* ranges, size_t count, char32_t cp) {
    const CodePointRange* end = ranges + count;
    // First range whose last code point is >= cp.
    const CodePointRange* it = std::lower_bound(ranges, end, cp,
        [](const CodePointRange& r, char32_t value) { return r.last < value; });
    return it != end && it->first <= cp;
}

} // namespace

bool isLetter(char32_t cp) { return cp >= 0x41 && inRanges(kLetterRanges, kLetterRangesCount, cp); }
bool isNumber(char32_t cp) { return cp >= 0x30 && inRanges(kNumberRanges, kNumberRangesCount, cp); }
bool isWhiteSpace(char32_t cp) { return inRanges(kWhiteSpaceRanges, kWhiteSpaceRangesCount, cp); }

Utf8Decoded decodeUtf8(std::string_view text, size_t pos) {
    Utf8Decoded d;
    const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
    const uint8_t b0 = byte(pos);
    if (b0 < 0x80) {
        d.codePoint = b0;
        d.status = Utf8Status::Complete;
        return d;
    }
    size_t length;
    char32_t cp;
    // Allowed range of the second byte (Unicode table 3-7), which rules out overlongs,
    // surrogates and code points past U+10FFFF.
    uint8_t secondLow = 0x80, secondHigh = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) { length = 2; cp = b0 & 0x1F; }
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        length = 3; cp = b0 & 0x0F;
        if (b0 == 0xE0) secondLow = 0xA0;
        if (b0 == 0xED) secondHigh = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        length = 4; cp = b0 & 0x07;
        if (b0 == 0xF0) secondLow = 0x90;
        if (b0 == 0xF4) secondHigh = 0x8F;
    } else {
        d.lengthBytes = 1; // a continuation byte or a byte that never starts a sequence
        return d;
    }
    for (size_t k = 1; k < length; ++k) {
        if (pos + k >= text.size()) {
            d.status = Utf8Status::Incomplete;
            d.lengthBytes = k;
            return d;
        }
        const uint8_t b = byte(pos + k);
        const uint8_t low = k == 1 ? secondLow : 0x80, high = k == 1 ? secondHigh : 0xBF;
        if (b < low || b > high) {
            d.lengthBytes = k; // the maximal subpart so far becomes one U+FFFD
            return d;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    d.codePoint = cp;
    d.lengthBytes = length;
    d.status = Utf8Status::Complete;
    return d;
}

void appendUtf8(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace parley::unicode
