// GGUF reader: real metadata of the default model, and hostile files — truncated at many
// points, bytes flipped, counts, lengths, offsets and types forged — each giving one Error that
// names the file, never a crash, a hang or a huge allocation (this test also runs under ASan).
#include "engine/error.h"
#include "engine/gguf.h"
#include "gguf_bytes.h"
#include "support.h"

#include <QTest>
#include <cstring>

using namespace parley;
using namespace parley::test;

namespace {


// A small valid file: two metadata keys, one F32 tensor of 8 values.
GgufBytes smallValidFile(uint32_t version = 3) {
    GgufBytes g;
    g.header(version, 1, 2);
    g.kvStr("general.architecture", "llama");
    g.kvU32("llama.block_count", 2);
    g.tensorInfo("w", {8}, 0, 0);
    g.alignTo(32);
    for (int i = 0; i < 8; ++i) g.put<float>(float(i) + 0.5f);
    return g;
}

std::string writeTemp(const std::vector<uint8_t>& bytes, const std::string& name = "f.gguf") {
    std::string p = makeTempDir() + "/" + name;
    writeFileBytes(p, bytes);
    return p;
}

// Opening must throw parley::Error whose message names the file; anything else fails the test.
void expectRejected(const std::vector<uint8_t>& bytes, const char* what) {
    std::string p = writeTemp(bytes);
    try {
        GgufFile f(p);
        QFAIL(qPrintable(QString("accepted a bad file: ") + what));
    } catch (const Error& e) {
        QVERIFY2(std::string(e.what()).find(p) != std::string::npos, e.what());
    }
}

} // namespace

class TestGguf : public QObject {
    Q_OBJECT
private slots:
    void readsSmallFile() {
        GgufBytes g = smallValidFile();
        GgufFile f(writeTemp(g.b));
        QCOMPARE(f.version(), 3u);
        QCOMPARE(f.getString("general.architecture"), std::string("llama"));
        QCOMPARE(f.getInt("llama.block_count", 0), int64_t(2));
        QCOMPARE(f.getInt("missing", 7), int64_t(7));
        QVERIFY_THROWS_EXCEPTION(Error, f.getInt("general.architecture", 0));
        const TensorView* t = f.tensor("w");
        QVERIFY(t);
        QCOMPARE(t->type, DType::F32);
        QCOMPARE(t->sizeBytes, uint64_t(32));
        float v;
        std::memcpy(&v, t->data + 4 * 7, 4);
        QCOMPARE(v, 7.5f);
    }

    // Version 2 has the same layout as 3 (64-bit counts and lengths; 3 added big-endian files).
    void readsVersion2() {
        GgufFile f(writeTemp(smallValidFile(2).b));
        QCOMPARE(f.version(), 2u);
        QCOMPARE(f.getString("general.architecture"), std::string("llama"));
        QCOMPARE(f.tensor("w")->sizeBytes, uint64_t(32));
    }

