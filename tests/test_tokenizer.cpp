// Tokenizers against the reference implementations: on every line of a 200+ string corpus
// (tests/data/tokenizer/corpus.jsonl) the engine's ids equal Hugging Face `tokenizers` for
// SmolLM2 (through the default model's GGUF and through a tokenizers-written tokenizer.json) and
// python `sentencepiece` for the LLaMA-2 tokenizer.model (through the .model file and through a
// GGUF made from it at test time). Goldens: tests/tools/make_tokenizer_goldens.py. Also: the
// pre-tokenizer patterns, round trips, the streaming detokenizer fed byte-sized pieces, special
// tokens, and hostile vocabularies that must give one Error naming the file.
#include "engine/bpe_pretokenizer.h"
#include "engine/bpe_tokenizer.h"
#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/spm_tokenizer.h"
#include "engine/tokenizer.h"
#include "engine/unicode.h"
#include "gguf_bytes.h"
#include "support.h"

#include <QProcess>
#include <QTest>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>

using namespace parley;
using namespace parley::test;
using nlohmann::json;

namespace {

std::vector<json> readJsonLines(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::vector<json> lines;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) lines.push_back(json::parse(line));
    return lines;
}

std::string dataPath(const std::string& relative) { return envPath("PARLEY_TEST_DATA", "tokenizer/" + relative); }

std::string llama2ModelPath() {
    std::string p = envPath("PARLEY_SHARED_DATA", "llama2-tokenizer.model");
    return fileExists(p) ? p : std::string();
}

// Loaded once and shared by the tests that only use them (loading has its own tests).
const Tokenizer& smolJson() {
    static std::unique_ptr<Tokenizer> tok = Tokenizer::fromPath(dataPath("smollm2/tokenizer.json"));
    return *tok;
}
const Tokenizer& llama2() {
    static std::unique_ptr<Tokenizer> tok = Tokenizer::fromPath(llama2ModelPath());
    return *tok;
}

std::vector<int32_t> idsOf(const json& j) { return j.get<std::vector<int32_t>>(); }

QString describe(const std::string& text, const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
    auto list = [](const std::vector<int32_t>& v) {
        QStringList s;
        for (int32_t id : v) s << QString::number(id);
        return s.join(' ');
    };
    return QString("text %1: got [%2], want [%3]")
        .arg(QString::fromStdString(json(text).dump()), list(got), list(want));
}

// Every corpus line: ids with and without special-token parsing, and the decoded text.
void expectGoldens(const Tokenizer& tok, const std::string& goldensFile) {
    const std::vector<json> goldens = readJsonLines(dataPath(goldensFile));
    const std::vector<json> corpus = readJsonLines(dataPath("corpus.jsonl"));
    QCOMPARE(goldens.size(), corpus.size());
    QVERIFY(corpus.size() >= 200);
    for (size_t i = 0; i < goldens.size(); ++i) {
        const std::string text = corpus[i]["text"];
        QCOMPARE(goldens[i]["text"].get<std::string>(), text);
        const std::vector<int32_t> plain = tok.encode(text, false, false);
        QVERIFY2(plain == idsOf(goldens[i]["ids"]), qPrintable(describe(text, plain, idsOf(goldens[i]["ids"]))));
        const std::vector<int32_t> special = tok.encode(text, false, true);
        QVERIFY2(special == idsOf(goldens[i]["ids_special"]),
                 qPrintable(describe(text, special, idsOf(goldens[i]["ids_special"]))));
        if (goldens[i].contains("ids_bos")) {
            const std::vector<int32_t> withBos = tok.encode(text, true, false);
            QVERIFY2(withBos == idsOf(goldens[i]["ids_bos"]), qPrintable(describe(text, withBos, idsOf(goldens[i]["ids_bos"]))));
        }
        const std::string decoded = decodeTokens(tok, plain);
        QVERIFY2(decoded == goldens[i]["decoded"].get<std::string>(),
                 qPrintable(QString("decode of %1 gave %2").arg(QString::fromStdString(json(text).dump()),
                                                                QString::fromStdString(json(decoded).dump()))));
    }
}

