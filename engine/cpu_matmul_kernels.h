#pragma once
// Internal to the CPU matrix products (cpu_matmul.cpp, cpu_matmul_avx2.cpp): activations
// quantized to integers for the integer dot products of INT8 and INT4 weights, and the SIMD
// kernels.
#include "engine/weights.h"

#include <cstdint>
#include <vector>

namespace parley {
class ThreadPool;
}

namespace parley::detail {

// How activations are rounded before the integer dot products with INT8/INT4 weights.
//   Int16 (the default): per block of 32, symmetric, step d = amax/32767, so each value is off by
//     at most amax/65534 — 258 times finer than int8 and far below the weights' own rounding;
//     products by vpmaddwd (int16 x int16 -> int32).
//   Int8: step amax/127, the scheme of llama.cpp's q8_0 activations, products by vpmaddubsw.
//     Rounding by 1/254 of a block's largest value is enough to change the answers of small
//     quantized models (SmolLM2-135M Q4_1), so it is only used when asked for explicitly.
enum class ActivationRounding { Int16, Int8 };

// Activations x[nTokens][cols] rounded per block of 32 (see ActivationRounding). Only whole
// blocks are quantized; the last cols % 32 values (possible with 16-wide groups) are handled
// from the float activations.
struct QuantizedActivations {
    ActivationRounding rounding = ActivationRounding::Int16;
    int64_t nTokens = 0;
    int64_t cols = 0;
    int64_t blocks = 0;             // whole blocks of 32 per token
    bool int4Order = false;         // within a block: the 16 even elements, then the 16 odd ones
    std::vector<int8_t> q8;         // Int8: [nTokens][blocks * 32]
    std::vector<int16_t> q16;       // Int16: [nTokens][blocks * 32]
    std::vector<float> d;           // [nTokens][blocks] step of each block
    // INT4 only: sum over each weight group of the activations, so that
    // sum_c (scale q_c + min) x_c = scale * sum q_c xq_c + min * groupSum for whole groups.
    // Int16: from the float activations (exact up to float rounding); Int8: d * sum of the
    // quantized values, as llama.cpp does.
    int64_t groups = 0;             // whole groups (within whole blocks) per token
    std::vector<float> groupSum;    // [nTokens][groups]
};

void quantizeActivations(const float* x, int64_t nTokens, int64_t cols, bool int4Order, int groupSize,
                         ActivationRounding rounding, QuantizedActivations& out);

// The rounding `matmul` uses for INT8/INT4 weights with the AVX2 kernels: Int16 unless the
// environment variable PARLEY_INT8_ACTIVATIONS=1 asks for llama.cpp's int8 scheme (faster, less
// accurate; for comparisons). Read once.
ActivationRounding defaultActivationRounding();

// `matmul` with an explicit activation rounding (tests and benchmarks compare the two).
void matmulWithRounding(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, ThreadPool& pool,
                        ActivationRounding rounding);

// True when this build has the AVX2 kernels (compiled with -mavx2 -mfma -mf16c or -march=native
// on a CPU that has them).
bool haveAvx2Kernels();
// Whether the AVX2 kernels handle this matrix (group sizes 16 or a multiple of 32).
bool avx2Handles(const WeightMatrix& W);
// y[t][r] for rows [rowBegin, rowEnd) and all tokens. qa: the quantized activations (INT8/INT4).
void matmulRowsAvx2(const WeightMatrix& W, const float* x, const QuantizedActivations* qa, int64_t nTokens,
                    float* y, int64_t rowBegin, int64_t rowEnd);

} // namespace parley::detail
