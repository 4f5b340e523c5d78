#pragma once
// Internal to the CPU matrix products (cpu_matmul.cpp, cpu_matmul_avx2.cpp): activations
// quantized to int16 for the integer dot products of INT8 and INT4 weights, and the SIMD
// kernels.
#include "engine/weights.h"

#include <cstdint>
#include <vector>

namespace parley::detail {

// Activations x[nTokens][cols] rounded to int16 per block of 32 (symmetric, step
// d = amax/32767), so each value is off by at most amax/65534: far below the weights' own
// rounding, and the products by vpmaddwd (int16 x int16 -> int32) are exact. (llama.cpp rounds
// to int8, step amax/127, for vpmaddubsw; that is enough to change the answers of small
// quantized models such as SmolLM2-135M Q4_1, and int16 costs 0-14% more time here.)
// Only whole blocks are quantized; the last cols % 32 values (possible with 16-wide groups) are
// handled from the float activations.
struct QuantizedActivations {
    int64_t nTokens = 0;
    int64_t cols = 0;
    int64_t blocks = 0;             // whole blocks of 32 per token
    bool int4Order = false;         // within a block: the 16 even elements, then the 16 odd ones
    std::vector<int16_t> q;         // [nTokens][blocks * 32]
    std::vector<float> d;           // [nTokens][blocks] step of each block
    // INT4 only: sum over each weight group of the float activations, so that
    // sum_c (scale q_c + min) x_c = scale * sum q_c xq_c + min * groupSum for whole groups.
    int64_t groups = 0;             // whole groups (within whole blocks) per token
    std::vector<float> groupSum;    // [nTokens][groups]
};

void quantizeActivations(const float* x, int64_t nTokens, int64_t cols, bool int4Order, int groupSize,
                         QuantizedActivations& out);

// True when this build has the AVX2 kernels (compiled with -mavx2 -mfma -mf16c or -march=native
// on a CPU that has them).
bool haveAvx2Kernels();
// Whether the AVX2 kernels handle this matrix (group sizes 16 or a multiple of 32).
bool avx2Handles(const WeightMatrix& W);
// y[t][r] for rows [rowBegin, rowEnd) and all tokens. qa: the quantized activations (INT8/INT4).
void matmulRowsAvx2(const WeightMatrix& W, const float* x, const QuantizedActivations* qa, int64_t nTokens,
                    float* y, int64_t rowBegin, int64_t rowEnd);

} // namespace parley::detail