bool isValidUtf8(const std::string& s) {
    for (size_t pos = 0; pos < s.size();) {
        const auto d = unicode::decodeUtf8(s, pos);
        if (d.status != unicode::Utf8Status::Complete) return false;
        pos += d.lengthBytes;
    }
    return true;
}

// Streams each corpus line's ids one by one: every piece is whole UTF-8 and they add up to
// the whole-sequence decode.
void expectStreamingWhole(const Tokenizer& tok) {
    for (const json& line : readJsonLines(dataPath("corpus.jsonl"))) {
        const std::string text = line["text"];
        const std::vector<int32_t> ids = tok.encode(text, false, false);
        StreamingDetokenizer stream(tok);
        std::string joined;
        for (int32_t id : ids) {
            const std::string piece = stream.push(id);
            QVERIFY2(isValidUtf8(piece), qPrintable(QString::fromStdString(json(text).dump())));
            joined += piece;
        }
        joined += stream.flush();
        QCOMPARE(joined, decodeTokens(tok, ids));
    }
}


// A small but complete byte-level BPE vocabulary: the 256 byte symbols, a few merges, a special.
struct BpeVocab {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<std::string> merges;
    std::string pre = "gpt2";
    uint32_t bos = 0, eos = 0;
    BpeVocab() {
        tokens.push_back("<|endoftext|>");
        types.push_back(3);
        // The same byte map as GPT-2 (bytes_to_unicode), written out independently.
        int extra = 0;
        for (int b = 0; b < 256; ++b) {
            const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            std::string s;
            unicode::appendUtf8(s, printable ? char32_t(b) : char32_t(256 + extra++));
            tokens.push_back(s);
            types.push_back(1);
        }
        for (const char* m : {"h e", "l l", "he ll", "hell o"}) {
            merges.push_back(m);
            std::string merged = m;
            merged.erase(merged.find(' '), 1);
            tokens.push_back(merged);
            types.push_back(1);
        }
    }
    std::vector<uint8_t> gguf() const {
        GgufBytes g;
        g.kvStr("general.architecture", "llama");
        g.kvStr("tokenizer.ggml.model", "gpt2");
        g.kvStr("tokenizer.ggml.pre", pre);
        g.kvStrings("tokenizer.ggml.tokens", tokens);
        g.kvInts("tokenizer.ggml.token_type", types);
        g.kvStrings("tokenizer.ggml.merges", merges);
        g.kvU32("tokenizer.ggml.bos_token_id", bos);
        g.kvU32("tokenizer.ggml.eos_token_id", eos);
        return g.file();
    }
};

// A small SentencePiece vocabulary as GGUF: unk, <s>, </s>, byte pieces, a few words.
struct SpmVocab {
    std::vector<std::string> tokens{"<unk>", "<s>", "</s>"};
    std::vector<float> scores{0, 0, 0};
    std::vector<int32_t> types{2, 3, 3};
    uint32_t bos = 1, eos = 2;
    SpmVocab() {
        for (int b = 0; b < 256; ++b) {
            char name[8];
            std::snprintf(name, sizeof name, "<0x%02X>", b);
            tokens.push_back(name);
            scores.push_back(0);
            types.push_back(6);
        }
        const char* pieces[] = {"\xE2\x96\x81", "h", "e", "l", "o", "\xE2\x96\x81h", "ll", "\xE2\x96\x81he", "\xE2\x96\x81hell",
                                "\xE2\x96\x81hello"};
        float score = -1;
        for (const char* p : pieces) {
            tokens.push_back(p);
            scores.push_back(score);
            score -= 1;
            types.push_back(1);
        }
    }
    std::vector<uint8_t> gguf() const {
        GgufBytes g;
        g.kvStr("general.architecture", "llama");
        g.kvStr("tokenizer.ggml.model", "llama");
        g.kvStrings("tokenizer.ggml.tokens", tokens);
        g.kvFloats("tokenizer.ggml.scores", scores);
        g.kvInts("tokenizer.ggml.token_type", types);
        g.kvU32("tokenizer.ggml.bos_token_id", bos);
        g.kvU32("tokenizer.ggml.eos_token_id", eos);
        g.kvU32("tokenizer.ggml.unknown_token_id", 0);
        return g.file();
    }
};

