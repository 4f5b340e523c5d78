// Safetensors reader: a hand-built file read back exactly, real shards of a generated Hugging Face
// model, and hostile files — forged header sizes, broken JSON, bad dtypes, shapes and offsets,
// overlaps, holes, truncation at every few bytes and flipped bytes — each giving one Error that
// names the file, never a crash (this test also runs under ASan + UBSan).
#include "engine/error.h"
#include "engine/safetensors.h"
#include "support.h"

#include <QTest>
#include <cstring>
#include <filesystem>
#include <random>

using namespace parley;
using namespace parley::test;

namespace {

// A .safetensors file from a header text and data bytes.
std::vector<uint8_t> fileBytes(const std::string& header, const std::vector<uint8_t>& data, uint64_t forgedSize = 0) {
    std::vector<uint8_t> b(8);
    uint64_t n = forgedSize ? forgedSize : header.size();
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(n >> (8 * i));
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

std::string writeTemp(const std::vector<uint8_t>& bytes) {
    std::string p = makeTempDir() + "/model.safetensors";
    writeFileBytes(p, bytes);
    return p;
}

// Opening must throw parley::Error naming the file (and containing `expect` when given).
void expectRejected(const std::vector<uint8_t>& bytes, const std::string& expect = {}) {
    std::string p = writeTemp(bytes);
    try {
        SafetensorsFile f(p);
        QFAIL("a bad file was accepted");
    } catch (const Error& e) {
        std::string what = e.what();
        QVERIFY2(what.find(p) != std::string::npos, e.what());
        QVERIFY2(expect.empty() || what.find(expect) != std::string::npos, e.what());
    }
}

// Three tensors: F32 [2, 3], F16 [4], BF16 [3, 2], and an I64 [2].
struct Valid {
    std::string header;
    std::vector<uint8_t> data;
    Valid() {
        header = R"({"__metadata__":{"format":"pt"},)"
                 R"("a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},)"
                 R"("b":{"dtype":"F16","shape":[4],"data_offsets":[24,32]},)"
                 R"("c":{"dtype":"BF16","shape":[3,2],"data_offsets":[32,44]},)"
                 R"("ids":{"dtype":"I64","shape":[2],"data_offsets":[44,60]}})";
        for (int i = 0; i < 6; ++i) {
            float v = 0.5f * i;
            uint8_t raw[4];
            std::memcpy(raw, &v, 4);
            data.insert(data.end(), raw, raw + 4);
        }
        for (uint16_t h : {0x3C00, 0x4000, 0xC000, 0x0000}) { // 1, 2, -2, 0
            data.push_back(uint8_t(h));
            data.push_back(uint8_t(h >> 8));
        }
        for (int i = 0; i < 6; ++i) {
            data.push_back(0x80); // bfloat16 0x3F80 = 1.0
            data.push_back(0x3F);
        }
        data.resize(data.size() + 16, 7);
    }
};

} // namespace

class TestSafetensors : public QObject {
    Q_OBJECT
private slots:
    void readsHandBuiltFile() {
        Valid v;
        std::string p = writeTemp(fileBytes(v.header, v.data));
        SafetensorsFile f(p);
        QCOMPARE(f.tensors().size(), size_t(3));
        const TensorView* a = f.tensor("a");
        QVERIFY(a);
        QCOMPARE(a->type, DType::F32);
        QCOMPARE(a->dims, (std::vector<int64_t>{3, 2})); // reversed: contiguous dimension first
        QCOMPARE(a->sizeBytes, uint64_t(24));
        float x;
        std::memcpy(&x, a->data + 4 * 5, 4);
        QCOMPARE(x, 2.5f);
        QCOMPARE(f.tensor("b")->type, DType::F16);
        QCOMPARE(f.tensor("b")->dims, (std::vector<int64_t>{4}));
        const TensorView* c = f.tensor("c");
        QCOMPARE(c->type, DType::BF16);
        QCOMPARE(c->dims, (std::vector<int64_t>{2, 3}));
        QCOMPARE(c->data[1], uint8_t(0x3F));
        QVERIFY(!f.tensor("ids"));
        QCOMPARE(f.otherTensors().at("ids"), std::string("I64"));
        QCOMPARE(f.metadata().at("format"), std::string("pt"));
    }

    void readsGeneratedShards() {
        std::string folder = envPath("PARLEY_TEST_MODELS", "hf-llama");
        size_t total = 0;
        for (int i = 1; i <= 3; ++i) {
            char name[64];
            std::snprintf(name, sizeof name, "/model-%05d-of-00003.safetensors", i);
            SafetensorsFile f(folder + name);
            total += f.tensors().size();
            for (const TensorView& t : f.tensors()) QCOMPARE(t.sizeBytes, uint64_t(t.elementCount() * (t.type == DType::F32 ? 4 : 2)));
        }
        QCOMPARE(total, size_t(2 * 9 + 3)); // 2 layers of 9 tensors, embedding, final norm, lm_head
    }

