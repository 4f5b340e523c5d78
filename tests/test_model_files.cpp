// Model::open on real files: the default model's hyperparameters, tensor types and weight
// formats; every tiny model (GGUF and Hugging Face folders) with its shape; and hostile input —
// forged hyperparameters and tensor shapes in GGUF metadata, broken config.json, index and shard
// files, unsupported architectures, truncation at many points and flipped bytes — each giving one
// Error that names the file, never a crash (this test also runs under ASan + UBSan).
#include "engine/error.h"
#include "engine/model.h"
#include "support.h"

#include <QTest>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>

using namespace parley;
using namespace parley::test;
namespace fs = std::filesystem;

namespace {

std::string tiny(const std::string& name) { return envPath("PARLEY_TEST_MODELS", name); }

// Model::open must throw parley::Error naming `nameInMessage` and containing `expect`.
void expectRejected(const std::string& path, const std::string& expect, const std::string& nameInMessage = {},
                    ModelOptions options = {}) {
    try {
        Model::open(path, options);
        QFAIL(qPrintable(QString::fromStdString("accepted " + path + " (expected: " + expect + ")")));
    } catch (const Error& e) {
        std::string what = e.what();
        const std::string& name = nameInMessage.empty() ? path : nameInMessage;
        QVERIFY2(what.find(name) != std::string::npos, e.what());
        QVERIFY2(what.find(expect) != std::string::npos, e.what());
        QVERIFY2(what.find('\n') == std::string::npos, e.what());
    }
}

// Finds a GGUF string (u64 length + bytes) and returns the offset just after it.
size_t afterGgufString(const std::vector<uint8_t>& b, const std::string& s) {
    std::vector<uint8_t> needle(8);
    uint64_t n = s.size();
    std::memcpy(needle.data(), &n, 8);
    needle.insert(needle.end(), s.begin(), s.end());
    auto it = std::search(b.begin(), b.end(), needle.begin(), needle.end());
    if (it == b.end()) throw std::runtime_error("no " + s + " in the file");
    return size_t(it - b.begin()) + needle.size();
}

// Sets a uint32 metadata value.
std::vector<uint8_t> withU32(std::vector<uint8_t> b, const std::string& key, uint32_t value) {
    size_t at = afterGgufString(b, key);
    uint32_t type;
    std::memcpy(&type, &b[at], 4);
    if (type != 4) throw std::runtime_error(key + " is not a uint32");
    std::memcpy(&b[at + 4], &value, 4);
    return b;
}

// Sets dimension `dim` of a tensor's info.
std::vector<uint8_t> withTensorDim(std::vector<uint8_t> b, const std::string& tensor, int dim, uint64_t value) {
    size_t at = afterGgufString(b, tensor) + 4 + 8 * dim;
    std::memcpy(&b[at], &value, 8);
    return b;
}

std::string writeTemp(const std::vector<uint8_t>& bytes, const std::string& name = "model.gguf") {
    std::string p = makeTempDir() + "/" + name;
    writeFileBytes(p, bytes);
    return p;
}

// A copy of a Hugging Face folder to forge files in.
std::string copyFolder(const std::string& from) {
    std::string to = makeTempDir() + "/model";
    fs::copy(from, to, fs::copy_options::recursive);
    return to;
}

void writeText(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
    size_t at = s.find(from);
    if (at == std::string::npos) throw std::runtime_error("no " + from);
    return s.replace(at, from.size(), to);
}

} // namespace