std::string writeTemp(const std::vector<uint8_t>& bytes, const std::string& name) {
    std::string p = makeTempDir() + "/" + name;
    writeFileBytes(p, bytes);
    return p;
}

std::unique_ptr<Tokenizer> loadGgufTokenizer(const std::string& path) {
    GgufFile f(path);
    return Tokenizer::fromGguf(f);
}

// Loading must throw parley::Error whose message names the file (and mentions `what`).
void expectRejectedFile(const std::string& path, const std::string& what) {
    try {
        auto tok = Tokenizer::fromPath(path);
        QFAIL(qPrintable(QString::fromStdString("accepted a bad tokenizer: " + what)));
    } catch (const Error& e) {
        const std::string message = e.what();
        QVERIFY2(message.find(path) != std::string::npos, e.what());
        QVERIFY2(message.find(what) != std::string::npos, e.what());
        QVERIFY2(message.find('\n') == std::string::npos, e.what());
    }
}

void expectRejectedGguf(const std::vector<uint8_t>& bytes, const std::string& what) {
    expectRejectedFile(writeTemp(bytes, "vocab.gguf"), what);
}

} // namespace

class TestTokenizer : public QObject {
    Q_OBJECT

    std::string llama2GgufPath_;
    QString llama2GgufSkip_;

private slots:
    void initTestCase() {
        // The LLaMA-2 vocabulary as GGUF, made from the .model by the converter script.
        const std::string model = llama2ModelPath();
        const std::string python = envPath("PARLEY_PYTHON");
        if (model.empty()) {
            llama2GgufSkip_ = "PARLEY_SHARED_DATA has no llama2-tokenizer.model";
            return;
        }
        if (python.empty() || !fileExists(python)) {
            llama2GgufSkip_ = "PARLEY_PYTHON (with the gguf package) is not installed";
            return;
        }
        llama2GgufPath_ = makeTempDir() + "/llama2-vocab.gguf";
        QProcess p;
        p.start(QString::fromStdString(python),
                {QString::fromStdString(envPath("PARLEY_TEST_DATA", "../tools/spm_to_gguf.py")),
                 QString::fromStdString(model), QString::fromStdString(llama2GgufPath_)});
        QVERIFY(p.waitForFinished(120000));
        QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
    }

    // ---- acceptance: goldens from the reference tokenizers -----------------------------------

    void smollm2GgufMatchesHuggingFace() {
        const std::string model = defaultModelPath();
        if (model.empty()) QSKIP("the default model is not installed (scripts/setup.sh fetches it)");
        auto tok = loadGgufTokenizer(model);
        QCOMPARE(tok->kind(), TokenizerKind::BytePairEncoding);
        QCOMPARE(tok->vocabSize(), 49152);
        QCOMPARE(tok->tokenText(tok->eos()), std::string("<|im_end|>"));
        expectGoldens(*tok, "smollm2_goldens.jsonl");
    }

    void smollm2TokenizerJsonMatchesHuggingFace() {
        auto tok = Tokenizer::fromPath(dataPath("smollm2/tokenizer.json"));
        QCOMPARE(tok->kind(), TokenizerKind::BytePairEncoding);
        QCOMPARE(tok->vocabSize(), 49152);
        QCOMPARE(tok->tokenText(tok->eos()), std::string("<|im_end|>")); // from tokenizer_config.json
        QCOMPARE(tok->tokenText(tok->bos()), std::string("<|im_start|>"));
        expectGoldens(*tok, "smollm2_goldens.jsonl");
        // The folder form finds the same file.
        auto viaFolder = Tokenizer::fromPath(dataPath("smollm2"));
        QCOMPARE(viaFolder->encode("Hello <|im_end|> 123", false, true), tok->encode("Hello <|im_end|> 123", false, true));
    }

