// Each CUDA kernel alone against a simple CPU reference (double precision) on fresh random inputs —
// never zeros — with the outputs poisoned (NaN) before the kernel runs, so an element the kernel
// forgets shows up: GEMV in FP16, INT8 and INT4 (groups 16, 32, 128; widths that are and are not
// whole warps of chunks; with and without the fused RMSNorm), the prefill GEMM (the sm_90a
// quantized kernel, and cuBLAS with slab-wise dequantization), RMSNorm, rotary embedding (both
// pairings), decode attention split over blocks (lengths from 1 to past one chunk, grouped-query
// heads, launched twice so the block counters must reset), prefill attention (tensor-core and
// simple paths, with cached positions before the prompt), the same three into and out of the 8-bit
// K/V cache (the values it stores equal the format's reference, engine/kv_cache_format.h), and
// sampling (greedy ties, penalty, top-k/top-p/min-p, inverse CDF).
// Built everywhere; skipped with the reason where the CUDA backend or a GPU is missing.
#include "cuda_test_support.h"
#include "engine/kv_cache_format.h"
#include "engine/weights.h"
#include "kernels/cuda_api.h"

#include <QTest>
#include <algorithm>
#include <cmath>
#include <random>

using namespace parley;
using namespace parley::test;

namespace {

std::mt19937_64 rng(20261127);

std::vector<float> randomFloats(size_t n, float lo = -1.f, float hi = 1.f) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) {
        do x = d(rng);
        while (x == 0.f);
    }
    return v;
}

float roundHalf(float x) { return halfToFloat(floatToHalf(x)); }

// The 8-bit K/V cache's reference (engine/kv_cache_format.h) over rows [rows][nHeadKv][headDim]
// of FP16-rounded values: fills q8 and scales [rows][nHeadKv] (a scale per head vector), and
// replaces the values by what the cache gives back.
void quantizeCacheRows(std::vector<float>& x, int headDim, std::vector<int8_t>& q8, std::vector<float>& scales) {
    const size_t vectors = x.size() / headDim;
    q8.assign(x.size(), 0);
    scales.assign(vectors, 0.f);
    for (size_t i = 0; i < vectors; ++i) {
        scales[i] = quantizeKvHead(x.data() + i * headDim, headDim, q8.data() + i * headDim);
        for (int d = 0; d < headDim; ++d) x[i * headDim + d] = float(q8[i * headDim + d]) * scales[i];
    }
}

// ||a - b|| / ||b||, and false on any NaN.
double relativeError(const std::vector<float>& a, const std::vector<double>& b) {
    double num = 0, den = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        if (!std::isfinite(a[i])) return INFINITY;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return std::sqrt(num / std::max(den, 1e-300));
}

// x as the INT8/INT4 GEMV keeps it: each chunk of `chunk` elements rounded to int16 with step
// max|x| / 32767 (computed in float, as the kernel does).
void roundToInt16Chunks(std::vector<double>& x, int chunk) {
    for (size_t c0 = 0; c0 < x.size(); c0 += size_t(chunk)) {
        const size_t c1 = std::min(x.size(), c0 + size_t(chunk));
        float m = 0.f;
        for (size_t i = c0; i < c1; ++i) m = std::max(m, std::fabs(float(x[i])));
        const float mul = m > 0.f ? 32767.f / m : 0.f, step = m / 32767.f;
        for (size_t i = c0; i < c1; ++i) {
            const float q = std::clamp(std::nearbyint(float(x[i]) * mul), -32767.f, 32767.f);
            x[i] = double(q) * double(step);
        }
    }
}

#define CALL(expr)                                                                   \
    do {                                                                             \
        char err_[512] = {0};                                                        \
        auto errp_ = err_;                                                           \
        (void)errp_;                                                                 \
        if ((expr) != 0) QFAIL(err_);                                                \
    } while (0)

} // namespace

class TestCudaKernels : public QObject {
    Q_OBJECT
private slots:
    void initTestCase() {
        const std::string why = cudaUnavailableReason();
        if (!why.empty()) QSKIP(why.c_str());
    }