class TestModelFiles : public QObject {
    Q_OBJECT
private slots:
    void opensDefaultModel() {
        std::string p = defaultModelPath();
        if (p.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        auto m = Model::open(p);
        const ModelConfig& c = m->config();
        QCOMPARE(c.architecture, std::string("llama"));
        QCOMPARE(c.nLayer, 30);
        QCOMPARE(c.nEmbd, 576);
        QCOMPARE(c.nHead, 9);
        QCOMPARE(c.nHeadKv, 3);
        QCOMPARE(c.headDim, 64);
        QCOMPARE(c.nFf, 1536);
        QCOMPARE(c.vocabSize, 49152);
        QCOMPARE(c.contextLength, 8192);
        QCOMPARE(c.ropeTheta, 100000.0f);
        QVERIFY(c.tiedEmbeddings);
        QVERIFY(!c.ropeNeox);
        QVERIFY(!c.qkvBias);
        QCOMPARE(c.ropeScaling, RopeScalingType::None);

        const ModelInfo& info = m->info();
        QCOMPARE(info.format, std::string("gguf v3"));
        QCOMPARE(info.tensorTypes.at("Q4_1"), int64_t(30 * 7));
        QCOMPARE(info.tensorTypes.at("Q8_0"), int64_t(1));
        QCOMPARE(info.tensorTypes.at("F32"), int64_t(30 * 2 + 1));
        QCOMPARE(info.parameterCount, int64_t(134515008)); // SmolLM2-135M with tied embeddings
        QCOMPARE(info.tokenizerKind, std::string("bpe"));

        const ModelWeights& w = m->weights();
        QCOMPARE(w.layers.size(), size_t(30));
        QCOMPARE(w.tokenEmbedding.precision, Precision::INT8);
        QCOMPARE(w.layers[0].wq.precision, Precision::INT4);
        QCOMPARE(w.layers[29].wDown.cols, int64_t(1536));
        QCOMPARE(w.output.rows, int64_t(0));
        QCOMPARE(&w.outputProjection(), &w.tokenEmbedding);
        // INT4 g32 keeps 4 bits + FP16 scale and min per 32 weights: about 5 bits a weight.
        QVERIFY(w.sizeBytes() > 80'000'000 && w.sizeBytes() < 110'000'000);

        auto meta = Model::open(p, [] { ModelOptions o; o.metadataOnly = true; return o; }());
        QCOMPARE(meta->config().nLayer, 30);
        QCOMPARE(meta->weights().layers.size(), size_t(0));
        QCOMPARE(meta->info().parameterCount, info.parameterCount);

        ModelOptions fp16;
        fp16.precision = Precision::FP16;
        auto big = Model::open(p, fp16);
        QCOMPARE(big->weights().layers[0].wq.precision, Precision::FP16);
        QVERIFY(big->weights().sizeBytes() > 2 * w.sizeBytes());
    }

    void opensEveryTinyModel_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("arch");
        QTest::addColumn<int>("heads");
        QTest::addColumn<int>("kvHeads");
        QTest::addColumn<bool>("tied");
        QTest::addColumn<bool>("neox");
        QTest::addColumn<int>("scaling");
        QTest::addColumn<int>("layerPrecision");
        QTest::newRow("gqa f32") << "llama-gqa-f32.gguf" << "llama" << 4 << 2 << false << false << 0 << int(Precision::FP16);
        QTest::newRow("tied q8_0") << "llama-tied-q8_0.gguf" << "llama" << 8 << 8 << true << false << 0 << int(Precision::INT8);
        QTest::newRow("q4_0") << "llama-q4_0.gguf" << "llama" << 6 << 2 << false << false << 0 << int(Precision::INT4);
        QTest::newRow("q4_1 llama3") << "llama-q4_1-rope-llama3.gguf" << "llama" << 4 << 1 << false << false
                                     << int(RopeScalingType::Llama3) << int(Precision::INT4);
        QTest::newRow("f16 odd spm") << "llama-f16-odd-spm.gguf" << "llama" << 5 << 5 << false << false
                                     << int(RopeScalingType::Linear) << int(Precision::FP16);
        QTest::newRow("qwen2") << "qwen2-bias.gguf" << "qwen2" << 4 << 2 << false << true << 0 << int(Precision::FP16);
        QTest::newRow("hf llama") << "hf-llama" << "llama" << 4 << 2 << false << true << int(RopeScalingType::Llama3)
                                  << int(Precision::FP16);
        QTest::newRow("hf qwen2") << "hf-qwen2" << "qwen2" << 4 << 2 << true << true << 0 << int(Precision::FP16);
    }
    void opensEveryTinyModel() {
        QFETCH(QString, name);
        QFETCH(QString, arch);
        QFETCH(int, heads);
        QFETCH(int, kvHeads);
        QFETCH(bool, tied);
        QFETCH(bool, neox);
        QFETCH(int, scaling);
        QFETCH(int, layerPrecision);
        auto m = Model::open(tiny(name.toStdString()));
        const ModelConfig& c = m->config();
        QCOMPARE(QString::fromStdString(c.architecture), arch);
        QCOMPARE(c.nHead, heads);
        QCOMPARE(c.nHeadKv, kvHeads);
        QCOMPARE(c.tiedEmbeddings, tied);
        QCOMPARE(c.ropeNeox, neox);
        QCOMPARE(int(c.ropeScaling), scaling);
        QCOMPARE(c.qkvBias, arch == "qwen2");
        QCOMPARE(int(m->weights().layers[0].wq.precision), layerPrecision);
        QCOMPARE(m->weights().layers[0].bq.empty(), arch != "qwen2");
        QCOMPARE(m->weights().output.rows == 0, tied);
        QVERIFY(m->tokenizer().vocabSize() <= c.vocabSize);
        QCOMPARE(m->info().format, std::string(name.endsWith(".gguf") ? "gguf v3" : "safetensors"));
        // The rotary frequencies every backend uses: scaled ones are lower, never higher.
        std::vector<double> inv = ropeInverseFrequencies(c);
        QCOMPARE(int(inv.size()), c.headDim / 2);
        QCOMPARE(inv[0], c.ropeScaling == RopeScalingType::Linear ? 1.0 / c.ropeFactor : 1.0);
        if (c.ropeScaling == RopeScalingType::Llama3) QVERIFY(inv.back() < std::pow(double(c.ropeTheta), -2.0 * (c.headDim / 2 - 1) / c.headDim));
    }

