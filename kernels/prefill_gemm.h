#pragma once
// Prefill projections as matrix-matrix products on the tensor cores through cuBLAS (FP16 in,
// FP32 accumulate). Quantized weights are dequantized a slab of rows at a time into one of two
// FP16 scratch buffers on a side stream while the tensor cores multiply the other slab, so that
// the scratch stays small. The dequantization was meant to hide under the GEMMs; measured on an
// H100 it does not (both kernels fill the GPU), and it costs quantized prefill a third of its
// speed (docs/benchmarks.md): a GEMM that dequantizes tiles in shared memory is the way out.
#include "kernels/cuda_common.cuh"
#include "kernels/device_matrix.h"

#include <cublas_v2.h>

namespace parley::cuda {

struct GemmContext {
    cublasHandle_t handle = nullptr;
    __half* scratch = nullptr;   // two dequantization slabs, scratchHalves in all
    size_t scratchHalves = 0;
    cudaStream_t side = nullptr; // dequantization stream (null: dequantize on the main stream)
    cudaEvent_t ready[2] = {};   // slab b dequantized
    cudaEvent_t free[2] = {};    // slab b's GEMM done
    int next = 0;                // the slab to fill next
};

// C rows [rowOffset, rowOffset + W.rows) of each token: C[t][rowOffset + r] = beta * C + sum_k W[r][k] X[t][k].
// X: half [n][W.cols]; C: [n][ldc] of half (cFloat false) or float (cFloat true).
void gemmRows(const LaunchContext& ctx, const GemmContext& g, const DeviceMatrix& w, const __half* x, int n,
              void* c, bool cFloat, int64_t ldc, int64_t rowOffset, float beta);

[[noreturn]] void throwCublasError(cublasStatus_t s, const char* what);

} // namespace parley::cuda