    void llama2ModelMatchesSentencePiece() {
        const std::string model = llama2ModelPath();
        if (model.empty()) QSKIP("PARLEY_SHARED_DATA has no llama2-tokenizer.model");
        auto tok = Tokenizer::fromPath(model);
        QCOMPARE(tok->kind(), TokenizerKind::SentencePiece);
        QCOMPARE(tok->vocabSize(), 32000);
        QCOMPARE(tok->bos(), 1);
        QCOMPARE(tok->eos(), 2);
        QVERIFY(tok->addsBosByDefault());
        QVERIFY(tok->stripsLeadingSpace());
        expectGoldens(*tok, "llama2_goldens.jsonl");
    }

    void llama2GgufMatchesSentencePiece() {
        if (!llama2GgufSkip_.isEmpty()) QSKIP(qPrintable(llama2GgufSkip_));
        auto tok = loadGgufTokenizer(llama2GgufPath_);
        QCOMPARE(tok->kind(), TokenizerKind::SentencePiece);
        QCOMPARE(tok->vocabSize(), 32000);
        QCOMPARE(tok->bos(), 1);
        QCOMPARE(tok->eos(), 2);
        QVERIFY(tok->addsBosByDefault());
        QVERIFY(tok->stripsLeadingSpace());
        expectGoldens(*tok, "llama2_goldens.jsonl");
        // Same pieces, types and bytes as the .model file.
        const Tokenizer& fromModel = llama2();
        for (int32_t id = 0; id < 32000; ++id) {
            QCOMPARE(tok->tokenText(id), fromModel.tokenText(id));
            QCOMPARE(tok->tokenBytes(id), fromModel.tokenBytes(id));
            QCOMPARE(tok->isControl(id), fromModel.isControl(id));
        }
    }

    void tokenizerJsonVariantsMatchHuggingFace() {
        // The SmolLM2 vocabulary under the Llama-3 (with ignore_merges) and Qwen2 pre-tokenizers,
        // and with added tokens that strip white space, in the tokenizer.json form Hugging Face
        // writes for them.
        json base = json::parse(readFileText(dataPath("smollm2/tokenizer.json")));
        const json variants = json::parse(readFileText(dataPath("bpe_variants.json")));
        const std::vector<json> goldens = readJsonLines(dataPath("bpe_variants_goldens.jsonl"));
        QVERIFY(goldens.size() >= 200);
        for (const char* name : {"llama3", "qwen2", "strip"}) {
            json variant = base;
            variant["pre_tokenizer"] = variants[name]["pre_tokenizer"];
            variant["model"]["ignore_merges"] = variants[name]["ignore_merges"];
            variant["added_tokens"] = variants[name]["added_tokens"];
            const std::string path = makeTempDir() + "/tokenizer.json";
            const std::string text = variant.dump();
            writeFileBytes(path, std::vector<uint8_t>(text.begin(), text.end()));
            auto tok = Tokenizer::fromPath(path);
            const auto* bpe = dynamic_cast<const BpeTokenizer*>(tok.get());
            QVERIFY(bpe);
            QCOMPARE(std::string(preTokenizerName(bpe->preTokenizer())), std::string(name == std::string("strip") ? "smollm" : name));
            for (const json& g : goldens) {
                const std::string line = g["text"];
                const std::vector<int32_t> ids = tok->encode(line, false, true);
                QVERIFY2(ids == idsOf(g[name]), qPrintable(QString(name) + " " + describe(line, ids, idsOf(g[name]))));
            }
        }
    }

    void preTokenizersMatchHuggingFace() {
        const std::pair<const char*, PreTokenizer> kinds[] = {
            {"gpt2", PreTokenizer::Gpt2}, {"llama3", PreTokenizer::Llama3}, {"qwen2", PreTokenizer::Qwen2},
            {"smollm", PreTokenizer::SmolLM}};
        for (const json& line : readJsonLines(dataPath("pretokenizer_goldens.jsonl"))) {
            const std::string text = line["text"];
            for (const auto& [name, kind] : kinds) {
                std::vector<std::string> got;
                for (std::string_view piece : preTokenize(kind, text)) got.emplace_back(piece);
                const auto want = line[name].get<std::vector<std::string>>();
                QVERIFY2(got == want, qPrintable(QString("%1 on %2: got %3, want %4")
                                                     .arg(name, QString::fromStdString(json(text).dump()),
                                                          QString::fromStdString(json(got).dump()),
                                                          QString::fromStdString(json(want).dump()))));
            }
        }
    }

