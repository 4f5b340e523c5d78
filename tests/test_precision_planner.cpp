// Precision planner (DESIGN.md §3): which precision LLaMA-2 7B and 13B get on GPUs with 6, 8,
// 12, 16, 24 and 80 GB free at their 4096-token context, that a Q4 file is never "upgraded",
// that a user's choice is honoured or refused with the numbers, and the sentence the UI shows;
// the 8-bit K/V cache (engine/kv_cache_format.h) halves the cache and can lift the precision.
#include "engine/precision_planner.h"

#include <QRegularExpression>
#include <QTest>

using namespace parley;

namespace {

constexpr uint64_t GiB = uint64_t(1) << 30;

ModelConfig llama2(int layers, int width, int heads, int ffn) {
    ModelConfig c;
    c.architecture = "llama";
    c.nLayer = layers;
    c.nEmbd = width;
    c.nHead = heads;
    c.nHeadKv = heads;
    c.headDim = width / heads;
    c.nFf = ffn;
    c.vocabSize = 32000;
    c.contextLength = 4096;
    return c;
}
ModelConfig llama2_7b() { return llama2(32, 4096, 32, 11008); }
ModelConfig llama2_13b() { return llama2(40, 5120, 40, 13824); }

PrecisionPlanInput input(const ModelConfig& c, uint64_t freeBytes, Precision file = Precision::FP16) {
    PrecisionPlanInput in;
    in.config = c;
    in.filePrecision = file;
    in.contextLength = 4096;
    in.freeBytes = freeBytes;
    return in;
}

} // namespace

class TestPrecisionPlanner : public QObject {
    Q_OBJECT
private slots:
    void estimatesCountWeightsAndCache() {
        const PrecisionPlanInput in = input(llama2_7b(), 80 * GiB);
        // K and V, 32 layers, 4096 positions, 4096 wide, 2 bytes.
        QCOMPARE(estimateGpuMemory(in, Precision::FP16).kvCacheBytes, uint64_t(2) * 32 * 4096 * 4096 * 2);
        const uint64_t fp16 = estimateGpuMemory(in, Precision::FP16).weightBytes;
        const uint64_t int8 = estimateGpuMemory(in, Precision::INT8).weightBytes;
        const uint64_t int4 = estimateGpuMemory(in, Precision::INT4).weightBytes;
        // 6.61 billion weights on the GPU (the untied embedding stays on the host): 2 bytes each in
        // FP16; 1 + 2/32 in INT8 g32; 0.5 + 4/32 in INT4 g32 (output projection in INT8).
        QVERIFY(fp16 > uint64_t(13.1e9) && fp16 < uint64_t(13.4e9));
        QVERIFY(int8 > uint64_t(6.9e9) && int8 < uint64_t(7.1e9));
        QVERIFY(int4 > uint64_t(4.1e9) && int4 < uint64_t(4.3e9));
        // Larger groups take fewer bytes for their scales.
        PrecisionPlanInput g128 = in;
        g128.int4GroupSize = 128;
        QVERIFY(estimateGpuMemory(g128, Precision::INT4).weightBytes < int4);
        // The embedding on the GPU adds its rows.
        PrecisionPlanInput onGpu = in;
        onGpu.untiedEmbeddingOnGpu = true;
        QVERIFY(estimateGpuMemory(onGpu, Precision::FP16).weightBytes == fp16 + uint64_t(32000) * 4096 * 2);
    }