    void gemv_data() {
        QTest::addColumn<int>("precision");
        QTest::addColumn<int>("group");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<bool>("norm");
        QTest::addColumn<float>("xScale");
        for (bool norm : {false, true}) {
            const char* n = norm ? " norm" : "";
            QTest::newRow(qPrintable(QString("fp16 67x256%1").arg(n))) << 0 << 0 << 67 << 256 << norm << 1.f;
            QTest::newRow(qPrintable(QString("fp16 33x100%1").arg(n))) << 0 << 0 << 33 << 100 << norm << 1.f; // padded rows
            // (a width that is not a whole number of 16-byte pieces: the norm's weights are read
            // where they are, not bulk-copied into shared memory first)
            QTest::newRow(qPrintable(QString("fp16 33x90%1").arg(n))) << 0 << 0 << 33 << 90 << norm << 1.f;
            QTest::newRow(qPrintable(QString("fp16 512x4096%1").arg(n))) << 0 << 0 << 512 << 4096 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int8 g32 67x256%1").arg(n))) << 1 << 32 << 67 << 256 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int8 g16 40x176%1").arg(n))) << 1 << 16 << 40 << 176 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int8 g32 300x4096%1").arg(n))) << 1 << 32 << 300 << 4096 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int4 g32 67x160%1").arg(n))) << 2 << 32 << 67 << 160 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int4 g128 129x4096%1").arg(n))) << 2 << 128 << 129 << 4096 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int4 g32 96x11008%1").arg(n))) << 2 << 32 << 96 << 11008 << norm << 1.f;
            // (enough rows for blocks of 16 warps on every SM of a 132-SM GPU; the rows above
            // take the small matrices' blocks of 8)
            QTest::newRow(qPrintable(QString("fp16 2304x1024%1").arg(n))) << 0 << 0 << 2304 << 1024 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int8 g32 2304x1024%1").arg(n))) << 1 << 32 << 2304 << 1024 << norm << 1.f;
            QTest::newRow(qPrintable(QString("int4 g128 2304x1024%1").arg(n))) << 2 << 128 << 2304 << 1024 << norm << 1.f;
        }
        // INT8/INT4 round x to int16 per chunk: inputs as large as LLaMA's outlier activations
        // and small ones must both keep their precision.
        for (float scale : {3000.f, 1e-3f}) {
            const QString s = QString::number(scale);
            QTest::newRow(qPrintable("fp16 64x1024 x*" + s)) << 0 << 0 << 64 << 1024 << false << scale;
            QTest::newRow(qPrintable("int8 g32 64x1024 x*" + s)) << 1 << 32 << 64 << 1024 << false << scale;
            QTest::newRow(qPrintable("int4 g32 64x1024 x*" + s)) << 2 << 32 << 64 << 1024 << false << scale;
            QTest::newRow(qPrintable("int4 g128 64x11008 x*" + s)) << 2 << 128 << 64 << 11008 << false << scale;
        }
    }
    // FP16 weights multiply x in float; INT8/INT4 round each 16/32-element chunk of x to int16
    // with step max|x| / 32767 and sum exactly in integers, so their reference rounds x the same
    // way and the bound is float rounding for all three.
    void gemv() {
        QFETCH(int, precision);
        QFETCH(int, group);
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(bool, norm);
        QFETCH(float, xScale);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_gemv)>("parley_cuda_test_gemv");
        QVERIFY(fn);
        const std::vector<float> wf = randomFloats(size_t(rows) * cols);
        const WeightMatrix w = quantizeMatrix(wf.data(), rows, cols, Precision(precision), group ? group : 32);
        std::vector<float> x = randomFloats(size_t(cols), -2.f, 2.f);
        for (float& v : x) v *= xScale;
        if (xScale > 1.f) x[cols / 3] = 8 * xScale; // one outlier channel, as LLaMA's activations have
        const std::vector<float> nw = randomFloats(size_t(cols), 0.5f, 1.5f);
        const float eps = 1e-5f;
        std::vector<double> xin(cols);
        double ss = 0;
        for (float v : x) ss += double(v) * v;
        const float inv = 1.f / std::sqrt(float(ss / cols) + eps);
        for (int c = 0; c < cols; ++c) xin[c] = norm ? x[c] * inv * nw[c] : x[c];
        if (precision != 0) roundToInt16Chunks(xin, precision == 1 ? 16 : 32);
        std::vector<double> ref(rows);
        std::vector<float> row(cols);
        for (int r = 0; r < rows; ++r) {
            w.dequantizeRow(r, row.data());
            double s = 0;
            for (int c = 0; c < cols; ++c) s += double(row[c]) * xin[c];
            ref[r] = s;
        }
        std::vector<float> y(rows);
        CALL(fn(precision, w.groupSize, rows, cols, w.f16.data(), w.q8.data(), w.q4.data(), w.scales.data(), w.mins.data(),
                x.data(), norm ? nw.data() : nullptr, eps, y.data(), err_, sizeof(err_)));
        const double e = relativeError(y, ref);
        const double bound = 1e-4;
        qInfo("relative error %.2e", e);
        QVERIFY2(e < bound, qPrintable(QString("relative error %1 (bound %2)").arg(e).arg(bound)));
    }

    // A NaN in x (a broken activation) must reach every output row it touches, not be rounded
    // away to a finite int16.
    void gemvPropagatesNan_data() {
        QTest::addColumn<int>("precision");
        QTest::newRow("int8") << 1;
        QTest::newRow("int4") << 2;
    }
    void gemvPropagatesNan() {
        QFETCH(int, precision);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_gemv)>("parley_cuda_test_gemv");
        QVERIFY(fn);
        const int rows = 8, cols = 256;
        const std::vector<float> wf = randomFloats(size_t(rows) * cols);
        const WeightMatrix w = quantizeMatrix(wf.data(), rows, cols, Precision(precision), 32);
        std::vector<float> x = randomFloats(size_t(cols), -2.f, 2.f);
        x[77] = std::nanf("");
        std::vector<float> y(rows, 0.f);
        CALL(fn(precision, w.groupSize, rows, cols, w.f16.data(), w.q8.data(), w.q4.data(), w.scales.data(), w.mins.data(),
                x.data(), nullptr, 1e-5f, y.data(), err_, sizeof(err_)));
        for (int r = 0; r < rows; ++r) QVERIFY2(std::isnan(y[r]), qPrintable(QString("row %1 is %2").arg(r).arg(y[r])));
    }

    // The prefill GEMM: FP16 through cuBLAS; INT8/INT4 through the sm_90a kernel on a compute
    // capability 9.0 GPU (sm90: whether it must take the shape there) and through the
    // dequantization into FP16 slabs for cuBLAS (forced, and everywhere else). Shapes with rows
    // and tokens that are not whole 128-wide tiles, odd and even counts of 64-column tiles, both
    // outputs (float, and half between other columns as the QKV parts are written) and the
    // accumulation onto the residual.
    void gemm_data() {
        QTest::addColumn<int>("precision");
        QTest::addColumn<int>("group");
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::addColumn<int>("n");
        QTest::addColumn<int>("flags");
        QTest::addColumn<bool>("sm90");
        QTest::newRow("fp16 200x256 n=5") << 0 << 0 << 200 << 256 << 5 << 0 << false;
        for (int dq : {0, PARLEY_GEMM_DEQUANTIZE}) {
            const char* how = dq ? ", dequantized" : "";
            const bool k = !dq;
            QTest::newRow(qPrintable(QString("int8 g32 200x256 n=70%1").arg(how))) << 1 << 32 << 200 << 256 << 70 << dq << k;
            QTest::newRow(qPrintable(QString("int4 g32 200x256 n=70%1").arg(how))) << 2 << 32 << 200 << 256 << 70 << dq << k;
            QTest::newRow(qPrintable(QString("int4 g128 200x256 n=3%1").arg(how))) << 2 << 128 << 200 << 256 << 3 << dq << k;
            QTest::newRow(qPrintable(QString("int8 g128 300x1024 n=300 half out%1").arg(how)))
                << 1 << 128 << 300 << 1024 << 300 << (dq | PARLEY_GEMM_HALF_OUT) << k;
            QTest::newRow(qPrintable(QString("int4 g32 300x1024 n=300 accumulate%1").arg(how)))
                << 2 << 32 << 300 << 1024 << 300 << (dq | PARLEY_GEMM_ACCUMULATE) << k;
            QTest::newRow(qPrintable(QString("int4 g128 384x768 n=129 half out accumulate%1").arg(how)))
                << 2 << 128 << 384 << 768 << 129 << (dq | PARLEY_GEMM_HALF_OUT | PARLEY_GEMM_ACCUMULATE) << k;
            QTest::newRow(qPrintable(QString("int8 g64 64x640 n=17%1").arg(how))) << 1 << 64 << 64 << 640 << 17 << dq << k;
        }
        // On an H100 (132 SMs): 256-token tiles (enough rows to fill the GPU), and the split over
        // K of a float product too narrow to fill it.
        QTest::newRow("int4 g128 16896x256 n=130 half out") << 2 << 128 << 16896 << 256 << 130 << PARLEY_GEMM_HALF_OUT << true;
        QTest::newRow("int8 g64 16896x768 n=260 half out") << 1 << 64 << 16896 << 768 << 260 << PARLEY_GEMM_HALF_OUT << true;
        QTest::newRow("int8 g128 8448x512 n=200 accumulate") << 1 << 128 << 8448 << 512 << 200 << PARLEY_GEMM_ACCUMULATE << true;
        QTest::newRow("int4 g32 4224x512 n=300 accumulate") << 2 << 32 << 4224 << 512 << 300 << PARLEY_GEMM_ACCUMULATE << true;
        // The same two with the second half added by the norm that follows, as prefill does.
        QTest::newRow("int8 g128 8448x512 n=200 accumulate, added by the norm")
            << 1 << 128 << 8448 << 512 << 200 << (PARLEY_GEMM_ACCUMULATE | PARLEY_GEMM_ADD_LATER) << true;
        QTest::newRow("int4 g32 4224x512 n=300 accumulate, added by the norm")
            << 2 << 32 << 4224 << 512 << 300 << (PARLEY_GEMM_ACCUMULATE | PARLEY_GEMM_ADD_LATER) << true;
        // Gate/up with SwiGLU: in the 256-token kernel's epilogue (enough blocks to fill the GPU),
        // and through the product and the SwiGLU kernel (too few tokens; dequantized; FP16).
        // (16 and 12 tiles of 64 columns: the four-slot ring goes round more than once.)
        QTest::newRow("int4 g128 16896x1024 n=300 swiglu") << 2 << 128 << 16896 << 1024 << 300 << PARLEY_GEMM_SWIGLU << true;
        QTest::newRow("int8 g32 16896x768 n=300 swiglu") << 1 << 32 << 16896 << 768 << 300 << PARLEY_GEMM_SWIGLU << true;
        QTest::newRow("int4 g32 1024x256 n=90 swiglu") << 2 << 32 << 1024 << 256 << 90 << PARLEY_GEMM_SWIGLU << true;
        QTest::newRow("int4 g32 1024x256 n=300 swiglu, dequantized")
            << 2 << 32 << 1024 << 256 << 300 << (PARLEY_GEMM_SWIGLU | PARLEY_GEMM_DEQUANTIZE) << false;
        QTest::newRow("fp16 512x256 n=200 swiglu") << 0 << 0 << 512 << 256 << 200 << PARLEY_GEMM_SWIGLU << false;
        // Five groups a row (odd): not the sm_90a kernel's; the dequantization path takes it.
        QTest::newRow("int4 g128 130x640 n=40") << 2 << 128 << 130 << 640 << 40 << 0 << false;
        QTest::newRow("int8 g32 130x96 n=9") << 1 << 32 << 130 << 96 << 9 << 0 << false; // 96 columns: not whole tiles
    }
    void gemm() {
        QFETCH(int, precision);
        QFETCH(int, group);
        QFETCH(int, rows);
        QFETCH(int, cols);
        QFETCH(int, n);
        QFETCH(int, flags);
        QFETCH(bool, sm90);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_gemm)>("parley_cuda_test_gemm");
        QVERIFY(fn);
        const std::vector<float> wf = randomFloats(size_t(rows) * cols);
        const WeightMatrix w = quantizeMatrix(wf.data(), rows, cols, Precision(precision), group ? group : 32);
        std::vector<float> x = randomFloats(size_t(n) * cols);
        const bool accumulate = flags & PARLEY_GEMM_ACCUMULATE, halfOut = flags & PARLEY_GEMM_HALF_OUT;
        std::vector<float> y = accumulate ? randomFloats(size_t(n) * rows, -4.f, 4.f) : std::vector<float>(size_t(n) * rows);
        if (accumulate && halfOut)
            for (float& v : y) v = roundHalf(v);
        // Both operands as the tensor cores see them (FP16), each rounded once.
        std::vector<float> xHalf(x.size());
        for (size_t i = 0; i < x.size(); ++i) xHalf[i] = roundHalf(x[i]);
        std::vector<double> ref(size_t(n) * rows);
        std::vector<float> row(cols);
        for (int r = 0; r < rows; ++r) {
            w.dequantizeRow(r, row.data());
            for (float& v : row) v = roundHalf(v);
            for (int t = 0; t < n; ++t) {
                double s = accumulate ? y[size_t(t) * rows + r] : 0.0;
                const float* xt = xHalf.data() + size_t(t) * cols;
                for (int c = 0; c < cols; ++c) s += double(row[c]) * xt[c];
                ref[size_t(t) * rows + r] = s;
            }
        }
        const bool swiGlu = flags & PARLEY_GEMM_SWIGLU;
        if (swiGlu) { // silu(gate) * up, each rounded to half first as the product is stored
            const int ff = rows / 2;
            std::vector<double> act(size_t(n) * ff);
            for (int t = 0; t < n; ++t)
                for (int j = 0; j < ff; ++j) {
                    const double gate = roundHalf(float(ref[size_t(t) * rows + j]));
                    const double up = roundHalf(float(ref[size_t(t) * rows + ff + j]));
                    act[size_t(t) * ff + j] = gate / (1 + std::exp(-gate)) * up;
                }
            ref = act;
            y.resize(act.size());
        }
        int usedSm90 = -1;
        CALL(fn(precision, w.groupSize, rows, cols, n, w.f16.data(), w.q8.data(), w.q4.data(), w.scales.data(),
                w.mins.data(), x.data(), flags, y.data(), &usedSm90, err_, sizeof(err_)));
        const std::vector<GpuDevice> gpus = probeGpus();
        const bool hopper = !gpus.empty() && gpus[0].computeMajor == 9 && gpus[0].computeMinor == 0;
        QCOMPARE(usedSm90 & 1, int(sm90 && hopper));
        // (The fused epilogue serves more than 128 tokens and blocks enough to fill the GPU.)
        if (swiGlu && sm90 && hopper)
            QCOMPARE(bool(usedSm90 & 4), n > 128 && rows / 2 / 64 * ((n + 255) / 256) >= gpus[0].multiprocessors);
        if ((flags & PARLEY_GEMM_ADD_LATER) && sm90 && hopper)
            QVERIFY2(usedSm90 & 2, "the product was not split, so nothing was left for the norm to add");
        const double e = relativeError(y, ref);
        // Half output rounds each result once more (relative 2^-11 at most); SwiGLU rounds gate
        // and up, then its result.
        QVERIFY2(e < (swiGlu ? 2e-3 : halfOut ? 1e-3 : 1e-4), qPrintable(QString("relative error %1").arg(e)));
    }

    // Plain, and with an addend summed into x first and written back (the second half of a split
    // residual projection, added on the way into the next norm).
    void rmsnorm_data() {
        QTest::addColumn<bool>("add");
        QTest::newRow("plain") << false;
        QTest::newRow("x + addend") << true;
    }
    void rmsnorm() {
        QFETCH(bool, add);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_rmsnorm)>("parley_cuda_test_rmsnorm");
        QVERIFY(fn);
        const int n = 7, dim = 4100;
        const std::vector<float> x = randomFloats(size_t(n) * dim, -3.f, 3.f), w = randomFloats(size_t(dim), 0.5f, 1.5f);
        const std::vector<float> addend = randomFloats(size_t(n) * dim, -3.f, 3.f);
        std::vector<float> sum(x);
        if (add)
            for (size_t i = 0; i < sum.size(); ++i) sum[i] += addend[i];
        std::vector<double> ref(size_t(n) * dim);
        for (int t = 0; t < n; ++t) {
            double ss = 0;
            for (int i = 0; i < dim; ++i) ss += double(sum[t * dim + i]) * sum[t * dim + i];
            const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
            for (int i = 0; i < dim; ++i) ref[t * dim + i] = sum[t * dim + i] * inv * w[i];
        }
        std::vector<float> y(size_t(n) * dim), xOut(size_t(n) * dim, NAN);
        CALL(fn(n, dim, x.data(), add ? addend.data() : nullptr, w.data(), 1e-6f, y.data(), xOut.data(), err_,
                sizeof(err_)));
        QVERIFY(relativeError(y, ref) < 2e-3);
        if (add) QVERIFY2(xOut == sum, "x + addend written back is not the float sum");
    }

    void rope_data() {
        QTest::addColumn<bool>("neox");
        QTest::addColumn<int>("headDim");
        QTest::addColumn<bool>("kv8");
        QTest::newRow("adjacent pairs, 64") << false << 64 << false;
        QTest::newRow("half-split pairs, 64") << true << 64 << false;
        QTest::newRow("adjacent pairs, 12") << false << 12 << false;
        QTest::newRow("8-bit cache, half-split pairs, 128") << true << 128 << true;
        QTest::newRow("8-bit cache, adjacent pairs, 64") << false << 64 << true;
    }
    void rope() {
        QFETCH(bool, neox);
        QFETCH(int, headDim);
        QFETCH(bool, kv8);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_rope)>("parley_cuda_test_rope");
        auto fn8 = cudaSymbol<decltype(&parley_cuda_test_rope_int8)>("parley_cuda_test_rope_int8");
        QVERIFY(fn && fn8);
        const int n = 5, startPos = 300, nHead = 4, nHeadKv = 2, qDim = nHead * headDim, kvDim = nHeadKv * headDim;
        const int width = qDim + 2 * kvDim;
        std::vector<float> inv(headDim / 2);
        for (int i = 0; i < headDim / 2; ++i) inv[i] = float(std::pow(10000.0, -2.0 * i / headDim));
        std::vector<float> qkv = randomFloats(size_t(n) * width);
        for (float& v : qkv) v = roundHalf(v);
        std::vector<double> rq(size_t(n) * qDim), rk(size_t(n) * kvDim), rv(size_t(n) * kvDim);
        for (int t = 0; t < n; ++t) {
            const float* row = qkv.data() + size_t(t) * width;
            auto rotate = [&](const float* in, double* out, int heads) {
                for (int h = 0; h < heads; ++h)
                    for (int i = 0; i < headDim / 2; ++i) {
                        const int e0 = h * headDim + (neox ? i : 2 * i), e1 = neox ? e0 + headDim / 2 : e0 + 1;
                        const double a = double(startPos + t) * double(inv[i]);
                        out[e0] = in[e0] * std::cos(a) - in[e1] * std::sin(a);
                        out[e1] = in[e0] * std::sin(a) + in[e1] * std::cos(a);
                    }
            };
            rotate(row, rq.data() + size_t(t) * qDim, nHead);
            rotate(row + qDim, rk.data() + size_t(t) * kvDim, nHeadKv);
            for (int e = 0; e < kvDim; ++e) rv[size_t(t) * kvDim + e] = row[qDim + kvDim + e];
        }
        std::vector<float> q(rq.size()), k(rk.size()), v(rv.size());
        if (!kv8) {
            CALL(fn(n, startPos, nHead, nHeadKv, headDim, neox, inv.data(), qkv.data(), q.data(), k.data(), v.data(), err_,
                    sizeof(err_)));
            QVERIFY(relativeError(q, rq) < 2e-3);
            QVERIFY(relativeError(k, rk) < 2e-3);
            QVERIFY(relativeError(v, rv) < 1e-6);
            return;
        }
        // 8-bit: V is exact input, so its bytes and scales must equal the reference's; K's
        // rotation may round differently in the last bit of a half, so its bytes may be one off.
        std::vector<int8_t> k8(k.size(), 0x55), v8(v.size(), 0x55);
        std::vector<float> ks(size_t(n) * nHeadKv, NAN), vs(ks.size(), NAN);
        CALL(fn8(n, startPos, nHead, nHeadKv, headDim, neox, inv.data(), qkv.data(), q.data(), k8.data(), ks.data(),
                 v8.data(), vs.data(), err_, sizeof(err_)));
        QVERIFY(relativeError(q, rq) < 2e-3);
        std::vector<float> kRef(rk.size()), vRef(rv.size());
        for (size_t i = 0; i < rk.size(); ++i) kRef[i] = roundHalf(float(rk[i]));
        for (size_t i = 0; i < rv.size(); ++i) vRef[i] = roundHalf(float(rv[i]));
        std::vector<int8_t> k8Ref, v8Ref;
        std::vector<float> ksRef, vsRef;
        quantizeCacheRows(kRef, headDim, k8Ref, ksRef);
        quantizeCacheRows(vRef, headDim, v8Ref, vsRef);
        QVERIFY(v8 == v8Ref);
        QVERIFY(vs == vsRef);
        for (size_t i = 0; i < k8.size(); ++i) QVERIFY2(std::abs(k8[i] - k8Ref[i]) <= 1, qPrintable(QString("K byte %1").arg(i)));
        for (size_t i = 0; i < ks.size(); ++i) QVERIFY(std::abs(ks[i] - ksRef[i]) <= 1e-3f * ksRef[i]);
        for (size_t i = 0; i < k.size(); ++i) k[i] = float(k8[i]) * ks[i / headDim];
        QVERIFY(relativeError(k, rk) < 1e-2);
    }

    void attentionDecode_data() {
        QTest::addColumn<int>("nHead");
        QTest::addColumn<int>("nHeadKv");
        QTest::addColumn<int>("headDim");
        QTest::addColumn<int>("length");
        QTest::addColumn<int>("maxContext");
        QTest::addColumn<bool>("kv8");
        QTest::newRow("1 position") << 8 << 2 << 128 << 1 << 1024 << false;
        QTest::newRow("37 positions") << 8 << 2 << 128 << 37 << 1024 << false;
        QTest::newRow("1000 positions, split") << 8 << 2 << 128 << 1000 << 1024 << false;
        QTest::newRow("4096 positions, 32 heads") << 32 << 32 << 128 << 4096 << 4096 << false;
        QTest::newRow("GQA 9/3, head 64") << 9 << 3 << 64 << 700 << 2048 << false;
        QTest::newRow("head 12") << 4 << 1 << 12 << 300 << 512 << false;
        // Heads of 64 and 128 take the register kernel where chunks reach 128 positions (the
        // chunk grows with the context the graph is made for and shrinks with more KV heads; on
        // a 132-SM GPU these rows do, "4096 positions" too), one instance per group size bound
        // (1, 4, 8); the rows above with shorter chunks and head 96 take the shared-memory kernel.
        QTest::newRow("GQA 32/4, head 128, long") << 32 << 4 << 128 << 900 << 40000 << false;
        QTest::newRow("GQA 64/8, head 64, long") << 64 << 8 << 64 << 1200 << 16384 << false;
        QTest::newRow("GQA 64/16, head 128, long") << 64 << 16 << 128 << 1500 << 8192 << false;
        QTest::newRow("GQA 16/8, head 64, long") << 16 << 8 << 64 << 333 << 20000 << false;
        QTest::newRow("MHA 12 heads, head 64, long") << 12 << 12 << 64 << 2049 << 16384 << false;
        QTest::newRow("head 96") << 8 << 8 << 96 << 500 << 1024 << false;
        // The 8-bit cache always takes the register kernel: short and long chunks, each group
        // size bound, heads of 64 and 128.
        QTest::newRow("8-bit cache, 1 position") << 8 << 2 << 128 << 1 << 1024 << true;
        QTest::newRow("8-bit cache, 37 positions") << 8 << 2 << 128 << 37 << 1024 << true;
        QTest::newRow("8-bit cache, GQA 9/3, head 64") << 9 << 3 << 64 << 700 << 2048 << true;
        QTest::newRow("8-bit cache, 4096 positions, 32 heads") << 32 << 32 << 128 << 4096 << 4096 << true;
        QTest::newRow("8-bit cache, GQA 32/4, head 128, long") << 32 << 4 << 128 << 900 << 40000 << true;
        QTest::newRow("8-bit cache, GQA 64/8, head 64, long") << 64 << 8 << 64 << 1200 << 16384 << true;
        QTest::newRow("8-bit cache, MHA 12 heads, head 64, long") << 12 << 12 << 64 << 2049 << 16384 << true;
    }
    void attentionDecode() {
        QFETCH(int, nHead);
        QFETCH(int, nHeadKv);
        QFETCH(int, headDim);
        QFETCH(int, length);
        QFETCH(int, maxContext);
        QFETCH(bool, kv8);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_attention_decode)>("parley_cuda_test_attention_decode");
        auto fn8 = cudaSymbol<decltype(&parley_cuda_test_attention_decode_int8)>("parley_cuda_test_attention_decode_int8");
        QVERIFY(fn && fn8);
        const int kvDim = nHeadKv * headDim, G = nHead / nHeadKv;
        const std::vector<float> q = randomFloats(size_t(nHead) * headDim, -2.f, 2.f);
        std::vector<float> k = randomFloats(size_t(length) * kvDim), v = randomFloats(size_t(length) * kvDim);
        for (float& x : k) x = roundHalf(x);
        for (float& x : v) x = roundHalf(x);
        // 8-bit: the kernel gets the new row's halves and must store exactly the reference's
        // bytes and scales for it; every row is attended as the cache gives it back.
        const std::vector<float> kNew(k.end() - kvDim, k.end()), vNew(v.end() - kvDim, v.end());
        std::vector<int8_t> k8, v8;
        std::vector<float> ks, vs;
        if (kv8) {
            quantizeCacheRows(k, headDim, k8, ks);
            quantizeCacheRows(v, headDim, v8, vs);
        }
        std::vector<double> ref(size_t(nHead) * headDim);
        for (int h = 0; h < nHead; ++h) {
            const int kvh = h / G;
            std::vector<double> s(length);
            double m = -INFINITY;
            for (int j = 0; j < length; ++j) {
                double d = 0;
                for (int i = 0; i < headDim; ++i) d += double(q[h * headDim + i]) * k[size_t(j) * kvDim + kvh * headDim + i];
                s[j] = d / std::sqrt(double(headDim));
                m = std::max(m, s[j]);
            }
            double l = 0;
            for (double& x : s) l += (x = std::exp(x - m));
            for (int i = 0; i < headDim; ++i) {
                double o = 0;
                for (int j = 0; j < length; ++j) o += s[j] * v[size_t(j) * kvDim + kvh * headDim + i];
                ref[h * headDim + i] = o / l;
            }
        }
        std::vector<float> out(ref.size());
        if (kv8) {
            std::vector<int8_t> k8Got = k8, v8Got = v8;
            std::vector<float> ksGot = ks, vsGot = vs;
            std::fill(k8Got.end() - kvDim, k8Got.end(), int8_t(0x55));
            std::fill(v8Got.end() - kvDim, v8Got.end(), int8_t(0x55));
            std::fill(ksGot.end() - nHeadKv, ksGot.end(), NAN);
            std::fill(vsGot.end() - nHeadKv, vsGot.end(), NAN);
            CALL(fn8(nHead, nHeadKv, headDim, length, maxContext, q.data(), k8Got.data(), ksGot.data(), v8Got.data(),
                     vsGot.data(), kNew.data(), vNew.data(), out.data(), err_, sizeof(err_)));
            QVERIFY(k8Got == k8);
            QVERIFY(v8Got == v8);
            QVERIFY(ksGot == ks);
            QVERIFY(vsGot == vs);
        } else {
            CALL(fn(nHead, nHeadKv, headDim, length, maxContext, q.data(), k.data(), v.data(), out.data(), err_, sizeof(err_)));
        }
        const double e = relativeError(out, ref);
        QVERIFY2(e < 1e-4, qPrintable(QString("relative error %1").arg(e)));
    }

    void attentionPrefill_data() {
        QTest::addColumn<int>("headDim");
        QTest::addColumn<int>("startPos");
        QTest::addColumn<int>("n");
        QTest::addColumn<bool>("kv8");
        QTest::newRow("head 128, 70 tokens") << 128 << 0 << 70 << false;
        QTest::newRow("head 128, 130 after 40 cached") << 128 << 40 << 130 << false;
        QTest::newRow("head 64, 1 token after 33") << 64 << 33 << 1 << false;
        QTest::newRow("head 96, 65 tokens") << 96 << 0 << 65 << false;
        QTest::newRow("head 16 (simple path), 20 after 5") << 16 << 5 << 20 << false;
        QTest::newRow("8-bit cache, head 128, 130 after 40 cached") << 128 << 40 << 130 << true;
        QTest::newRow("8-bit cache, head 64, 70 tokens") << 64 << 0 << 70 << true;
    }
    void attentionPrefill() {
        QFETCH(int, headDim);
        QFETCH(int, startPos);
        QFETCH(int, n);
        QFETCH(bool, kv8);
        auto fn = cudaSymbol<decltype(&parley_cuda_test_attention_prefill)>("parley_cuda_test_attention_prefill");
        auto fn8 = cudaSymbol<decltype(&parley_cuda_test_attention_prefill_int8)>("parley_cuda_test_attention_prefill_int8");
        QVERIFY(fn && fn8);
        const int nHead = 4, nHeadKv = 2, G = 2, qDim = nHead * headDim, kvDim = nHeadKv * headDim, length = startPos + n;
        std::vector<float> q = randomFloats(size_t(n) * qDim, -2.f, 2.f), k = randomFloats(size_t(length) * kvDim),
                           v = randomFloats(size_t(length) * kvDim);
        for (auto* vec : {&q, &k, &v})
            for (float& x : *vec) x = roundHalf(x);
        std::vector<int8_t> k8, v8;
        std::vector<float> ks, vs;
        if (kv8) {
            quantizeCacheRows(k, headDim, k8, ks);
            quantizeCacheRows(v, headDim, v8, vs);
        }
        std::vector<double> ref(size_t(n) * qDim);
        for (int t = 0; t < n; ++t)
            for (int h = 0; h < nHead; ++h) {
                const int kvh = h / G, last = startPos + t;
                std::vector<double> s(last + 1);
                double m = -INFINITY;
                for (int j = 0; j <= last; ++j) {
                    double d = 0;
                    for (int i = 0; i < headDim; ++i)
                        d += double(q[size_t(t) * qDim + h * headDim + i]) * k[size_t(j) * kvDim + kvh * headDim + i];
                    s[j] = d / std::sqrt(double(headDim));
                    m = std::max(m, s[j]);
                }
                double l = 0;
                for (double& x : s) l += (x = std::exp(x - m));
                for (int i = 0; i < headDim; ++i) {
                    double o = 0;
                    for (int j = 0; j <= last; ++j) o += s[j] * v[size_t(j) * kvDim + kvh * headDim + i];
                    ref[size_t(t) * qDim + h * headDim + i] = o / l;
                }
            }
        std::vector<float> out(ref.size());
        if (kv8)
            CALL(fn8(nHead, nHeadKv, headDim, startPos, n, q.data(), k8.data(), ks.data(), v8.data(), vs.data(), out.data(),
                     err_, sizeof(err_)));
        else
            CALL(fn(nHead, nHeadKv, headDim, startPos, n, q.data(), k.data(), v.data(), out.data(), err_, sizeof(err_)));
        const double e = relativeError(out, ref);
        QVERIFY2(e < 5e-3, qPrintable(QString("relative error %1").arg(e)));
    }

    void sampling() {
        auto fn = cudaSymbol<decltype(&parley_cuda_test_sample)>("parley_cuda_test_sample");
        QVERIFY(fn);
        const int vocab = 32000;
        std::vector<float> logits = randomFloats(size_t(vocab), -5.f, 5.f);
        const int top = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
        int32_t token = -1;
        // Greedy, and top-k 1 at any temperature.
        CALL(fn(vocab, logits.data(), 0.f, 0, 1.f, 0.f, 1.f, nullptr, 0, 0.5f, &token, err_, sizeof(err_)));
        QCOMPARE(token, top);
        CALL(fn(vocab, logits.data(), 1.5f, 1, 1.f, 0.f, 1.f, nullptr, 0, 0.99f, &token, err_, sizeof(err_)));
        QCOMPARE(token, top);
        // Equal maxima: the lower index wins.
        std::vector<float> tie = logits;
        tie[100] = tie[31000] = 50.f;
        CALL(fn(vocab, tie.data(), 0.f, 0, 1.f, 0.f, 1.f, nullptr, 0, 0.f, &token, err_, sizeof(err_)));
        QCOMPARE(token, 100);
        // The repetition penalty pushes the winner down when it was seen.
        std::vector<float> pen = logits;
        pen[top] = 6.f;
        int second = 0;
        for (int i = 0; i < vocab; ++i)
            if (i != top && pen[i] > pen[second]) second = i;
        const int32_t hist[] = {top};
        CALL(fn(vocab, pen.data(), 0.f, 0, 1.f, 0.f, 3.f, hist, 1, 0.f, &token, err_, sizeof(err_)));
        QCOMPARE(token, second);
        // Inverse CDF over all tokens at temperature 1 matches the CPU's cumulative sums.
        for (float u : {0.01f, 0.37f, 0.5f, 0.93f}) {
            CALL(fn(vocab, logits.data(), 1.f, 0, 1.f, 0.f, 1.f, nullptr, 0, u, &token, err_, sizeof(err_)));
            const float mx = logits[top];
            double total = 0;
            for (float l : logits) total += std::exp(double(l) - mx);
            double before = 0;
            for (int i = 0; i < token; ++i) before += std::exp(double(logits[i]) - mx);
            const double after = before + std::exp(double(logits[token]) - mx);
            QVERIFY2(before / total <= u + 1e-4 && after / total >= u - 1e-4,
                     qPrintable(QString("u %1 picked %2 covering %3..%4").arg(u).arg(token).arg(before / total).arg(after / total)));
        }
        // Top-k 5: always one of the five largest.
        std::vector<int> order(vocab);
        for (int i = 0; i < vocab; ++i) order[i] = i;
        std::partial_sort(order.begin(), order.begin() + 5, order.end(), [&](int a, int b) { return logits[a] > logits[b]; });
        for (int i = 0; i < 20; ++i) {
            const float u = (i + 0.5f) / 20.f;
            CALL(fn(vocab, logits.data(), 2.f, 5, 1.f, 0.f, 1.f, nullptr, 0, u, &token, err_, sizeof(err_)));
            QVERIFY(std::find(order.begin(), order.begin() + 5, token) != order.begin() + 5);
        }
        // Top-p and min-p: one dominant token (p > 0.99) is all that is left.
        std::vector<float> peaked = logits;
        peaked[777] = 40.f;
        for (float u : {0.f, 0.5f, 0.999f}) {
            CALL(fn(vocab, peaked.data(), 1.f, 0, 0.9f, 0.f, 1.f, nullptr, 0, u, &token, err_, sizeof(err_)));
            QCOMPARE(token, 777);
            CALL(fn(vocab, peaked.data(), 1.f, 0, 1.f, 0.05f, 1.f, nullptr, 0, u, &token, err_, sizeof(err_)));
            QCOMPARE(token, 777);
        }
    }
};

QTEST_GUILESS_MAIN(TestCudaKernels)
#include "test_cuda_kernels.moc"