    // ---- decoding -------------------------------------------------------------------------

    void roundTripsGiveTheTextBack() {
        // decode(encode(s)) == s wherever the vocabulary can spell s (the goldens' "decoded"
        // differs from the text only where the reference tokenizer also loses something).
        std::vector<const Tokenizer*> toks{&smolJson()};
        if (!llama2ModelPath().empty()) toks.push_back(&llama2());
        for (const auto& tok : toks) {
            const char* goldens = tok->kind() == TokenizerKind::SentencePiece ? "llama2_goldens.jsonl" : "smollm2_goldens.jsonl";
            int exact = 0, total = 0;
            for (const json& g : readJsonLines(dataPath(goldens))) {
                const std::string text = g["text"];
                ++total;
                if (decodeTokens(*tok, tok->encode(text, false, false)) == text) ++exact;
            }
            QVERIFY2(total - exact <= 2, qPrintable(QString("%1 of %2 lines do not round-trip").arg(total - exact).arg(total)));
        }
    }

    void streamingPiecesAreWholeCharacters() {
        expectStreamingWhole(smolJson());
        if (llama2ModelPath().empty()) QSKIP("PARLEY_SHARED_DATA has no llama2-tokenizer.model");
        expectStreamingWhole(llama2());
    }

    void streamingHoldsBackPartialCharactersBpe() {
        const Tokenizer* tok = &smolJson();
        // "é中😀" fed as single-byte symbol tokens: output appears only when a character is whole.
        const std::string text = "\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
        std::vector<int32_t> byteIds;
        for (unsigned char c : text) {
            std::vector<int32_t> one;
            std::string symbol;
            int extra = 0;
            for (int b = 0; b < 256; ++b) {
                const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
                if (b == c) unicode::appendUtf8(symbol, printable ? char32_t(b) : char32_t(256 + extra));
                if (!printable) ++extra;
            }
            auto id = tok->findToken(symbol);
            QVERIFY(id.has_value());
            QCOMPARE(tok->tokenBytes(*id), std::string(1, char(c)));
            byteIds.push_back(*id);
        }
        StreamingDetokenizer stream(*tok);
        const std::vector<std::string> want = {"", "\xC3\xA9", "", "", "\xE4\xB8\xAD", "", "", "", "\xF0\x9F\x98\x80"};
        for (size_t i = 0; i < byteIds.size(); ++i) QCOMPARE(stream.push(byteIds[i]), want[i]);
        QCOMPARE(stream.flush(), std::string());
        // A character cut off at the end becomes U+FFFD, never half a character.
        StreamingDetokenizer cut(*tok);
        QCOMPARE(cut.push(byteIds[2]), std::string());
        QCOMPARE(cut.push(byteIds[3]), std::string());
        QCOMPARE(cut.flush(), std::string(unicode::kReplacementCharacter));
        // A byte that cannot continue the pending one: U+FFFD for the broken start, then the rest.
        StreamingDetokenizer broken(*tok);
        QCOMPARE(broken.push(byteIds[2]), std::string());
        QCOMPARE(broken.push(*tok->findToken("a")), std::string(unicode::kReplacementCharacter) + "a");
    }

