// RMSNorm over rows, one block per row. See rmsnorm.h.
#include "kernels/rmsnorm.h"

namespace parley::cuda {

namespace {

// With an addend, row += addend first (each thread writes back the elements it later reads again).
template <typename Out>
__global__ void rmsNormRowsKernel(float* x, int64_t xStride, const float* __restrict__ addend,
                                  const float* __restrict__ w, float eps, int dim, Out* __restrict__ out) {
    __shared__ float scratch[32];
    pdlWait();
    float* row = x + blockIdx.x * xStride;
    const float* add = addend ? addend + int64_t(blockIdx.x) * dim : nullptr;
    float s = 0.f;
    for (int i = threadIdx.x; i < dim; i += blockDim.x) {
        float v = row[i];
        if (add) row[i] = v += add[i];
        s += v * v;
    }
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
    // (Without an addend the kernel does not write x.)
    launchAddRmsNormRowsHalf(ctx, const_cast<float*>(x), xStride, nullptr, weight, eps, n, dim, out);
}

void launchAddRmsNormRowsHalf(const LaunchContext& ctx, float* x, int64_t xStride, const float* addend,
                              const float* weight, float eps, int n, int dim, __half* out) {
    if (n <= 0) return;
    launchKernel(ctx, rmsNormRowsKernel<__half>, dim3(n), dim3(256), 0, "rmsnorm launch", x, xStride, addend, weight, eps,
                 dim, out);
}

void launchRmsNormRowsFloat(const LaunchContext& ctx, const float* x, int64_t xStride, const float* weight, float eps,
                            int n, int dim, float* out) {
    if (n <= 0) return;
    launchKernel(ctx, rmsNormRowsKernel<float>, dim3(n), dim3(256), 0, "rmsnorm launch", const_cast<float*>(x), xStride,
                 static_cast<const float*>(nullptr), weight, eps, dim, out);
}

} // namespace parley::cuda
