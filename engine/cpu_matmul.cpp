// CPU matrix products for the weight formats of weights.h: the reference, the dispatch to the
// SIMD kernels (cpu_matmul_avx2.cpp), a portable fallback, and the activation quantization the
// integer kernels use.
//
// Work is split by output rows across the ThreadPool: every thread streams its own rows of W
// once and uses each row (or tile of rows) for every token while it is in cache, so decode reads
// the weights once per token and prefill reads them once per tile of tokens.
#include "engine/cpu_matmul.h"

#include "engine/cpu_matmul_kernels.h"
#include "engine/error.h"
#include "engine/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace parley {

namespace detail {

void quantizeActivations(const float* x, int64_t nTokens, int64_t cols, bool int4Order, int groupSize,
                         QuantizedActivations& out) {
    out.nTokens = nTokens;
    out.cols = cols;
    out.blocks = cols / 32;
    out.int4Order = int4Order;
    const int64_t blocks = out.blocks;
    out.q.resize(size_t(nTokens * blocks * 32));
    out.d.resize(size_t(nTokens * blocks));
    // Sums per 16 values (the smallest group size the kernels take), combined into groups below.
    std::vector<float> halfSums(size_t(blocks * 2));
    out.groups = int4Order && groupSize > 0 ? blocks * 32 / groupSize : 0;
    out.groupSum.assign(size_t(nTokens * out.groups), 0.0f);
    for (int64_t t = 0; t < nTokens; ++t) {
        for (int64_t b = 0; b < blocks; ++b) {
            const float* xb = x + t * cols + b * 32;
            float amax = 0;
            for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(xb[i]));
            const float d = amax / 32767.0f;
            const float inv = amax > 0 ? 32767.0f / amax : 0.0f;
            int16_t* qb = out.q.data() + (t * blocks + b) * 32;
            float sum0 = 0, sum1 = 0;
            for (int i = 0; i < 32; ++i) {
                // |xb[i] * inv| <= 32767 (1 + 2^-23), which rounds to at most 32767.
                const int v = int(std::nearbyint(xb[i] * inv));
                (i < 16 ? sum0 : sum1) += xb[i];
                // INT4 weights hold element 2j in the low nibble and 2j+1 in the high nibble of
                // byte j; the kernel unpacks the low nibbles of a block, then the high ones.
                const int pos = int4Order ? (i % 2 == 0 ? i / 2 : 16 + i / 2) : i;
                qb[pos] = int16_t(v);
            }
            out.d[size_t(t * blocks + b)] = d;
            halfSums[size_t(2 * b)] = sum0;
            halfSums[size_t(2 * b + 1)] = sum1;
        }
        for (int64_t g = 0; g < out.groups; ++g) {
            float s = 0;
            for (int64_t h = g * groupSize / 16; h < (g + 1) * groupSize / 16; ++h) s += halfSums[size_t(h)];
            out.groupSum[size_t(t * out.groups + g)] = s;
        }
    }
}

} // namespace detail

static void checkMatmulArgs(const WeightMatrix& W, const float* x, int64_t nTokens, const float* y) {
    if (nTokens < 0) throw Error("matmul: negative token count " + std::to_string(nTokens));
    if (nTokens > 0 && (!x || !y)) throw Error("matmul: missing input or output buffer");
    if (W.rows <= 0 || W.cols <= 0) throw Error("matmul: empty weight matrix");
    const size_t n = size_t(W.rows) * size_t(W.cols);
    bool ok = true;
    switch (W.precision) {
    case Precision::FP16: ok = W.f16.size() == n; break;
    case Precision::INT8:
        ok = W.groupSize > 0 && W.cols % W.groupSize == 0 && W.q8.size() == n &&
             W.scales.size() == size_t(W.rows * W.groupsPerRow());
        break;
    case Precision::INT4:
        ok = W.groupSize > 0 && W.groupSize % 2 == 0 && W.cols % W.groupSize == 0 && W.q4.size() == n / 2 &&
             W.scales.size() == size_t(W.rows * W.groupsPerRow()) && W.mins.size() == W.scales.size();
        break;
    }
    if (!ok)
        throw Error("matmul: " + std::string(precisionName(W.precision)) + " weight matrix " + std::to_string(W.rows) +
                    "x" + std::to_string(W.cols) + " has storage that does not match its shape");
}

void matmulReference(const WeightMatrix& W, const float* x, int64_t nTokens, float* y) {
    checkMatmulArgs(W, x, nTokens, y);
    std::vector<float> row(size_t(W.cols));
    for (int64_t r = 0; r < W.rows; ++r) {
        W.dequantizeRow(r, row.data());
        for (int64_t t = 0; t < nTokens; ++t) {
            const float* xt = x + t * W.cols;
            double sum = 0;
            for (int64_t c = 0; c < W.cols; ++c) sum += double(row[c]) * double(xt[c]);
            y[t * W.rows + r] = float(sum);
        }
    }
}

// Portable path: each row dequantized once, then dotted with every token.
static void matmulRowsPortable(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, int64_t rowBegin,
                               int64_t rowEnd) {
    std::vector<float> row(size_t(W.cols));
    for (int64_t r = rowBegin; r < rowEnd; ++r) {
        W.dequantizeRow(r, row.data());
        for (int64_t t = 0; t < nTokens; ++t) {
            const float* xt = x + t * W.cols;
            float sum = 0;
            for (int64_t c = 0; c < W.cols; ++c) sum += row[c] * xt[c];
            y[t * W.rows + r] = sum;
        }
    }
}

void matmul(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, ThreadPool& pool) {
    checkMatmulArgs(W, x, nTokens, y);
    if (nTokens == 0) return;
    if (!detail::haveAvx2Kernels() || !detail::avx2Handles(W)) {
        pool.parallelFor(W.rows, 4, [&](int64_t begin, int64_t end) { matmulRowsPortable(W, x, nTokens, y, begin, end); });
        return;
    }
    // Activations are quantized once per call, before the rows are split (each thread reads them).
    thread_local detail::QuantizedActivations qa;
    const bool integer = W.precision != Precision::FP16;
    if (integer)
        detail::quantizeActivations(x, nTokens, W.cols, W.precision == Precision::INT4, W.groupSize, qa);
    const detail::QuantizedActivations* qaPtr = integer ? &qa : nullptr;
    // Rows in multiples of 4 (the kernels' row tile).
    pool.parallelFor(W.rows, 4, [&](int64_t begin, int64_t end) {
        detail::matmulRowsAvx2(W, x, qaPtr, nTokens, y, begin, end);
    });
}

} // namespace parley
