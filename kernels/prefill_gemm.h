#pragma once
// Prefill projections as matrix-matrix products on the tensor cores (FP16 in, FP32 accumulate).
// FP16 weights go to cuBLAS. INT8/INT4 weights on a compute capability 9.0 GPU go to
// gemm_quantized_sm90a.cu, which reads the quantized tiles itself. Elsewhere they are
// dequantized a slab of rows at a time into one of two FP16 scratch buffers on a side stream
// while cuBLAS multiplies the other slab, so that the scratch stays small; that costs quantized
// prefill about a third of its speed (docs/benchmarks.md: the dequantization does not hide under
// the GEMMs, both fill the GPU).
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
    bool quantizedSm90 = false;  // INT8/INT4 through gemm_quantized_sm90a.cu where it fits (no scratch)
    float* partial = nullptr;    // its split products' second halves (partialFloats floats; may be null)
    size_t partialFloats = 0;
};

// Whether gemm_quantized_sm90a.cu's kernel was built and runs on this device (compute capability
// 9.0 exactly: sm_90a code runs nowhere else).
bool quantizedGemmSm90Available(int ccMajor, int ccMinor);
// Whether gemmRows needs the dequantization scratch for this matrix (with g.quantizedSm90 set,
// INT8/INT4 matrices the sm_90a kernel takes do not, given x 16-byte aligned).
bool gemmNeedsScratch(const GemmContext& g, const DeviceMatrix& w);

// C rows [rowOffset, rowOffset + W.rows) of each token: C[t][rowOffset + r] = beta * C + sum_k W[r][k] X[t][k].
// X: half [n][W.cols]; C: [n][ldc] of half (cFloat false) or float (cFloat true). Where the
// product is split over its columns (gemm_quantized_sm90a.h) and addLater is given, the second
// half's sums are not added here: *addLater points to them, [n][W.rows] floats in g.partial, for
// the caller to add before anything reads C (launchAddRmsNormRowsHalf does it on the way to
// the next norm, saving a pass over C); else *addLater is null.
void gemmRows(const LaunchContext& ctx, const GemmContext& g, const DeviceMatrix& w, const __half* x, int n,
              void* c, bool cFloat, int64_t ldc, int64_t rowOffset, float beta, const float** addLater = nullptr);

// The gate/up projection and SwiGLU: act [n][W.rows / 2] = silu(gate) * up with W's rows
// [gate; up]. On the sm_90a kernel's fused epilogue where it takes the shape (no [n][W.rows]
// product written and read back); else the product into `wide` ([n][W.rows] half), then
// launchSwiGluRows. Both give the same bits. *fused (may be null): which way it went.
void gemmGateUpSwiGlu(const LaunchContext& ctx, const GemmContext& g, const DeviceMatrix& w, const __half* x, int n,
                      __half* wide, __half* act, bool* fused = nullptr);

[[noreturn]] void throwCublasError(cublasStatus_t s, const char* what);

} // namespace parley::cuda
