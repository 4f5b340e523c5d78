// Token embedding lookup. See embedding.h.
#include "kernels/dequant.cuh"
#include "kernels/embedding.h"

namespace parley::cuda {

namespace {

__global__ void embedRowsKernel(MatrixView m, int64_t rows, const int32_t* __restrict__ tokens,
                                float* __restrict__ resid, int* badToken) {
    pdlWait();
    const int32_t t = tokens[blockIdx.x];
    float* out = resid + int64_t(blockIdx.x) * m.cols;
    const bool ok = t >= 0 && t < rows;
    if (!ok && threadIdx.x == 0) *badToken = 1;
    for (int64_t c = threadIdx.x; c < m.cols; c += blockDim.x) out[c] = ok ? weightAt(m, t, c) : 0.f;
}

__global__ void embedDecodeKernel(MatrixView m, int64_t rows, const int32_t* __restrict__ token,
                                  float* __restrict__ resid, float* __restrict__ ssq, int ssqCount, int* badToken) {
    __shared__ float scratch[32];
    pdlWait();
    pdlLaunchDependents();
    const int32_t t = *token;
    const bool ok = t >= 0 && t < rows;
    if (!ok && threadIdx.x == 0) *badToken = 1;
    float s = 0.f;
    for (int64_t c = threadIdx.x; c < m.cols; c += blockDim.x) {
        const float v = ok ? weightAt(m, t, c) : 0.f;
        resid[c] = v;
        s += v * v;
    }
    s = blockSum(s, scratch);
    if (threadIdx.x == 0) ssq[0] = s;
    for (int i = 1 + threadIdx.x; i < ssqCount; i += blockDim.x) ssq[i] = 0.f;
}

} // namespace

void launchEmbedRows(const LaunchContext& ctx, const DeviceMatrix& table, const int32_t* tokens, int n, float* resid,
                     int* badToken) {
    if (n <= 0) return;
    launchKernel(ctx, embedRowsKernel, dim3(n), dim3(256), 0, "embedding launch", viewOf(table), table.rows, tokens,
                 resid, badToken);
}

void launchEmbedDecode(const LaunchContext& ctx, const DeviceMatrix& table, const int32_t* token, float* resid,
                       float* ssq, int ssqCount, int* badToken) {
    launchKernel(ctx, embedDecodeKernel, dim3(1), dim3(1024), 0, "embedding launch", viewOf(table), table.rows, token,
                 resid, ssq, ssqCount, badToken);
}

} // namespace parley::cuda