    void opensHuggingFaceFolderThroughAFileInIt() {
        auto m = Model::open(tiny("hf-llama") + "/config.json");
        QCOMPARE(m->config().nLayer, 2);
        QCOMPARE(m->info().tensorTypes.at("BF16") + m->info().tensorTypes.at("F16") + m->info().tensorTypes.at("F32"),
                 int64_t(2 * 9 + 3));
        // The Hugging Face folder and its GGUF conversion hold the same numbers.
        auto g = Model::open(tiny("hf-llama.gguf"));
        QCOMPARE(m->info().parameterCount, g->info().parameterCount);
        std::vector<float> a(m->weights().layers[1].wDown.cols), b(a.size());
        m->weights().layers[1].wDown.dequantizeRow(5, a.data());
        g->weights().layers[1].wDown.dequantizeRow(5, b.data());
        QVERIFY(a == b);
    }

    void rejectsMissingAndForeignFiles() {
        std::string dir = makeTempDir();
        expectRejected(dir + "/nothing.gguf", "no such file");
        writeText(dir + "/notes.txt", "hello, this is not a model");
        expectRejected(dir + "/notes.txt", "neither a GGUF file nor");
        expectRejected(dir, "no config.json");
    }

    void rejectsForgedGgufHyperparameters_data() {
        QTest::addColumn<QString>("key");
        QTest::addColumn<uint>("value");
        QTest::addColumn<QString>("expect");
        QTest::newRow("heads not a multiple of kv heads") << "llama.attention.head_count_kv" << 3u << "cannot be shared evenly";
        QTest::newRow("kv heads above heads") << "llama.attention.head_count_kv" << 8u << "KV head count";
        QTest::newRow("width not divisible") << "llama.embedding_length" << 66u << "not a multiple of the head count";
        QTest::newRow("width changes the head size") << "llama.embedding_length" << 128u << "part of each head";
        QTest::newRow("zero layers") << "llama.block_count" << 0u << "layer count";
        QTest::newRow("fewer layers") << "llama.block_count" << 1u << "belongs to layer 1";
        QTest::newRow("more layers") << "llama.block_count" << 3u << "is missing";
        QTest::newRow("huge layers") << "llama.block_count" << 4000000000u << "out of range";
        QTest::newRow("wrong mlp") << "llama.feed_forward_length" << 100u << "has shape";
        QTest::newRow("zero context") << "llama.context_length" << 0u << "context length";
        QTest::newRow("vocab disagrees") << "llama.vocab_size" << 999u << "vocabulary size";
        QTest::newRow("partial rotary") << "llama.rope.dimension_count" << 8u << "part of each head";
        QTest::newRow("zero heads") << "llama.attention.head_count" << 0u << "head count";
    }
    void rejectsForgedGgufHyperparameters() {
        QFETCH(QString, key);
        QFETCH(uint, value);
        QFETCH(QString, expect);
        std::vector<uint8_t> b = withU32(readFileBytes(tiny("llama-gqa-f32.gguf")), key.toStdString(), value);
        std::string p = writeTemp(b);
        expectRejected(p, expect.toStdString());
        ModelOptions meta;
        meta.metadataOnly = true; // checked without loading weights too
        expectRejected(p, expect.toStdString(), {}, meta);
    }