    void rejectsForgedHeaders_data() {
        QTest::addColumn<QString>("header");
        QTest::addColumn<QString>("expect");
        const char* t = R"("t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
        QTest::newRow("not JSON") << "{this is not json}" << "not valid JSON";
        QTest::newRow("array") << "[1,2,3]" << "not a JSON object";
        QTest::newRow("truncated JSON") << R"({"t":{"dtype":"F32")" << "not valid JSON";
        QTest::newRow("deep nesting") << QString("{\"a\":") + QString("[").repeated(5000) + QString("]").repeated(5000) + "}"
                                      << "nested too deeply";
        QTest::newRow("no dtype") << R"({"t":{"shape":[2],"data_offsets":[0,8]}})" << "no dtype";
        QTest::newRow("unknown dtype") << R"({"t":{"dtype":"F128","shape":[2],"data_offsets":[0,8]}})" << "not a safetensors dtype";
        QTest::newRow("dtype number") << R"({"t":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})" << "no dtype";
        QTest::newRow("negative dim") << R"({"t":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})" << "non-negative";
        QTest::newRow("float dim") << R"({"t":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})" << "non-negative";
        QTest::newRow("huge dims") << R"({"t":{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}})"
                                   << "impossibly large";
        QTest::newRow("dim too big") << R"({"t":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})"
                                     << "dimension";
        QTest::newRow("offsets past end") << R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,4096]}})" << "outside the file";
        QTest::newRow("offsets reversed") << R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})" << "outside the file";
        QTest::newRow("offsets huge") << R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[18446744073709551608,18446744073709551615]}})"
                                      << "outside the file";
        QTest::newRow("size mismatch") << R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})" << "need 12";
        QTest::newRow("one offset") << R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0]}})" << "data_offsets";
        QTest::newRow("overlap") << QString("{") + t + R"(,"u":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})" << "overlaps";
        QTest::newRow("hole") << R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})" << "hole";
        QTest::newRow("unindexed tail") << R"({"t":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})" << "describes 4 bytes";
        QTest::newRow("metadata not strings") << QString(R"({"__metadata__":{"a":1},)") + t + "}" << "__metadata__";
        QTest::newRow("tensor not object") << R"({"t":[1,2]})" << "not described";
        QTest::newRow("too many dims") << R"({"t":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})" << "dimensions";
    }
    void rejectsForgedHeaders() {
        QFETCH(QString, header);
        QFETCH(QString, expect);
        expectRejected(fileBytes(header.toStdString(), std::vector<uint8_t>(8, 0)), expect.toStdString());
    }

    void rejectsForgedHeaderSizes() {
        Valid v;
        expectRejected({1, 2, 3}, "shorter than");
        expectRejected(fileBytes(v.header, v.data, uint64_t(1) << 62), "larger than the format allows");
        expectRejected(fileBytes(v.header, v.data, 99'000'000), "runs past the end");
        expectRejected(fileBytes(v.header, v.data, v.header.size() + v.data.size() + 1), "runs past the end");
        expectRejected(fileBytes(v.header, v.data, 1), "not a JSON object");
        expectRejected(fileBytes(v.header, v.data, v.header.size() - 1), "not valid JSON");
    }

    void rejectsEveryTruncation() {
        // The data must be indexed entirely, so every shorter file is an error.
        std::string shard = envPath("PARLEY_TEST_MODELS", "hf-llama/model-00002-of-00003.safetensors");
        std::vector<uint8_t> bytes = readFileBytes(shard);
        QVERIFY(bytes.size() > 1000);
        int checked = 0;
        for (size_t cut = 0; cut < bytes.size(); cut += (cut < 2048 ? 7 : 997)) {
            expectRejected(std::vector<uint8_t>(bytes.begin(), bytes.begin() + cut));
            ++checked;
        }
        QVERIFY(checked > 300);
    }

    void survivesFlippedBytes() {
        // A flipped byte in the header gives an Error or (where the flip keeps it consistent, as
        // in a tensor name) a file that still reads; never a crash.
        std::string shard = envPath("PARLEY_TEST_MODELS", "hf-llama/model-00001-of-00003.safetensors");
        std::vector<uint8_t> bytes = readFileBytes(shard);
        uint64_t headerBytes = 0;
        for (int i = 7; i >= 0; --i) headerBytes = (headerBytes << 8) | bytes[i];
        std::mt19937 rng(42);
        int rejected = 0;
        for (int k = 0; k < 400; ++k) {
            std::vector<uint8_t> b = bytes;
            size_t at = rng() % (8 + headerBytes);
            b[at] ^= uint8_t(1 + rng() % 255);
            std::string p = writeTemp(b);
            try {
                SafetensorsFile f(p);
                for (const TensorView& t : f.tensors()) QVERIFY(t.data + t.sizeBytes <= f.mapping()->data() + b.size());
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(p) != std::string::npos, e.what());
                ++rejected;
            }
        }
        QVERIFY(rejected > 100);
    }
};

QTEST_GUILESS_MAIN(TestSafetensors)
#include "test_safetensors.moc"
