// GEMV over INT4 weights (w = scale * q + min per group): a 16-byte chunk is 32 weights, four
// 32-bit words of eight nibbles. Masking a word with 0x000F000F and or-ing in 0x6400 (the FP16
// exponent of 1024) turns two nibbles into the halves 1024 + q exactly (the trick of Kim et al.,
// "Who Says Elephants Can't Run", 2022); subtracting 1024 leaves q. The nibble of word k at
// shift 4j pairs with the one at shift 4j + 16: elements 8k + j and 8k + 4 + j, which is why x
// is kept in parts of four. Per chunk: scale * sum(q x) + min * sum(x), the chunk's sum of x
// computed once per block.
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

__device__ __forceinline__ float int4WordDot(uint32_t word, float4 lo, float4 hi) {
    const __half2 k1024 = __half2half2(__ushort_as_half(0x6400));
    auto pairAt = [&](uint32_t bits) {
        const uint32_t h = (bits & 0x000F000Fu) | 0x64006400u;
        return __half22float2(__hsub2(*reinterpret_cast<const __half2*>(&h), k1024));
    };
    const float2 q0 = pairAt(word), q1 = pairAt(word >> 4), q2 = pairAt(word >> 8), q3 = pairAt(word >> 12);
    float s = q0.x * lo.x;
    s = fmaf(q0.y, hi.x, s);
    s = fmaf(q1.x, lo.y, s);
    s = fmaf(q1.y, hi.y, s);
    s = fmaf(q2.x, lo.z, s);
    s = fmaf(q2.y, hi.z, s);
    s = fmaf(q3.x, lo.w, s);
    s = fmaf(q3.y, hi.w, s);
    return s;
}

struct FormatInt4 {
    static constexpr int kElems = 32;
    static constexpr bool kNeedsChunkSums = true;
    static constexpr int kMinBlocks = 3;
    static constexpr int kUnroll = 2;
    __device__ static const void* scaleRow(const GemvKernelArgs& k, int64_t row) {
        return static_cast<const __half2*>(k.scales) + row * k.groupsPerRow;
    }
    __device__ __forceinline__ static float dot(const GemvKernelArgs& k, uint4 w, const float4* xs4, int c,
                                                int nChunks, const void* scaleRowPtr, float chunkSum) {
        const float2 sm = __half22float2(__ldg(static_cast<const __half2*>(scaleRowPtr) + (c >> k.chunkShift)));
        float s = int4WordDot(w.x, xs4[c], xs4[nChunks + c]);
        s += int4WordDot(w.y, xs4[2 * nChunks + c], xs4[3 * nChunks + c]);
        s += int4WordDot(w.z, xs4[4 * nChunks + c], xs4[5 * nChunks + c]);
        s += int4WordDot(w.w, xs4[6 * nChunks + c], xs4[7 * nChunks + c]);
        return fmaf(sm.x, s, sm.y * chunkSum);
    }
};

void launchGemvInt4(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatInt4>(ctx, m, e, a);
}

} // namespace parley::cuda
