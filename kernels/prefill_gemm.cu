// cuBLAS prefill projections. See prefill_gemm.h.
#include "kernels/prefill_gemm.h"
#include "kernels/gemm_quantized_sm90a.h"
#include "kernels/quantize.h"
#include "kernels/swiglu.h"

namespace parley::cuda {

void throwCublasError(cublasStatus_t s, const char* what) {
    std::string msg = std::string("cuBLAS: ") + what + " failed: " + cublasGetStatusString(s);
    if (s == CUBLAS_STATUS_ALLOC_FAILED) msg = "out of GPU memory: " + msg;
    throw Error(msg);
}

namespace {

void gemmOne(const GemmContext& g, const __half* w, int64_t lda, int64_t rows, int64_t cols, const __half* x, int n,
             void* c, bool cFloat, int64_t ldc, int64_t rowOffset, float beta) {
    // Column-major view (cuBLAS): W row-major [rows][cols] is W^T with lda = cols, X row-major
    // [n][cols] is X^T with ldb = cols, and C^T (rows x n, ldc) = W X^T.
    const float alpha = 1.f;
    void* cAt = cFloat ? static_cast<void*>(static_cast<float*>(c) + rowOffset)
                       : static_cast<void*>(static_cast<__half*>(c) + rowOffset);
    const cublasStatus_t s = cublasGemmEx(g.handle, CUBLAS_OP_T, CUBLAS_OP_N, int(rows), n, int(cols), &alpha, w,
                                          CUDA_R_16F, int(lda), x, CUDA_R_16F, int(cols), &beta, cAt,
                                          cFloat ? CUDA_R_32F : CUDA_R_16F, int(ldc), CUBLAS_COMPUTE_32F,
                                          CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS) throwCublasError(s, "cublasGemmEx");
}

bool quantizedFits(const DeviceMatrix& w) {
#ifdef PARLEY_HAVE_SM90A_GEMM
    return quantizedGemmSm90Fits(w);
#else
    (void)w;
    return false;
#endif
}

} // namespace

bool quantizedGemmSm90Available(int ccMajor, int ccMinor) {
#ifdef PARLEY_HAVE_SM90A_GEMM
    return ccMajor == 9 && ccMinor == 0;
#else
    (void)ccMajor;
    (void)ccMinor;
    return false;
#endif
}

bool gemmNeedsScratch(const GemmContext& g, const DeviceMatrix& w) {
    return w.precision != Precision::FP16 && !(g.quantizedSm90 && quantizedFits(w));
}

void gemmRows(const LaunchContext& ctx, const GemmContext& g, const DeviceMatrix& w, const __half* x, int n,
              void* c, bool cFloat, int64_t ldc, int64_t rowOffset, float beta, const float** addLater) {
    if (addLater) *addLater = nullptr;
    if (n <= 0) return;
    const cublasStatus_t s = cublasSetStream(g.handle, ctx.stream);
    if (s != CUBLAS_STATUS_SUCCESS) throwCublasError(s, "cublasSetStream");
    if (w.precision == Precision::FP16) {
        gemmOne(g, static_cast<const __half*>(w.data), w.ld, w.rows, w.cols, x, n, c, cFloat, ldc, rowOffset, beta);
        return;
    }
#ifdef PARLEY_HAVE_SM90A_GEMM
    if (g.quantizedSm90 && quantizedFits(w) && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
        if (launchQuantizedGemmSm90(ctx, w, x, n, c, cFloat, ldc, rowOffset, beta, g.partial, g.partialFloats,
                                    addLater != nullptr))
            *addLater = g.partial;
        return;
    }
#endif
    // Slabs a multiple of 128 rows, so that every GEMM's output starts 16-byte aligned and
    // cuBLAS keeps to its tensor-core kernels.
    const int64_t perSlab = int64_t(g.scratchHalves / 2) / w.cols;
    int64_t slabRows = std::min<int64_t>(w.rows, perSlab / 128 * 128);
    if (slabRows <= 0) slabRows = std::min<int64_t>(w.rows, perSlab);
    if (slabRows <= 0) throw Error("prefill: the dequantization scratch is smaller than one weight row");
    const LaunchContext side{g.side ? g.side : ctx.stream, false};
    for (int64_t r0 = 0; r0 < w.rows; r0 += slabRows) {
        const int64_t rc = std::min(slabRows, w.rows - r0);
        GemmContext& gm = const_cast<GemmContext&>(g);
        const int b = gm.next;
        gm.next ^= 1;
        __half* slab = g.scratch + size_t(b) * (g.scratchHalves / 2);
        if (g.side) {
            PARLEY_CUDA_CHECK(cudaStreamWaitEvent(g.side, g.free[b], 0));
            launchDequantizeRows(side, w, r0, rc, slab);
            PARLEY_CUDA_CHECK(cudaEventRecord(g.ready[b], g.side));
            PARLEY_CUDA_CHECK(cudaStreamWaitEvent(ctx.stream, g.ready[b], 0));
        } else {
            launchDequantizeRows(ctx, w, r0, rc, slab);
        }
        gemmOne(g, slab, w.cols, rc, w.cols, x, n, c, cFloat, ldc, rowOffset + r0, beta);
        if (g.side) PARLEY_CUDA_CHECK(cudaEventRecord(g.free[b], ctx.stream));
    }
}

void gemmGateUpSwiGlu(const LaunchContext& ctx, const GemmContext& g, const DeviceMatrix& w, const __half* x, int n,
                      __half* wide, __half* act, bool* fused) {
    const int ff = int(w.rows / 2);
    if (fused) *fused = false;
    if (n <= 0) return;
#ifdef PARLEY_HAVE_SM90A_GEMM
    if (w.precision != Precision::FP16 && g.quantizedSm90 && quantizedFits(w) && reinterpret_cast<uintptr_t>(x) % 16 == 0 &&
        launchQuantizedGemmSm90SwiGlu(ctx, w, x, n, act, ff)) {
        if (fused) *fused = true;
        return;
    }
#endif
    gemmRows(ctx, g, w, x, n, wide, false, w.rows, 0, 0.f);
    launchSwiGluRows(ctx, wide, n, ff, act);
}

} // namespace parley::cuda