    void rejectsForgedTensorShapes() {
        std::vector<uint8_t> orig = readFileBytes(tiny("llama-gqa-f32.gguf"));
        expectRejected(writeTemp(withTensorDim(orig, "blk.1.attn_k.weight", 1, 16)), "blk.1.attn_k.weight' has shape");
        expectRejected(writeTemp(withTensorDim(orig, "output_norm.weight", 0, 32)), "output_norm.weight' has shape");
        expectRejected(writeTemp(withTensorDim(orig, "token_embd.weight", 1, 300)), "vocabulary size");
        // A tensor whose claimed size runs past the end of the file.
        expectRejected(writeTemp(withTensorDim(orig, "blk.0.ffn_up.weight", 1, 1u << 20)), "outside the file");
        // A missing tensor: rename one.
        std::vector<uint8_t> b = orig;
        size_t at = afterGgufString(b, "blk.0.ffn_gate.weight");
        b[at - 1] = 'X';
        expectRejected(writeTemp(b), "blk.0.ffn_gate.weight' is missing");
    }

    void rejectsUnsupportedArchitectures() {
        std::vector<uint8_t> b = readFileBytes(tiny("llama-gqa-f32.gguf"));
        size_t at = afterGgufString(b, "general.architecture") + 4 + 8; // type, length
        std::memcpy(&b[at], "bloom", 5);
        expectRejected(writeTemp(b), "unsupported architecture bloom");

        std::string folder = copyFolder(tiny("hf-llama"));
        std::string cfg = readFileText(folder + "/config.json");
        writeText(folder + "/config.json", replaced(cfg, "LlamaForCausalLM", "GPT2LMHeadModel"));
        expectRejected(folder, "unsupported architecture GPT2LMHeadModel", folder + "/config.json");
    }

    void rejectsForgedHuggingFaceFolders_data() {
        QTest::addColumn<QString>("file");
        QTest::addColumn<QString>("from");
        QTest::addColumn<QString>("to");
        QTest::addColumn<QString>("expect");
        QTest::newRow("config not JSON") << "config.json" << "{" << "{{" << "not valid JSON";
        QTest::newRow("heads") << "config.json" << "\"num_attention_heads\": 4" << "\"num_attention_heads\": 3" << "not a multiple of num_attention_heads";
        QTest::newRow("kv heads") << "config.json" << "\"num_key_value_heads\": 2" << "\"num_key_value_heads\": 3"
                                  << "cannot be shared evenly";
        QTest::newRow("width") << "config.json" << "\"hidden_size\": 64" << "\"hidden_size\": 96" << "has shape";
        QTest::newRow("width string") << "config.json" << "\"hidden_size\": 64" << "\"hidden_size\": \"64\"" << "not an integer";
        QTest::newRow("negative layers") << "config.json" << "\"num_hidden_layers\": 2" << "\"num_hidden_layers\": -2" << "not an integer";
        QTest::newRow("vocab") << "config.json" << "\"vocab_size\": 320" << "\"vocab_size\": 321" << "vocabulary size";
        QTest::newRow("rope scaling") << "config.json" << "\"rope_type\": \"llama3\"" << "\"rope_type\": \"yarn\"" << "not supported";
        QTest::newRow("activation") << "config.json" << "\"silu\"" << "\"gelu\"" << "activation";
        QTest::newRow("index escapes") << "model.safetensors.index.json" << "\"model-00003-of-00003.safetensors\""
                                       << "\"../model-00003-of-00003.safetensors\"" << "not a file name";
        QTest::newRow("index names a missing file") << "model.safetensors.index.json" << "\"model-00003-of-00003.safetensors\""
                                                    << "\"model-00009-of-00009.safetensors\"" << "which the index puts in";
        QTest::newRow("index not JSON") << "model.safetensors.index.json" << "{" << "[" << "not valid JSON";
    }
    void rejectsForgedHuggingFaceFolders() {
        QFETCH(QString, file);
        QFETCH(QString, from);
        QFETCH(QString, to);
        QFETCH(QString, expect);
        std::string folder = copyFolder(tiny("hf-llama"));
        std::string path = folder + "/" + file.toStdString();
        writeText(path, replaced(readFileText(path), from.toStdString(), to.toStdString()));
        try {
            Model::open(folder);
            QFAIL("a forged folder was accepted");
        } catch (const Error& e) {
            std::string what = e.what();
            QVERIFY2(what.find(folder) != std::string::npos, e.what());
            QVERIFY2(what.find(expect.toStdString()) != std::string::npos, e.what());
        }
    }

