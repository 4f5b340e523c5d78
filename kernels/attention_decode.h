#pragma once
// Attention of one new token over the FP16 KV cache, with the sequence split across blocks
// (flash-decoding, Dao et al. 2023): each block takes one KV head (all the query heads that
// share it, so K and V are read once for the group) and one chunk of positions, and writes a
// partial result with its running max and sum; the last block to finish for a head combines the
// partials. A block copies its chunk's K and V rows into shared memory (cp.async) before it
// waits for the kernel that wrote q and the new token's K/V (programmatic dependent launch);
// for heads of 64 and 128 with chunks of 128 positions or more (long contexts), a block instead
// streams its rows into registers, so that it needs no shared memory for them. The
// grid is fixed when the decode graph is captured; the length comes from the device (*pos + 1),
// and blocks past it return at once. The 8-bit cache (kv_cache.cuh) always takes the register
// kernel (heads of 64 and 128 only).
#include "kernels/cuda_common.cuh"
#include "kernels/kv_cache.cuh"

namespace parley::cuda {

constexpr int kAttnMaxGroup = 8; // query heads per KV head handled by one block

struct AttentionDecodeArgs {
    const float* q = nullptr;     // [nHead][headDim], rotated
    const __half* k = nullptr;    // this layer's FP16 cache [maxContext][kvDim]; with the 8-bit
    const __half* v = nullptr;    // cache, the new token's FP16 row [kvDim] (the QKV GEMV's output)
    KvCache8 cache8;              // this layer's 8-bit cache, or none (cache8.k null): the block that
                                  // holds the new position quantizes k, v into it at *pos
    const int* pos = nullptr;     // device: position of the new token; length = *pos + 1
    float* out = nullptr;         // [nHead][headDim]
    float* partO = nullptr;       // workspace [nHead][nSplit][headDim]
    float* partMl = nullptr;      // workspace [nHead][nSplit][2]
    unsigned* counters = nullptr; // workspace [nHeadKv], zero between launches
    int nHead = 0, nHeadKv = 0, headDim = 0;
    int chunk = 0, nSplit = 0;
    uint64_t* trace = nullptr;    // PARLEY_CUDA_TRACE slots of this launch (decode_trace.h), or null
};

// Chunk length and split count for a context of up to `length` positions: enough blocks to
// fill the GPU, chunks a multiple of 32; for the shared-memory kernel small enough that a
// block's K and V rows fit in shared memory (128 positions for heads up to 128).
void attentionDecodeSplit(int length, int nHeadKv, int headDim, int multiprocessors, int& chunk, int& nSplit);
size_t attentionDecodeWorkspaceFloats(int nHead, int nSplit, int headDim);
void launchAttentionDecode(const LaunchContext& ctx, const AttentionDecodeArgs& a);
// Head sizes the 8-bit cache serves.
inline bool attentionDecodeSupportsInt8(int headDim) { return headDim == 64 || headDim == 128; }

} // namespace parley::cuda
