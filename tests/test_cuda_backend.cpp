// The CUDA backend against the CPU backend on the same model and inputs (issue 3): the default
// model and the generated tiny models of several shapes (GQA, tied embeddings, odd widths, QKV
// bias, rope scaling), each in FP16, INT8 and INT4 where the file allows. For each: logits
// relative error <= 1e-2 at every position of a 256-token teacher-forced text, through the
// prefill path (cuBLAS) and through the decode path (GEMV, graph) token by token; and identical
// greedy continuations of 64 tokens. The same with the 8-bit K/V cache (engine/kv_cache_format.h)
// on both backends, for the models whose head size the GPU's 8-bit cache takes (64, 128): the CPU
// rounds its K/V through the same format, so the two attend over the same values. Also: out of
// memory at load is an Error that frees what it took, the GPU refuses the 8-bit cache for other
// head sizes, and a missing CUDA library makes "auto" fall back to the CPU with one message.
// Built everywhere; the GPU parts skip with the reason where no GPU or CUDA library exists.
#include "cuda_test_support.h"
#include "engine/backend_registry.h"
#include "engine/kv_cache_format.h"
#include "engine/model.h"
#include "engine/session.h"
#include "support.h"

#include <QProcess>
#include <QTest>
#include <cmath>
#include <random>

using namespace parley;
using namespace parley::test;

namespace {

std::vector<std::string> modelsUnderTest() {
    std::vector<std::string> paths;
    for (const char* name : {"llama-gqa-f32.gguf", "llama-tied-q8_0.gguf", "llama-q4_0.gguf", "llama-q4_1-rope-llama3.gguf",
                             "llama-f16-odd-spm.gguf", "qwen2-bias.gguf", "hf-llama", "llama-hd128-f16.gguf"}) {
        const std::string p = envPath("PARLEY_TEST_MODELS", name);
        if (!p.empty() && (fileExists(p) || fileExists(p + "/config.json"))) paths.push_back(p);
    }
    const std::string def = defaultModelPath();
    if (!def.empty()) paths.push_back(def);
    return paths;
}

std::vector<int32_t> textTokens(const Model& m, int count) {
    const std::string text = readFileText(envPath("PARLEY_TEST_DATA", "text/declaration_gettysburg.txt"));
    std::vector<int32_t> t = m.tokenizer().encode(text, true, false);
    // Short vocabularies may give fewer tokens than asked: repeat the text.
    while (int(t.size()) < count) {
        const auto more = m.tokenizer().encode(text, false, false);
        t.insert(t.end(), more.begin(), more.end());
    }
    t.resize(size_t(count));
    return t;
}

// Greedy on the CPU; margins[i]: how far step i's winner led the runner-up, relative to the
// root-mean-square logit (a near-tie has a margin of the size of the backends' differences).
std::vector<int32_t> greedyCpu(Backend& b, const std::vector<int32_t>& prompt, int count, int vocab,
                               std::vector<double>& margins) {
    std::vector<float> logits(static_cast<size_t>(vocab));
    b.forward(prompt.data(), int(prompt.size()), 0, false, logits.data());
    std::vector<int32_t> out;
    int pos = int(prompt.size());
    for (int i = 0; i < count; ++i) {
        const int32_t t = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        float second = -INFINITY;
        double ss = 0;
        for (int v = 0; v < vocab; ++v) {
            ss += double(logits[v]) * logits[v];
            if (v != t) second = std::max(second, logits[v]);
        }
        margins.push_back((logits[t] - second) / std::sqrt(ss / vocab));
        out.push_back(t);
        b.forward(&t, 1, pos++, false, logits.data());
    }
    return out;
}

} // namespace

// GPU against CPU, both with the 8-bit K/V cache (see matchesCpu). Measured on an H200: worst
// 9.3e-2 on the default model (SmolLM2-135M), 2.2e-2 on llama-hd128-f16 — as large as what the
// format itself does on the CPU (8-bit against FP16 K/V: 1.5e-1 and 2.6e-2, test_kv_cache_format).
// The greedy continuations below still have to agree up to a near-tie.
constexpr double kInt8KvBound = 0.2;

