#pragma once
// Prefill projections of INT8/INT4 weights on Hopper (compute capability 9.0) without an FP16
// copy of the weights: each block streams its tile of quantized rows and their scales into
// shared memory, converts them in registers to FP16 (exactly as the dequantization kernel does)
// and multiplies them on the tensor cores with wgmma, the activations read from shared memory.
// The weights stay in the GEMV's layout (device_matrix.h): one copy serves decode and prefill.
// Built only for sm_90a (wgmma exists nowhere else); other GPUs keep prefill_gemm.cu's
// dequantize-then-cuBLAS path.
#include "kernels/cuda_common.cuh"
#include "kernels/device_matrix.h"

namespace parley::cuda {

// Whether the kernel takes this matrix: INT8/INT4, columns a multiple of 64, groups a power of
// two from 32 up with an even count a row, 16-byte aligned data. x must be 16-byte aligned too.
bool quantizedGemmSm90Fits(const DeviceMatrix& w);

// C[t][rowOffset + r] = beta * C[t][rowOffset + r] + sum_k W[r][k] X[t][k] for t < n, r < W.rows.
// X: half [n][W.cols]; C: [n][ldc] of half (cFloat false) or float (cFloat true). Only call on a
// compute capability 9.0 device, for a matrix that quantizedGemmSm90Fits. `partial` (at least
// W.rows * n floats, or null): scratch that lets a float product too small to fill the GPU split
// its columns over two blocks; the second half's sums [n][W.rows] are then added to C by a
// small kernel, or with deferAdd left in `partial` for the caller to add (returns true).
bool launchQuantizedGemmSm90(const LaunchContext& ctx, const DeviceMatrix& w, const __half* x, int n, void* c,
                             bool cFloat, int64_t ldc, int64_t rowOffset, float beta, float* partial,
                             size_t partialFloats, bool deferAdd);

// The gate/up projection with SwiGLU in its epilogue: W's rows are [gate; up], W.rows / 2 each;
// act[t][j] = silu(gate) * up as half, the same bits as the plain product into half followed by
// swiglu.cu's launchSwiGluRows, without writing and reading back the [n][W.rows] product.
// Returns false, launching nothing, for shapes the fused epilogue does not serve (up to 128
// tokens, too few blocks to fill the GPU, gate rows not a multiple of 64).
bool launchQuantizedGemmSm90SwiGlu(const LaunchContext& ctx, const DeviceMatrix& w, const __half* x, int n, __half* act,
                                   int64_t ldAct);

} // namespace parley::cuda