    void choosesByFreeMemory_data() {
        QTest::addColumn<int>("model");
        QTest::addColumn<int>("freeGiB");
        QTest::addColumn<bool>("fits");
        QTest::addColumn<int>("precision");
        const int F = int(Precision::FP16), I8 = int(Precision::INT8), I4 = int(Precision::INT4);
        // LLaMA-2 7B needs about 6.8 GB in INT4, 9.6 in INT8, 15.7 in FP16 at 4096 tokens.
        QTest::newRow("7B, 6 GB") << 7 << 6 << false << I4;
        QTest::newRow("7B, 8 GB") << 7 << 8 << true << I4;
        QTest::newRow("7B, 12 GB") << 7 << 12 << true << I8;
        QTest::newRow("7B, 16 GB") << 7 << 16 << true << F;
        QTest::newRow("7B, 24 GB") << 7 << 24 << true << F;
        QTest::newRow("7B, 80 GB") << 7 << 80 << true << F;
        // LLaMA-2 13B: about 11.9 GB in INT4, 17.4 in INT8, 29.4 in FP16.
        QTest::newRow("13B, 6 GB") << 13 << 6 << false << I4;
        QTest::newRow("13B, 8 GB") << 13 << 8 << false << I4;
        QTest::newRow("13B, 12 GB") << 13 << 12 << true << I4;
        QTest::newRow("13B, 16 GB") << 13 << 16 << true << I4;
        QTest::newRow("13B, 24 GB") << 13 << 24 << true << I8;
        QTest::newRow("13B, 80 GB") << 13 << 80 << true << F;
    }
    void choosesByFreeMemory() {
        QFETCH(int, model);
        QFETCH(int, freeGiB);
        QFETCH(bool, fits);
        QFETCH(int, precision);
        const PrecisionPlanInput in = input(model == 7 ? llama2_7b() : llama2_13b(), uint64_t(freeGiB) * GiB);
        const PrecisionPlan plan = planPrecision(in);
        QCOMPARE(plan.fits, fits);
        QCOMPARE(int(plan.precision), precision);
        if (fits) {
            QVERIFY(plan.memory.total() <= in.freeBytes);
            // Nothing higher would have fitted.
            for (int p = 0; p < precision; ++p) QVERIFY(estimateGpuMemory(in, Precision(p)).total() > in.freeBytes);
            const QRegularExpression sentence("^(FP16|INT8|INT4) — needs \\d+\\.\\d GB, \\d+\\.\\d GB free$");
            QVERIFY2(sentence.match(QString::fromStdString(plan.reason)).hasMatch(), plan.reason.c_str());
            QVERIFY(plan.reason.rfind(precisionLabel(plan.precision), 0) == 0);
        } else {
            QVERIFY(plan.memory.total() > in.freeBytes);
            QVERIFY2(plan.reason.find("Does not fit — INT4 needs") == 0, plan.reason.c_str());
        }
    }

    void shorterContextNeedsLess() {
        // At 2048 tokens the 7B model's INT4 weights and cache fit in 6 GB.
        PrecisionPlanInput in = input(llama2_7b(), 6 * GiB);
        in.contextLength = 2048;
        const PrecisionPlan plan = planPrecision(in);
        QVERIFY(plan.fits);
        QCOMPARE(plan.precision, Precision::INT4);
    }

    void reasonSentenceShowsTheNumbers() {
        PrecisionPlanInput in = input(llama2_7b(), uint64_t(7.1e9), Precision::INT4);
        in.contextLength = 1024;
        const PrecisionPlan plan = planPrecision(in);
        QVERIFY(plan.fits);
        const std::string expected = "INT4 — needs " + formatGigabytes(plan.memory.total()) + ", 7.1 GB free";
        QCOMPARE(plan.reason, expected);
        QCOMPARE(formatGigabytes(uint64_t(4.6e9)), std::string("4.6 GB"));
    }

