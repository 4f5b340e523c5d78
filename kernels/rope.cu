// Rotary embedding for prefill. See rope.h. (The frequencies come from the engine,
// ropeInverseFrequencies in engine/model_config.cpp, so both backends turn by the same angles.)
#include "kernels/rope.cuh"
#include "kernels/rope.h"


namespace parley::cuda {

namespace {

// One block per token; threads walk the q/k pairs, then copy v.
__global__ void ropeAndStoreKernel(RopeArgs r, const __half* __restrict__ qkv, int startPos, __half* __restrict__ q,
                                   __half* __restrict__ kCache, __half* __restrict__ vCache) {
    const int t = blockIdx.x;
    const int qDim = r.nHead * r.headDim, kvDim = r.nHeadKv * r.headDim, width = qDim + 2 * kvDim;
    const int half = r.headDim / 2;
    const int pos = startPos + t;
    const __half* row = qkv + int64_t(t) * width;
    const int ropePairs = (qDim + kvDim) / 2;
    for (int p = threadIdx.x; p < ropePairs; p += blockDim.x) {
        const int nQ = qDim / 2;
        const int base = p < nQ ? 0 : qDim;
        const int pp = p < nQ ? p : p - nQ;
        const int head = pp / half, i = pp % half;
        const int e0 = base + head * r.headDim + (r.neox ? i : 2 * i);
        const int e1 = r.neox ? e0 + half : e0 + 1;
        float x0 = __half2float(row[e0]), x1 = __half2float(row[e1]);
        if (r.bias) {
            x0 += r.bias[e0];
            x1 += r.bias[e1];
        }
        ropeRotate(x0, x1, float(pos) * r.invFreq[i]);
        if (base == 0) {
            q[int64_t(t) * qDim + e0] = __float2half_rn(x0);
            q[int64_t(t) * qDim + e1] = __float2half_rn(x1);
        } else {
            kCache[int64_t(pos) * kvDim + e0 - qDim] = __float2half_rn(x0);
            kCache[int64_t(pos) * kvDim + e1 - qDim] = __float2half_rn(x1);
        }
    }
    for (int e = threadIdx.x; e < kvDim; e += blockDim.x) {
        float v = __half2float(row[qDim + kvDim + e]);
        if (r.bias) v += r.bias[qDim + kvDim + e];
        vCache[int64_t(pos) * kvDim + e] = __float2half_rn(v);
    }
}

} // namespace

void launchRopeAndStore(const LaunchContext& ctx, const RopeArgs& r, const __half* qkv, int n, int startPos,
                        __half* q, __half* kCache, __half* vCache) {
    if (n <= 0) return;
    launchKernel(ctx, ropeAndStoreKernel, dim3(n), dim3(256), 0, "rope launch", r, qkv, startPos, q, kCache, vCache);
}

} // namespace parley::cuda
