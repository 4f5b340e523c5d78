#pragma once
// Matrix products of the CPU backend: y[t][r] = sum_c W[r][c] * x[t][c] for a batch of
// nTokens activation rows, for each weight format of weights.h. One token (decode) is a matrix-
// vector product bound by reading the weights; many tokens (prefill) reuse each weight row
// for every token while it is in cache. Activations are FP32.
#include "engine/weights.h"

namespace parley {

class ThreadPool;

// x: [nTokens][W.cols], y: [nTokens][W.rows]. Uses SIMD where the CPU has it.
// Accuracy: FP16 accumulates in float. INT8/INT4 (with AVX2) round the activations to int16 per
// block of 32 (step max|x_block|/32767) and use integer dot products, so |y - matmulReference|
// <= sum over blocks of sum|w - min| * max|x_block| / 65534 plus float rounding (checked in
// tests/test_matmul.cpp): about 5 significant digits, unlike llama.cpp's int8 activations.
void matmul(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, ThreadPool& pool);
// The simple reference every fast path is checked against: dequantizeRow + double accumulation.
void matmulReference(const WeightMatrix& W, const float* x, int64_t nTokens, float* y);

} // namespace parley