    void rejectsBrokenShards() {
        std::string folder = copyFolder(tiny("hf-llama"));
        std::string shard = folder + "/model-00002-of-00003.safetensors";
        std::vector<uint8_t> b = readFileBytes(shard);
        writeFileBytes(shard, std::vector<uint8_t>(b.begin(), b.begin() + b.size() / 2));
        expectRejected(folder, "", shard);
        fs::remove(shard);
        expectRejected(folder, "cannot", shard); // the mapped file cannot be opened
        // Without an index, the shards left are read, and the tensors that were in the lost one
        // are missing.
        fs::remove(folder + "/model.safetensors.index.json");
        expectRejected(folder, "is missing", folder);
        try {
            Model::open(folder);
        } catch (const Error& e) {
            // Named as the folder names it.
            QVERIFY2(std::string(e.what()).find("tensor 'model.") != std::string::npos, e.what());
        }
    }

    void rejectsTruncatedGgufAtManyPoints() {
        std::vector<uint8_t> b = readFileBytes(tiny("llama-q4_1-rope-llama3.gguf"));
        std::string dir = makeTempDir();
        int rejected = 0, checked = 0;
        for (size_t cut = 0; cut + 32 < b.size(); cut += (cut < 8192 ? 61 : 2039)) {
            std::string p = dir + "/cut.gguf";
            writeFileBytes(p, std::vector<uint8_t>(b.begin(), b.begin() + cut));
            ++checked;
            try {
                Model::open(p);
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(p) != std::string::npos, e.what());
                ++rejected;
            }
        }
        // Every cut loses tensor data the model needs (the file ends with the last tensor, padded
        // to 32 bytes at most).
        QCOMPARE(rejected, checked);
        QVERIFY(checked > 150);
    }

    void truncatedDefaultModelIsRejected() {
        std::string p = defaultModelPath();
        if (p.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        std::string copy = makeTempDir() + "/smollm2.gguf";
        fs::copy_file(p, copy);
        const uint64_t size = fs::file_size(copy);
        ModelOptions meta;
        meta.metadataOnly = true;
        // Cutting from the end inward: in the tensor data, the tensor infos, the vocabulary.
        for (uint64_t cut : {size - 1, size / 2, size / 10, uint64_t(3'000'000), uint64_t(1'000'000), uint64_t(100'000),
                             uint64_t(5000), uint64_t(100), uint64_t(10)}) {
            fs::resize_file(copy, cut);
            expectRejected(copy, "", copy, meta);
        }
    }

    void survivesFlippedBytes() {
        // Flip bytes in the header (metadata, vocabulary, tensor infos) of a tiny GGUF: each
        // result opens or is rejected with an Error naming the file; nothing crashes.
        std::vector<uint8_t> orig = readFileBytes(tiny("llama-tied-q8_0.gguf"));
        size_t headerEnd = afterGgufString(orig, "output_norm.weight") + 64;
        for (const std::string& name : {"blk.1.ffn_up.weight", "token_embd.weight"})
            headerEnd = std::max(headerEnd, afterGgufString(orig, name) + 64);
        std::mt19937 rng(7);
        std::string dir = makeTempDir();
        int rejected = 0;
        for (int k = 0; k < 300; ++k) {
            std::vector<uint8_t> b = orig;
            for (int f = 0; f < 1 + int(rng() % 3); ++f) b[rng() % headerEnd] ^= uint8_t(1 + rng() % 255);
            std::string p = dir + "/flipped.gguf";
            writeFileBytes(p, b);
            try {
                auto m = Model::open(p);
                QVERIFY(m->config().nLayer >= 1);
            } catch (const Error& e) {
                QVERIFY2(std::string(e.what()).find(p) != std::string::npos, e.what());
                ++rejected;
            }
        }
        QVERIFY(rejected > 30);
    }
};

QTEST_GUILESS_MAIN(TestModelFiles)
#include "test_model_files.moc"
