// RMSNorm over rows, one block per row. See rmsnorm.h.
#include "kernels/rmsnorm.h"

namespace parley::cuda {

namespace {

template <typename Out>
__global__ void rmsNormRowsKernel(const float* __restrict__ x, int64_t xStride, const float* __restrict__ w,
                                  float eps, int dim, Out* __restrict__ out) {
    __shared__ float scratch[32];
    pdlWait();
    const float* row = x + blockIdx.x * xStride;
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) s += row[i] * row[i];
    s = blockSum(s, scratch);
    const float scale = rsqrtf(s / float(dim) + eps);
    Out* o = out + int64_t(blockIdx.x) * dim;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        const float v = row[i] * scale * w[i];
        if constexpr (sizeof(Out) == 2) o[i] = __float2half_rn(v);
        else o[i] = v;
    }
}

} // namespace

void launchRmsNormRowsHalf(const LaunchContext& ctx, const float* x, int64_t xStride, const float* weight, float eps,
                           int n, int dim, __half* out) {
    if (n <= 0) return;
    launchKernel(ctx, rmsNormRowsKernel<__half>, dim3(n), dim3(256), 0, "rmsnorm launch", x, xStride, weight, eps, dim, out);
}

void launchRmsNormRowsFloat(const LaunchContext& ctx, const float* x, int64_t xStride, const float* weight, float eps,
                            int n, int dim, float* out) {
    if (n <= 0) return;
    launchKernel(ctx, rmsNormRowsKernel<float>, dim3(n), dim3(256), 0, "rmsnorm launch", x, xStride, weight, eps, dim, out);
}

} // namespace parley::cuda
