// SwiGLU activation. See swiglu.h.
#include "kernels/swiglu.h"

namespace parley::cuda {

namespace {

__global__ void swiGluRowsKernel(const __half* __restrict__ gateUp, int64_t total, int nFf, __half* __restrict__ act) {
    pdlWait();
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
        const int64_t t = i / nFf, j = i % nFf;
        const float g = __half2float(gateUp[t * 2 * nFf + j]), u = __half2float(gateUp[t * 2 * nFf + nFf + j]);
        act[i] = __float2half_rn(silu(g) * u);
    }
}

__global__ void swiGluVectorKernel(const float* __restrict__ gateUp, int nFf, float* __restrict__ act) {
    pdlWait();
    pdlLaunchDependents();
    for (int j = blockIdx.x * blockDim.x + threadIdx.x; j < nFf; j += gridDim.x * blockDim.x)
        act[j] = silu(gateUp[j]) * gateUp[nFf + j];
}

} // namespace

void launchSwiGluRows(const LaunchContext& ctx, const __half* gateUp, int n, int nFf, __half* act) {
    const int64_t total = int64_t(n) * nFf;
    if (total <= 0) return;
    launchKernel(ctx, swiGluRowsKernel, dim3(unsigned(std::min<int64_t>(ceilDiv(total, 256), 65536))), dim3(256), 0,
                 "swiglu launch", gateUp, total, nFf, act);
}

void launchSwiGluVector(const LaunchContext& ctx, const float* gateUp, int nFf, float* act) {
    launchKernel(ctx, swiGluVectorKernel, dim3(unsigned(ceilDiv(nFf, 256))), dim3(256), 0, "swiglu launch", gateUp, nFf, act);
}

} // namespace parley::cuda
