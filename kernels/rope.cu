// Rotary embedding for prefill. See rope.h. (The frequencies come from the engine,
// ropeInverseFrequencies in engine/model_config.cpp, so both backends turn by the same angles.)
#include "kernels/rope.cuh"
#include "kernels/rope.h"

namespace parley::cuda {

namespace {

// One block per token; threads walk the q/k pairs, then copy v. With the 8-bit cache (Q8) the
// block's K and V rows go through shared memory as FP16, and then a warp per head vector finds
// its largest magnitude and writes the vector's int8 values and scale (kv_cache.cuh).
template <bool Q8>
__global__ void ropeAndStoreKernel(RopeArgs r, const __half* __restrict__ qkv, int startPos, __half* __restrict__ q,
                                   __half* __restrict__ kCache, __half* __restrict__ vCache, KvCache8 cache8) {
    extern __shared__ __align__(16) __half kvRow[]; // Q8: [2][kvDim], K then V
    const int t = blockIdx.x;
    const int qDim = r.nHead * r.headDim, kvDim = r.nHeadKv * r.headDim, width = qDim + 2 * kvDim;
    const int half = r.headDim / 2;
    const int pos = startPos + t;
    const __half* row = qkv + int64_t(t) * width;
    __half* kOut = Q8 ? kvRow : kCache + int64_t(pos) * kvDim;
    __half* vOut = Q8 ? kvRow + kvDim : vCache + int64_t(pos) * kvDim;
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
            kOut[e0 - qDim] = __float2half_rn(x0);
            kOut[e1 - qDim] = __float2half_rn(x1);
        }
    }
    for (int e = threadIdx.x; e < kvDim; e += blockDim.x) {
        float v = __half2float(row[qDim + kvDim + e]);
        if (r.bias) v += r.bias[qDim + kvDim + e];
        vOut[e] = __float2half_rn(v);
    }
    if constexpr (Q8) {
        __syncthreads();
        const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nWarps = blockDim.x >> 5;
        for (int vec = warp; vec < 2 * r.nHeadKv; vec += nWarps) {
            const bool isV = vec >= r.nHeadKv;
            const int head = isV ? vec - r.nHeadKv : vec;
            const __half* x = kvRow + (isV ? kvDim : 0) + head * r.headDim;
            float amax = 0.f;
            for (int d = lane; d < r.headDim; d += 32) amax = fmaxf(amax, fabsf(__half2float(x[d])));
            amax = warpMax(amax);
            int8_t* out = (isV ? cache8.v : cache8.k) + int64_t(pos) * kvDim + head * r.headDim;
            for (int d = lane; d < r.headDim; d += 32) out[d] = kvQuantize(__half2float(x[d]), amax);
            if (lane == 0) (isV ? cache8.vScale : cache8.kScale)[head * cache8.scaleStride + pos] = kvScaleFor(amax);
        }
    }
}

} // namespace

void launchRopeAndStore(const LaunchContext& ctx, const RopeArgs& r, const __half* qkv, int n, int startPos,
                        __half* q, __half* kCache, __half* vCache) {
    if (n <= 0) return;
    launchKernel(ctx, ropeAndStoreKernel<false>, dim3(n), dim3(256), 0, "rope launch", r, qkv, startPos, q, kCache,
                 vCache, KvCache8{});
}

void launchRopeAndStore8(const LaunchContext& ctx, const RopeArgs& r, const __half* qkv, int n, int startPos,
                         __half* q, const KvCache8& cache) {
    if (n <= 0) return;
    const size_t shared = size_t(2) * r.nHeadKv * r.headDim * sizeof(__half);
    if (shared > 48 * 1024)
        PARLEY_CUDA_CHECK(cudaFuncSetAttribute(ropeAndStoreKernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
    launchKernel(ctx, ropeAndStoreKernel<true>, dim3(n), dim3(256), shared, "rope launch", r, qkv, startPos, q,
                 static_cast<__half*>(nullptr), static_cast<__half*>(nullptr), cache);
}

} // namespace parley::cuda
