#pragma once
// Matrix products of the CPU backend: y[t][r] = sum_c W[r][c] * x[t][c] for a batch of
// nTokens activation rows, for each weight format of weights.h. One token (decode) is a matrix-
// vector product bound by reading the weights; many tokens (prefill) reuse each weight row
// for every token while it is in cache. Activations are FP32.
#include "engine/weights.h"

namespace parley {

class ThreadPool;

// x: [nTokens][W.cols], y: [nTokens][W.rows]. Uses SIMD where the CPU has it.
// Accuracy: FP16 accumulates in float. INT8/INT4 (with AVX2) round the activations to int8 per
// block of 32 (step max|x_block|/127, as llama.cpp's q8_0 activations) and use integer dot
// products, so |y - matmulReference| <= sum over blocks of sum|w| * max|x_block| / 254 plus float
// rounding (checked in tests/test_matmul.cpp).
void matmul(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, ThreadPool& pool);
// The simple reference every fast path is checked against: dequantizeRow + double accumulation.
void matmulReference(const WeightMatrix& W, const float* x, int64_t nTokens, float* y);

} // namespace parley