class TestCudaBackend : public QObject {
    Q_OBJECT
private slots:
    void matchesCpu_data() {
        QTest::addColumn<QString>("path");
        QTest::addColumn<int>("precision"); // -1: the file's own
        QTest::addColumn<bool>("int8KvCache");
        for (const std::string& p : modelsUnderTest()) {
            const QString name = QString::fromStdString(p.substr(p.rfind('/') + 1));
            const QString path = QString::fromStdString(p);
            QTest::newRow(qPrintable(name + " as stored")) << path << -1 << false;
            QTest::newRow(qPrintable(name + " int8")) << path << 1 << false;
            QTest::newRow(qPrintable(name + " int4")) << path << 2 << false;
            // The 8-bit K/V cache where the GPU has it (head sizes 64 and 128): at the file's own
            // precision, and at INT4, the weights it is meant to go with.
            ModelOptions header;
            header.metadataOnly = true;
            int headDim = 0;
            try {
                headDim = Model::open(p, header)->config().headDim;
            } catch (const Error&) {
                // The rows above fail with the reason.
            }
            if (headDim == 64 || headDim == 128) {
                QTest::newRow(qPrintable(name + " as stored, 8-bit K/V")) << path << -1 << true;
                QTest::newRow(qPrintable(name + " int4, 8-bit K/V")) << path << 2 << true;
            }
        }
        if (modelsUnderTest().empty()) QTest::newRow("no models") << QString() << -1 << false;
    }
    void matchesCpu() {
        QFETCH(QString, path);
        QFETCH(int, precision);
        QFETCH(bool, int8KvCache);
        const std::string why = cudaUnavailableReason();
        if (!why.empty()) QSKIP(why.c_str());
        if (path.isEmpty()) QSKIP("no test models (the make_tiny_models fixture writes them)");
        ModelOptions opt;
        if (precision >= 0) opt.precision = Precision(precision);
        std::unique_ptr<Model> model;
        try {
            model = Model::open(path.toStdString(), opt);
        } catch (const Error& e) {
            // A width that is no whole number of groups cannot be quantized; the engine says so.
            if (precision >= 0) QSKIP(e.what());
            QFAIL(e.what());
        }
        // Any exception (an Error from a backend) fails this row with its message.
        try {
            const ModelConfig& c = model->config();
            const int n = std::min(256, c.contextLength > 0 ? c.contextLength - 64 : 256);
            const int vocab = c.vocabSize;
            const std::vector<int32_t> tokens = textTokens(*model, n);

            std::unique_ptr<Backend> cpu, gpu;
            BackendOptions options;
            options.kvCache = int8KvCache ? KvCacheType::INT8 : KvCacheType::FP16;
            try {
                cpu = makeBackend("cpu", options);
                gpu = makeBackend("cuda", options);
                cpu->load(c, model->weights(), n + 64);
                gpu->load(c, model->weights(), n + 64);
            } catch (const Error& e) {
                QFAIL(e.what());
            }
            QVERIFY(gpu->name().rfind("cuda", 0) == 0);

            // With the 8-bit cache both backends round K/V through the same format, but from K/V
            // that differ by ~1e-4 (the GPU's prefill multiplies FP16 activations, the CPU's
            // floats; sums run in another order); a value that lies near a boundary of the
            // format's rounding then moves a whole step (amax / 127), which the logits show.
            const double bound = int8KvCache ? kInt8KvBound : 1e-2;
            std::vector<float> ref(size_t(n) * vocab), got(size_t(n) * vocab);
            cpu->forward(tokens.data(), n, 0, true, ref.data());
            // Prefill path: every position's logits at once.
            gpu->forward(tokens.data(), n, 0, true, got.data());
            double worst = 0;
            for (int t = 0; t < n; ++t) {
                const double e = relativeError(got.data() + size_t(t) * vocab, ref.data() + size_t(t) * vocab, vocab);
                worst = std::max(worst, e);
                QVERIFY2(e <= bound, qPrintable(QString("prefill position %1: relative error %2").arg(t).arg(e)));
            }
            // Decode path: the first half as a prompt, then one token at a time.
            const int half = n / 2;
            gpu->forward(tokens.data(), half, 0, false, got.data());
            QVERIFY(relativeError(got.data(), ref.data() + size_t(half - 1) * vocab, vocab) <= bound);
            for (int t = half; t < n; ++t) {
                gpu->forward(&tokens[t], 1, t, false, got.data());
                const double e = relativeError(got.data(), ref.data() + size_t(t) * vocab, vocab);
                worst = std::max(worst, e);
                QVERIFY2(e <= bound, qPrintable(QString("decode position %1: relative error %2").arg(t).arg(e)));
            }
            // Greedy continuation of 64 tokens, sampled on the device.
            // 32 prompt tokens and 64 generated, or what the context holds.
            const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + std::min(32, n / 2));
            const int steps = std::min(64, n + 64 - int(prompt.size()));
            std::vector<double> margins;
            const std::vector<int32_t> want = greedyCpu(*cpu, prompt, steps, vocab, margins);
            SamplingParams greedy;
            greedy.temperature = 0;
            greedy.repeatPenalty = 1.f;
            std::vector<int32_t> have;
            int32_t next = gpu->forwardAndSample(prompt.data(), int(prompt.size()), 0, greedy, nullptr, 0, 0.f);
            for (int i = 0; i < steps; ++i) {
                have.push_back(next);
                if (i + 1 < steps) next = gpu->forwardAndSample(&next, 1, int(prompt.size()) + i, greedy, nullptr, 0, 0.f);
            }
            // Identical, except that a step where the CPU's top two logits were closer than the
            // backends' own difference (a near-tie, margin < 4x the worst relative error) may go
            // either way; what follows it then differs by construction.
            const auto diverge = std::mismatch(have.begin(), have.end(), want.begin());
            if (diverge.first != have.end()) {
                const size_t i = size_t(diverge.first - have.begin());
                QVERIFY2(margins[i] < 4 * worst,
                         qPrintable(QString("greedy continuations differ at step %1 (GPU %2, CPU %3), where the CPU's winner "
                                            "led by %4 RMS logits").arg(i).arg(*diverge.first).arg(*diverge.second).arg(margins[i])));
                qInfo("%s: greedy continuations agree for %zu of %d steps, then part at a near-tie (margin %.2e)",
                      qPrintable(QTest::currentDataTag()), i, steps, margins[i]);
            }
            qInfo("%s: worst logits relative error %.2e", qPrintable(QTest::currentDataTag()), worst);
        } catch (const std::exception& e) {
            QFAIL(e.what());
        }
    }

    // Session on the GPU samples there (only ids cross): greedy replies equal the CPU's on the
    // default model, whose 64-step greedy continuations agree at the backend level above, and a
    // seeded sampled reply is the same twice.
    void sessionSamplesOnTheGpu() {
        const std::string why = cudaUnavailableReason();
        if (!why.empty()) QSKIP(why.c_str());
        const std::string path = defaultModelPath();
        if (path.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        auto model = Model::open(path);
        auto cpu = makeBackend("cpu", {});
        auto gpu = makeBackend("cuda", {});
        cpu->load(model->config(), model->weights(), 512);
        gpu->load(model->config(), model->weights(), 512);
        QVERIFY(gpu->samplesOnDevice());
        const std::vector<int32_t> prompt = model->tokenizer().encode("The capital of France is", false, true);
        SamplingParams greedy;
        greedy.temperature = 0;
        greedy.repeatPenalty = 1.f;
        GenerateOptions go;
        go.maxTokens = 32;
        Session onCpu(*model, *cpu), onGpu(*model, *gpu);
        const GenerateResult c = onCpu.generate(prompt, greedy, go, nullptr);
        const GenerateResult g = onGpu.generate(prompt, greedy, go, nullptr);
        QCOMPARE(g.tokens, c.tokens);
        QCOMPARE(g.text, c.text);
        QVERIFY2(g.text.find("Paris") != std::string::npos, g.text.c_str());

        SamplingParams sampled;
        sampled.temperature = 0.8f;
        sampled.seed = 7;
        onGpu.reset();
        const GenerateResult a = onGpu.generate(prompt, sampled, go, nullptr);
        onGpu.reset();
        const GenerateResult b = onGpu.generate(prompt, sampled, go, nullptr);
        QCOMPARE(a.tokens, b.tokens);
        QVERIFY(!a.tokens.empty());
    }

    void outOfMemoryAtLoadIsAnErrorAndFreesEverything() {
        const std::string why = cudaUnavailableReason();
        if (!why.empty()) QSKIP(why.c_str());
        std::string path = envPath("PARLEY_TEST_MODELS", "llama-gqa-f32.gguf");
        if (path.empty() || !fileExists(path)) path = defaultModelPath();
        if (path.empty()) QSKIP("no model to load (the make_tiny_models fixture writes the tiny ones)");
        auto model = Model::open(path);
        auto gpu = makeBackend("cuda", {});
        const uint64_t freeBefore = probeGpus()[0].freeBytes;
        // Two billion positions of KV cache: hundreds of GB even for a tiny model.
        bool threw = false;
        try {
            gpu->load(model->config(), model->weights(), 2'000'000'000);
        } catch (const Error& e) {
            threw = true;
            QVERIFY2(std::string(e.what()).find("out of GPU memory") != std::string::npos, e.what());
        }
        QVERIFY(threw);
        const uint64_t freeAfter = probeGpus()[0].freeBytes;
        QVERIFY2(freeAfter + (uint64_t(64) << 20) >= freeBefore,
                 qPrintable(QString("%1 MiB free before, %2 after").arg(freeBefore >> 20).arg(freeAfter >> 20)));
        // And the same backend still loads and runs.
        gpu->load(model->config(), model->weights(), 64);
        std::vector<float> logits(static_cast<size_t>(model->config().vocabSize));
        const int32_t bos = 1;
        gpu->forward(&bos, 1, 0, false, logits.data());
        QVERIFY(std::isfinite(logits[0]));
        // Positions past the context are an Error, not a crash.
        QVERIFY_THROWS_EXCEPTION(Error, gpu->forward(&bos, 1, 64, false, logits.data()));
    }

    void int8KvCacheRefusesOtherHeadSizes() {
        // The GPU's 8-bit cache takes head sizes 64 and 128; llama-gqa-f32 has 16. Refused at
        // load with an Error, and the same model then loads with the FP16 cache.
        const std::string why = cudaUnavailableReason();
        if (!why.empty()) QSKIP(why.c_str());
        const std::string path = envPath("PARLEY_TEST_MODELS", "llama-gqa-f32.gguf");
        if (path.empty() || !fileExists(path)) QSKIP("no test models (the make_tiny_models fixture writes them)");
        auto model = Model::open(path);
        QCOMPARE(model->config().headDim, 16);
        BackendOptions int8Kv;
        int8Kv.kvCache = KvCacheType::INT8;
        auto gpu = makeBackend("cuda", int8Kv);
        QVERIFY_THROWS_EXCEPTION(Error, gpu->load(model->config(), model->weights(), 64));
        auto fp16 = makeBackend("cuda", {});
        fp16->load(model->config(), model->weights(), 64);
        std::vector<float> logits(static_cast<size_t>(model->config().vocabSize));
        const int32_t bos = 1;
        fp16->forward(&bos, 1, 0, false, logits.data());
        QVERIFY(std::isfinite(logits[0]));
    }

    void autoFallsBackToCpuWithOneMessage() {
        // A process whose CUDA library cannot load: "auto" says so once and runs on the CPU.
        const std::string model = envPath("PARLEY_TEST_MODELS", "llama-gqa-f32.gguf");
        if (model.empty() || !fileExists(model)) QSKIP("no test models (the make_tiny_models fixture writes them)");
        QProcess p;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert("PARLEY_CUDA_LIBRARY", "/nonexistent/libparley_cuda.so");
        p.setProcessEnvironment(env);
        p.start(QString::fromStdString(envPath("PARLEY_BIN_DIR", "parley-bench")),
                {"-m", QString::fromStdString(model), "--backend", "auto", "-p", "8", "-n", "4", "--repeat", "1"});
        QVERIFY(p.waitForFinished(120000));
        const QString err = QString::fromUtf8(p.readAllStandardError());
        const QString out = QString::fromUtf8(p.readAllStandardOutput());
        QCOMPARE(p.exitCode(), 0);
        QCOMPARE(err.count("CUDA backend unavailable"), 1);
        QVERIFY2(err.contains("using the CPU"), qPrintable(err));
        QVERIFY2(out.contains("backend          cpu"), qPrintable(out));
    }
};

QTEST_GUILESS_MAIN(TestCudaBackend)
#include "test_cuda_backend.moc"