    void q4FileIsNeverUpgraded() {
        for (const ModelConfig& c : {llama2_7b(), llama2_13b()}) {
            const PrecisionPlan plan = planPrecision(input(c, 80 * GiB, Precision::INT4));
            QVERIFY(plan.fits);
            QCOMPARE(plan.precision, Precision::INT4);
        }
        const PrecisionPlan q8 = planPrecision(input(llama2_7b(), 80 * GiB, Precision::INT8));
        QCOMPARE(q8.precision, Precision::INT8);
        // Even when asked for FP16, a Q4 file stays INT4, and the reason says why.
        PrecisionPlanInput in = input(llama2_7b(), 80 * GiB, Precision::INT4);
        in.requested = Precision::FP16;
        const PrecisionPlan asked = planPrecision(in);
        QCOMPARE(asked.precision, Precision::INT4);
        QVERIFY2(asked.reason.find("the file holds INT4") != std::string::npos, asked.reason.c_str());
    }

    void userChoiceIsHonouredOrRefused() {
        PrecisionPlanInput in = input(llama2_7b(), 80 * GiB);
        in.requested = Precision::INT4;
        PrecisionPlan plan = planPrecision(in);
        QVERIFY(plan.fits);
        QCOMPARE(plan.precision, Precision::INT4); // lower than needed is the user's right
        in.freeBytes = 8 * GiB;
        in.requested = Precision::FP16;
        plan = planPrecision(in);
        QVERIFY(!plan.fits);
        QCOMPARE(plan.precision, Precision::FP16);
        QVERIFY2(plan.reason.find("FP16 does not fit — needs") == 0, plan.reason.c_str());
    }

    void int8KvCacheTakesAboutHalf() {
        PrecisionPlanInput in = input(llama2_7b(), 80 * GiB);
        in.contextLength = 2048;
        const uint64_t fp16 = estimateGpuMemory(in, Precision::INT4).kvCacheBytes;
        in.kvCache = KvCacheRequest::INT8;
        const uint64_t int8 = estimateGpuMemory(in, Precision::INT4).kvCacheBytes;
        // K and V, 32 layers, 2048 positions: 4096 values of 2 bytes, or of 1 byte plus a float
        // scale for each of the 32 heads.
        QCOMPARE(fp16, uint64_t(1073741824));
        QCOMPARE(int8, uint64_t(2) * 32 * 2048 * (4096 + 32 * 4));
        QVERIFY(double(int8) / double(fp16) > 0.5 && double(int8) / double(fp16) < 0.52);
        QCOMPARE(kvCacheBytesPerToken(llama2_7b(), KvCacheType::FP16), llama2_7b().kvBytesPerToken());
        // Only the cache changes.
        PrecisionPlanInput fp16In = in;
        fp16In.kvCache = KvCacheRequest::FP16;
        QCOMPARE(estimateGpuMemory(in, Precision::INT4).weightBytes, estimateGpuMemory(fp16In, Precision::INT4).weightBytes);
        QCOMPARE(estimateGpuMemory(in, Precision::INT4).total() + (fp16 - int8), estimateGpuMemory(fp16In, Precision::INT4).total());
    }

    void int8KvCacheLetsAHigherPrecisionFit() {
        // LLaMA-2 7B at 4096 positions with 9.0 GB free: INT8 weights need about 9.6 GB with the
        // FP16 cache (2.1 GB of it) but 8.6 GB with the 8-bit one (1.1 GB).
        PrecisionPlanInput in = input(llama2_7b(), uint64_t(9e9));
        const PrecisionPlan withFp16Kv = planPrecision(in);
        QVERIFY(withFp16Kv.fits);
        QCOMPARE(withFp16Kv.precision, Precision::INT4);
        QVERIFY2(withFp16Kv.reason.find("K/V") == std::string::npos, withFp16Kv.reason.c_str());
        in.kvCache = KvCacheRequest::INT8;
        const PrecisionPlan withInt8Kv = planPrecision(in);
        QVERIFY(withInt8Kv.fits);
        QCOMPARE(withInt8Kv.precision, Precision::INT8);
        QVERIFY(withInt8Kv.memory.total() <= in.freeBytes);
        const std::string expected = "INT8 — needs " + formatGigabytes(withInt8Kv.memory.total()) +
                                     ", 9.0 GB free, with an 8-bit K/V cache";
        QCOMPARE(withInt8Kv.reason, expected);
        // Refusals say it too.
        in.requested = Precision::FP16;
        const PrecisionPlan refused = planPrecision(in);
        QVERIFY(!refused.fits);
        QVERIFY2(refused.reason.find("FP16 does not fit") == 0 && refused.reason.find("8-bit K/V cache") != std::string::npos,
                 refused.reason.c_str());
    }