    void streamingByteFallbackAndLeadingSpaceSpm() {
        const std::string model = llama2ModelPath();
        if (model.empty()) QSKIP("PARLEY_SHARED_DATA has no llama2-tokenizer.model");
        const Tokenizer* tok = &llama2();
        // An emoji is not a piece of LLaMA-2's vocabulary: it is spelled with byte-fallback pieces.
        const std::vector<int32_t> ids = tok->encode("\xF0\x9F\x98\x80", false, false);
        // ▁ then four byte pieces <0xF0><0x9F><0x98><0x80>.
        QCOMPARE(int(ids.size()), 5);
        QCOMPARE(tok->tokenText(ids[1]), std::string("<0xF0>"));
        StreamingDetokenizer stream(*tok);
        QCOMPARE(stream.push(ids[0]), std::string()); // the dummy-prefix space is dropped at text start
        QCOMPARE(stream.push(ids[1]), std::string());
        QCOMPARE(stream.push(ids[2]), std::string());
        QCOMPARE(stream.push(ids[3]), std::string());
        QCOMPARE(stream.push(ids[4]), std::string("\xF0\x9F\x98\x80"));
        // The leading space is dropped only at the start of a text, and BOS does not count.
        const std::vector<int32_t> hello = tok->encode("Hello world", true, false);
        QCOMPARE(hello.front(), tok->bos());
        QCOMPARE(decodeTokens(*tok, hello), std::string("Hello world"));
        StreamingDetokenizer midText(*tok, /*atTextStart=*/false);
        QCOMPARE(midText.push(hello[1]), std::string(" Hello"));
        QCOMPARE(decodeTokens(*tok, {hello[1], hello[2]}, false), std::string(" Hello world"));
        // Control tokens give no text.
        QCOMPARE(tok->tokenBytes(tok->eos()), std::string());
        QVERIFY(tok->isControl(tok->eos()));
    }

    void randomBytesNeverBreakTheTokenizers() {
        // Arbitrary bytes (mostly invalid UTF-8): encoding never fails, and decoding always gives
        // valid UTF-8; byte-level BPE gives back every byte its vocabulary can spell.
        std::vector<const Tokenizer*> toks{&smolJson()};
        if (!llama2ModelPath().empty()) toks.push_back(&llama2());
        uint64_t state = 0x9E3779B97F4A7C15ull;
        auto next = [&] {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            return state;
        };
        for (int round = 0; round < 300; ++round) {
            std::string text(next() % 64, '\0');
            for (char& c : text) c = static_cast<char>(next() & 0xFF);
            for (const auto& tok : toks) {
                const std::vector<int32_t> ids = tok->encode(text, round % 2 == 0, round % 3 == 0);
                for (int32_t id : ids) QVERIFY(id >= 0 && id < tok->vocabSize());
                const std::string decoded = decodeTokens(*tok, ids);
                QVERIFY(isValidUtf8(decoded));
            }
        }
    }

    void huggingFaceFolderWithTokenizerModel() {
        const std::string model = llama2ModelPath();
        if (model.empty()) QSKIP("PARLEY_SHARED_DATA has no llama2-tokenizer.model");
        // A Hugging Face folder holding both files: the SentencePiece model is the one used.
        const std::string dir = makeTempDir();
        writeFileBytes(dir + "/tokenizer.model", readFileBytes(model));
        writeFileBytes(dir + "/tokenizer.json", readFileBytes(dataPath("smollm2/tokenizer.json")));
        auto tok = Tokenizer::fromPath(dir);
        QCOMPARE(tok->kind(), TokenizerKind::SentencePiece);
        QCOMPARE(tok->encode("Hello world", true, false), (std::vector<int32_t>{1, 15043, 3186}));
        expectRejectedFile(makeTempDir(), "no tokenizer.model or tokenizer.json");
    }

    // ---- special tokens ---------------------------------------------------------------------

