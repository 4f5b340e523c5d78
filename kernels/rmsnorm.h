#pragma once
// RMSNorm (Zhang & Sennrich 2019): y = x / sqrt(mean(x^2) + eps) * weight, for the rows of a
// prefill batch. (Decode folds the norm into the next projection, gemv_kernel.cuh.)
#include "kernels/cuda_common.cuh"

namespace parley::cuda {

// x: [n][dim] floats (row stride xStride); out: [n][dim] half.
void launchRmsNormRowsHalf(const LaunchContext& ctx, const float* x, int64_t xStride, const float* weight, float eps,
                           int n, int dim, __half* out);
// x += addend ([n][dim], the second half of a split residual projection, prefill_gemm.h), written
// back, then the norm of the sum: the add costs a read of the addend instead of a pass of its own.
void launchAddRmsNormRowsHalf(const LaunchContext& ctx, float* x, int64_t xStride, const float* addend,
                              const float* weight, float eps, int n, int dim, __half* out);
// The same into floats (the last row before the output projection).
void launchRmsNormRowsFloat(const LaunchContext& ctx, const float* x, int64_t xStride, const float* weight, float eps,
                            int n, int dim, float* out);

} // namespace parley::cuda