    void readsDefaultModelMetadata() {
        std::string p = defaultModelPath();
        if (p.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        GgufFile f(p);
        QCOMPARE(f.version(), 3u);
        QCOMPARE(f.getString("general.architecture"), std::string("llama"));
        QCOMPARE(f.getInt("llama.block_count", 0), int64_t(30));
        QCOMPARE(f.getInt("llama.embedding_length", 0), int64_t(576));
        QCOMPARE(f.getString("tokenizer.ggml.model"), std::string("gpt2"));
        QCOMPARE(f.getArray("tokenizer.ggml.tokens", GgufValueType::String).size(), size_t(49152));
        QCOMPARE(f.tensors().size(), size_t(272));
        const TensorView* emb = f.tensor("token_embd.weight");
        QVERIFY(emb);
        QCOMPARE(emb->type, DType::Q8_0);
        QCOMPARE(emb->dims, (std::vector<int64_t>{576, 49152}));
        QCOMPARE(f.tensor("blk.0.ffn_down.weight")->type, DType::Q4_1);
    }

    void rejectsForgedHeaders_data() {
        QTest::addColumn<int>("which");
        for (int i = 0; i < 14; ++i) QTest::newRow(qPrintable(QString::number(i))) << i;
    }
    void rejectsForgedHeaders() {
        QFETCH(int, which);
        GgufBytes g;
        switch (which) {
        case 0: g.put<uint32_t>(0x12345678); break;                          // no magic
        case 1: g.header(1, 0, 0); break;                                    // version 1
        case 2: g.header(4, 0, 0); break;                                    // version 4
        case 3: g.header(3, 0, uint64_t(1) << 62); break;                     // absurd kv count
        case 4: g.header(3, uint64_t(1) << 62, 0); break;                     // absurd tensor count
        case 5: g.header(3, 0, 1); g.put<uint64_t>(uint64_t(1) << 60); break; // key longer than file
        case 6: g.header(3, 0, 1); g.str("k"); g.put<uint32_t>(99); g.put<uint32_t>(0); break; // bad value type
        case 7: // array claiming 2^61 elements
            g.header(3, 0, 1); g.str("k"); g.put<uint32_t>(9); g.put<uint32_t>(4); g.put<uint64_t>(uint64_t(1) << 61);
            break;
        case 8: // tensor with offset past the end
            g.header(3, 1, 0); g.tensorInfo("w", {8}, 0, 1u << 20); g.alignTo(32); g.b.resize(g.b.size() + 32);
            break;
        case 9: // tensor with a type Parley does not read (IQ2_XS)
            g.header(3, 1, 0); g.tensorInfo("w", {256}, 17, 0); g.alignTo(32); g.b.resize(g.b.size() + 1024);
            break;
        case 10: // dims whose product overflows
            g.header(3, 1, 0); g.tensorInfo("w", {uint64_t(1) << 40, uint64_t(1) << 40}, 0, 0); g.alignTo(32);
            break;
        case 11: // Q4_0 row not a multiple of 32
            g.header(3, 1, 0); g.tensorInfo("w", {33}, 2, 0); g.alignTo(32); g.b.resize(g.b.size() + 64);
            break;
        case 12: // 5 dimensions
            g.header(3, 1, 0); g.tensorInfo("w", {1, 1, 1, 1, 1}, 0, 0); g.alignTo(32); g.b.resize(g.b.size() + 64);
            break;
        case 13: // alignment that is not a power of two
            g.header(3, 1, 1); g.kvU32("general.alignment", 24); g.tensorInfo("w", {8}, 0, 0); g.alignTo(32);
            g.b.resize(g.b.size() + 64);
            break;
        }
        expectRejected(g.b, "forged header");
    }

    // Every prefix of a small valid file but the whole one is rejected.
    void rejectsEveryTruncationOfSmallFile() {
        GgufBytes g = smallValidFile();
        for (size_t n = 0; n < g.b.size(); ++n) {
            std::vector<uint8_t> cut(g.b.begin(), g.b.begin() + n);
            expectRejected(cut, "truncated");
        }
    }

    // The default model cut at many points, in the header (where the tokenizer arrays are) and
    // in the tensor data: each is an Error, never a crash.
    void rejectsTruncatedDefaultModel() {
        std::string p = defaultModelPath();
        if (p.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        std::vector<uint8_t> all = readFileBytes(p);
        std::vector<size_t> cuts;
        for (size_t n = 0; n < 4096; n += 97) cuts.push_back(n);
        for (size_t n = 4096; n < all.size(); n = n * 5 / 4) cuts.push_back(n);
        cuts.push_back(all.size() - 1);
        std::string path = makeTempDir() + "/cut.gguf";
        for (size_t n : cuts) {
            writeFileBytes(path, std::vector<uint8_t>(all.begin(), all.begin() + n));
            try {
                GgufFile f(path);
                QFAIL(qPrintable(QString("accepted the model cut at %1 bytes").arg(n)));
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
            }
        }
    }

    // Flipped bytes in the header either still parse (the flip hit a string's text) or give an
    // Error; under ASan this proves no read goes astray.
    void survivesFlippedHeaderBytes() {
        std::string p = defaultModelPath();
        if (p.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        std::vector<uint8_t> all = readFileBytes(p);
        all.resize(std::min<size_t>(all.size(), 4u << 20)); // header and the first tensors
        std::string path = makeTempDir() + "/flip.gguf";
        uint32_t state = 12345;
        int rejected = 0;
        for (int k = 0; k < 300; ++k) {
            std::vector<uint8_t> bad = all;
            state = state * 1664525u + 1013904223u;
            size_t at = k < 64 ? size_t(k) : state % 200000; // the fixed header, then the kv section
            bad[at] ^= uint8_t(1u << (state >> 29));
            writeFileBytes(path, bad);
            try {
                GgufFile f(path);
            } catch (const Error& e) {
                ++rejected;
                QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
            }
        }
        QVERIFY(rejected > 0);
    }
};

QTEST_GUILESS_MAIN(TestGguf)
#include "test_gguf.moc"