    void specialTokensOnlyWithParseSpecial() {
        const Tokenizer* tok = &smolJson();
        const int32_t start = *tok->findToken("<|im_start|>"), end = *tok->findToken("<|im_end|>");
        const std::string chat = "<|im_start|>user\nHi<|im_end|>\n";
        const std::vector<int32_t> parsed = tok->encode(chat, false, true);
        QCOMPARE(parsed.front(), start);
        QVERIFY(std::find(parsed.begin(), parsed.end(), end) != parsed.end());
        const std::vector<int32_t> literal = tok->encode(chat, false, false);
        QVERIFY(std::find(literal.begin(), literal.end(), start) == literal.end());
        QVERIFY(std::find(literal.begin(), literal.end(), end) == literal.end());
        QCOMPARE(decodeTokens(*tok, literal), chat);       // the text survives as text
        QCOMPARE(decodeTokens(*tok, parsed), std::string("user\nHi\n")); // control tokens print nothing
        QVERIFY(tok->isControl(start));
        QCOMPARE(tok->tokenText(start), std::string("<|im_start|>"));
        // SmolLM2 names a BOS (<|im_start|>) but does not want it before a text.
        QVERIFY(!tok->addsBosByDefault());
        QCOMPARE(tok->encode("Hi", true, false).front(), tok->bos());

        const std::string model = llama2ModelPath();
        if (model.empty()) QSKIP("PARLEY_SHARED_DATA has no llama2-tokenizer.model");
        const Tokenizer* spm = &llama2();
        const std::vector<int32_t> inst = spm->encode("<s>[INST] Hi [/INST] Hello</s>", false, true);
        QCOMPARE(inst.front(), 1);
        QCOMPARE(inst.back(), 2);
        const std::vector<int32_t> plain = spm->encode("<s>[INST] Hi [/INST] Hello</s>", false, false);
        QVERIFY(std::find(plain.begin(), plain.end(), 1) == plain.end());
        QVERIFY(std::find(plain.begin(), plain.end(), 2) == plain.end());
    }

    // ---- hostile and broken vocabularies ----------------------------------------------------

    void smallHandWrittenVocabulariesWork() {
        auto bpe = loadGgufTokenizer(writeTemp(BpeVocab().gguf(), "bpe.gguf"));
        const std::vector<int32_t> ids = bpe->encode("hello", false, false);
        QCOMPARE(int(ids.size()), 1);
        QCOMPARE(bpe->tokenText(ids[0]), std::string("hello"));
        QCOMPARE(decodeTokens(*bpe, bpe->encode("hello hell\xF0\x9F\x98\x80", false, false)), std::string("hello hell\xF0\x9F\x98\x80"));
        auto spm = loadGgufTokenizer(writeTemp(SpmVocab().gguf(), "spm.gguf"));
        const std::vector<int32_t> spmIds = spm->encode("hello", false, false);
        QCOMPARE(int(spmIds.size()), 1);
        QCOMPARE(spm->tokenText(spmIds[0]), std::string("\xE2\x96\x81hello"));
        QCOMPARE(decodeTokens(*spm, spm->encode("hello zz", true, false)), std::string("hello zz"));
    }

    void hostileBpeVocabulariesAreRejected() {
        { BpeVocab v; v.bos = 100000; expectRejectedGguf(v.gguf(), "out of range"); }
        { BpeVocab v; v.merges.push_back("q zz"); expectRejectedGguf(v.gguf(), "not in the vocabulary"); }
        { BpeVocab v; v.merges.push_back("e l"); expectRejectedGguf(v.gguf(), "not in the vocabulary"); }
        { BpeVocab v; v.merges.push_back("nospace"); expectRejectedGguf(v.gguf(), "not two tokens"); }
        { BpeVocab v; v.merges.clear(); expectRejectedGguf(v.gguf(), "merges"); }
        { BpeVocab v; v.types.pop_back(); expectRejectedGguf(v.gguf(), "token_type"); }
        { BpeVocab v; v.types[5] = 99; expectRejectedGguf(v.gguf(), "unknown type"); }
        { BpeVocab v; v.tokens[3] = std::string(100000, 'x'); expectRejectedGguf(v.gguf(), "bytes long"); }
        { BpeVocab v; v.tokens[3] = ""; expectRejectedGguf(v.gguf(), "empty"); }
        { BpeVocab v; v.pre = "no-such-pre"; expectRejectedGguf(v.gguf(), "pre-tokenizer"); }
        {
            GgufBytes g;
            g.kvStr("general.architecture", "llama");
            g.kvStr("tokenizer.ggml.model", "bert");
            expectRejectedGguf(g.file(), "unsupported tokenizer");
        }
        {
            GgufBytes g;
            g.kvStr("general.architecture", "llama");
            expectRejectedGguf(g.file(), "no tokenizer");
        }
        // Out-of-range ids given to a loaded tokenizer.
        auto bpe = loadGgufTokenizer(writeTemp(BpeVocab().gguf(), "bpe.gguf"));
        QVERIFY_THROWS_EXCEPTION(Error, bpe->tokenBytes(-1));
        QVERIFY_THROWS_EXCEPTION(Error, bpe->tokenText(bpe->vocabSize()));
        StreamingDetokenizer stream(*bpe);
        QVERIFY_THROWS_EXCEPTION(Error, stream.push(1 << 30));
    }

