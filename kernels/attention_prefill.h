#pragma once
// Causal attention over a whole prompt in one pass; for head sizes 64, 96 and 128 on the tensor cores (WMMA, FP16 in, FP32
// accumulate), with the online softmax of FlashAttention (Dao et al. 2022): a block takes 64
// queries of one head and walks the keys 32 at a time, so the score matrix never goes to memory.
// Queries at positions startPos .. startPos+n-1 see every cached key up to their own position.
// From the 8-bit cache, a tile's K and V are turned back into FP16 as they are copied in.
#include "kernels/cuda_common.cuh"
#include "kernels/kv_cache.cuh"

namespace parley::cuda {

struct AttentionPrefillArgs {
    const __half* q = nullptr; // [n][nHead*headDim], rotated
    const __half* k = nullptr; // this layer's FP16 cache [maxContext][kvDim], or null with
    const __half* v = nullptr;
    KvCache8 cache8;           // this layer's 8-bit cache (heads of 64 and 128)
    __half* out = nullptr;     // [n][nHead*headDim]
    int n = 0, startPos = 0;
    int nHead = 0, nHeadKv = 0, headDim = 0;
};

bool attentionPrefillSupports(int headDim);
void launchAttentionPrefill(const LaunchContext& ctx, const AttentionPrefillArgs& a);

} // namespace parley::cuda
