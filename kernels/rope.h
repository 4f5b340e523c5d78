#pragma once
// Prefill side of the rotary embedding: the fused QKV projection of n tokens comes out of cuBLAS
// as half [n][qDim + 2 kvDim]; this adds the bias, rotates q and k, writes q for attention and
// k, v into the cache rows startPos .. startPos+n-1. (Decode does the same inside the QKV GEMV
// epilogue, gemv_kernel.cuh.)
#include "kernels/cuda_common.cuh"
#include "kernels/kv_cache.cuh"

namespace parley::cuda {

struct RopeArgs {
    int nHead = 0, nHeadKv = 0, headDim = 0;
    bool neox = false;
    const float* invFreq = nullptr; // [headDim/2]
    const float* bias = nullptr;    // [qDim + 2 kvDim] or null
};

// qkv: half [n][qDim + 2kvDim]; q: half [n][qDim]; kCache, vCache: this layer's [maxContext][kvDim].
void launchRopeAndStore(const LaunchContext& ctx, const RopeArgs& r, const __half* qkv, int n, int startPos,
                        __half* q, __half* kCache, __half* vCache);
// The same into the 8-bit cache (kv_cache.cuh): each K and V head vector quantized as it is written.
void launchRopeAndStore8(const LaunchContext& ctx, const RopeArgs& r, const __half* qkv, int n, int startPos,
                         __half* q, const KvCache8& cache);

} // namespace parley::cuda