    void hostileSpmVocabulariesAreRejected() {
        { SpmVocab v; v.scores.pop_back(); expectRejectedGguf(v.gguf(), "scores"); }
        { SpmVocab v; v.types.pop_back(); expectRejectedGguf(v.gguf(), "token_type"); }
        { SpmVocab v; v.tokens[263] = v.tokens[264]; expectRejectedGguf(v.gguf(), "repeats"); }
        { SpmVocab v; v.types[0] = 1; expectRejectedGguf(v.gguf(), "unknown token"); }
        { SpmVocab v; v.eos = 70000; expectRejectedGguf(v.gguf(), "out of range"); }
        { SpmVocab v; v.tokens[265] = std::string(200000, 'y'); expectRejectedGguf(v.gguf(), "bytes long"); }
        { SpmVocab v; v.scores[265] = std::numeric_limits<float>::quiet_NaN(); expectRejectedGguf(v.gguf(), "score"); }
        { SpmVocab v; v.types[265] = -4; expectRejectedGguf(v.gguf(), "unknown type"); }
    }

    void brokenTokenizerFilesAreRejected() {
        const std::string dir = makeTempDir();
        auto write = [&](const std::string& name, const std::string& text) {
            writeFileBytes(dir + "/" + name, std::vector<uint8_t>(text.begin(), text.end()));
            return dir + "/" + name;
        };
        expectRejectedFile(write("a.json", "{\"model\": {\"type\": \"BPE\""), "not valid JSON");
        expectRejectedFile(write("b.json", "[1, 2, 3]"), "model");
        expectRejectedFile(write("c.json", "{\"model\": {\"type\": \"Unigram\", \"vocab\": []}}"), "Unigram");
        expectRejectedFile(write("d.json", R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
            "pre_tokenizer": {"type": "Whitespace"}})"), "pre_tokenizer");
        expectRejectedFile(write("e.json", R"({"model": {"type": "BPE", "vocab": {"a": 5}, "merges": ["a a"]},
            "pre_tokenizer": {"type": "ByteLevel"}})"), "out of range");
        expectRejectedFile(write("f.json", R"({"model": {"type": "BPE", "vocab": {"a": 0, "b": "x"}, "merges": ["a a"]},
            "pre_tokenizer": {"type": "ByteLevel"}})"), "id");
        expectRejectedFile(write("g.json", R"({"normalizer": {"type": "NFKC"}, "model": {"type": "BPE", "vocab": {"a": 0},
            "merges": ["a a"]}, "pre_tokenizer": {"type": "ByteLevel"}})"), "normalizer");
        expectRejectedFile(write("tokenizer.model", "this is not a protobuf \xFF\xFF\xFF\xFF\xFF"), "SentencePiece");
        expectRejectedFile(write("empty.model", ""), "empty");
        expectRejectedFile(dir + "/missing.model", "no such file");
        // The real tokenizer.json cut short at many points: always a clean Error.
        const std::string real = readFileText(dataPath("smollm2/tokenizer.json"));
        for (size_t cut : {size_t(0), size_t(1), real.size() / 7, real.size() / 2, real.size() - 3})
            expectRejectedFile(write("cut.json", real.substr(0, cut)), "cut.json");
        // The real tokenizer.model cut short: an Error, never a crash.
        const std::string model = llama2ModelPath();
        if (model.empty()) QSKIP("PARLEY_SHARED_DATA has no llama2-tokenizer.model");
        const std::string bytes = readFileText(model);
        for (size_t cut : {size_t(10), bytes.size() / 3, bytes.size() - 1})
            expectRejectedFile(write("cut.model", bytes.substr(0, cut)), "cut.model");
    }
};

QTEST_GUILESS_MAIN(TestTokenizer)
#include "test_tokenizer.moc"