    void autoKvCacheTakesEightBitsOnlyWhereNeeded() {
        // Plenty of memory: FP16 weights and the FP16 cache, and the reason does not mention it.
        PrecisionPlanInput in = input(llama2_7b(), 80 * GiB);
        in.kvCache = KvCacheRequest::Auto;
        PrecisionPlan plan = planPrecision(in);
        QCOMPARE(plan.precision, Precision::FP16);
        QVERIFY(plan.kvCache == KvCacheType::FP16);
        QVERIFY2(plan.reason.find("K/V") == std::string::npos, plan.reason.c_str());
        // Between what INT8 weights need with the 8-bit cache and with the FP16 one: INT8 weights
        // with the 8-bit cache, not INT4 weights with FP16 (a far smaller loss), saying why.
        const uint64_t int8With8 = estimateGpuMemory(in, Precision::INT8, KvCacheType::INT8).total();
        const uint64_t int8With16 = estimateGpuMemory(in, Precision::INT8, KvCacheType::FP16).total();
        QVERIFY(int8With8 < int8With16);
        in.freeBytes = (int8With8 + int8With16) / 2;
        plan = planPrecision(in);
        QVERIFY(plan.fits);
        QCOMPARE(plan.precision, Precision::INT8);
        QVERIFY(plan.kvCache == KvCacheType::INT8);
        QCOMPARE(plan.reason, "INT8 — needs " + formatGigabytes(int8With8) + ", " + formatGigabytes(in.freeBytes) +
                                  " free, with an 8-bit K/V cache (with FP16 it would need " + formatGigabytes(int8With16) + ")");
        // The same with INT8 asked for.
        in.requested = Precision::INT8;
        plan = planPrecision(in);
        QVERIFY(plan.fits && plan.kvCache == KvCacheType::INT8);
        // FP16 asked for, which fits with neither cache: refused, counted with the smaller one.
        in.requested = Precision::FP16;
        plan = planPrecision(in);
        QVERIFY(!plan.fits);
        QVERIFY(plan.kvCache == KvCacheType::INT8);
        // A head size the GPU's 8-bit cache does not take (96): Auto keeps FP16, one step down.
        PrecisionPlanInput wide = input(llama2(32, 3072, 32, 8192), 80 * GiB);
        QCOMPARE(wide.config.headDim, 96);
        wide.kvCache = KvCacheRequest::Auto;
        wide.freeBytes = (estimateGpuMemory(wide, Precision::INT8, KvCacheType::INT8).total() +
                          estimateGpuMemory(wide, Precision::INT8, KvCacheType::FP16).total()) / 2;
        plan = planPrecision(wide);
        QVERIFY(plan.fits);
        QCOMPARE(plan.precision, Precision::INT4);
        QVERIFY(plan.kvCache == KvCacheType::FP16);
    }

    void moreMemoryNeverLowersPrecision() {
        for (const ModelConfig& c : {llama2_7b(), llama2_13b()}) {
            int last = int(Precision::INT4);
            for (int gib = 1; gib <= 96; ++gib) {
                const PrecisionPlan plan = planPrecision(input(c, uint64_t(gib) * GiB));
                if (!plan.fits) continue;
                QVERIFY(int(plan.precision) <= last);
                last = int(plan.precision);
            }
            QCOMPARE(last, int(Precision::FP16));
        }
    }
};

QTEST_GUILESS_MAIN(TestPrecisionPlanner)
#include "test_precision_planner.moc"
