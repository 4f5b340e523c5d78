// CPU matrix products for the weight formats of weights.h.
#include "engine/cpu_matmul.h"

#include "engine/error.h"
#include "engine/thread_pool.h"

#include <string>
#include <vector>

namespace parley {

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

void matmul(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, ThreadPool& pool) {
    checkMatmulArgs(W, x, nTokens, y);
    pool.parallelFor(W.rows, 4, [&](int64_t begin, int64_t end) {
        std::vector<float> row(size_t(W.cols));
        for (int64_t r = begin; r < end; ++r) {
            W.dequantizeRow(r, row.data());
            for (int64_t t = 0; t < nTokens; ++t) {
                const float* xt = x + t * W.cols;
                float sum = 0;
                for (int64_t c = 0; c < W.cols; ++c) sum += row[c] * xt[c];
                y[t * W.rows + r] = sum;
            }
        }
    });
}

} // namespace parley
