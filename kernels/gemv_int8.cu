// GEMV over INT8 weights with one FP16 scale per group: a 16-byte chunk is 16 weights,
// multiplied in packed half2 (two weights an instruction) with x kept in FP16. Bytes become
// halves without conversions: biased to unsigned (xor 0x80) and placed by a byte permute under
// the FP16 exponent of 1024 (0x64), two bytes read as the halves 1024 + 128 + q exactly; one
// subtraction leaves q. Each half of a word's half2 sum has 2 terms of at most 128 * 2^4
// (kXLimit), below FP16's 65504; words are summed in float (FP16 sums over a whole chunk lost
// too much on the default model), and the group's scale multiplies the chunk's sum.
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

struct FormatInt8 {
    using XType = __half;
    static constexpr int kElems = 16;
    static constexpr int kXLimitLog2 = 4;
    static constexpr bool kNeedsChunkSums = false;
    struct XChunk {
        uint4 part[2]; // x[0..7], x[8..15] in order
    };
    __device__ static const void* scaleRow(const GemvKernelArgs& k, int64_t row) {
        return static_cast<const __half*>(k.scales) + row * k.groupsPerRow;
    }
    __device__ __forceinline__ static uint4 packPart(const float (&v)[8]) {
        uint4 p;
        __half2* h = reinterpret_cast<__half2*>(&p);
#pragma unroll
        for (int j = 0; j < 4; ++j) h[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
        return p;
    }
    // sum q x over one word's 4 weights: two half2 products summed in FP16, then in float.
    __device__ __forceinline__ static float wordDot(uint32_t word, uint32_t x01, uint32_t x23) {
        const __half2 k1152 = __half2half2(__ushort_as_half(0x6480)); // 1024 + 128
        const uint32_t u = word ^ 0x80808080u;
        uint32_t b01 = __byte_perm(u, 0x64646464u, 0x4140); // bytes 0, 1 -> halves 1024 + u
        uint32_t b23 = __byte_perm(u, 0x64646464u, 0x4342); // bytes 2, 3
        const __half2 q01 = __hsub2(*reinterpret_cast<__half2*>(&b01), k1152);
        const __half2 q23 = __hsub2(*reinterpret_cast<__half2*>(&b23), k1152);
        __half2 acc = __hmul2(q01, *reinterpret_cast<const __half2*>(&x01));
        acc = __hfma2(q23, *reinterpret_cast<const __half2*>(&x23), acc);
        const float2 f = __half22float2(acc);
        return f.x + f.y;
    }
    __device__ __forceinline__ static uint32_t loadScale(const GemvKernelArgs& k, const void* scaleRowPtr, int c) {
        return __ldg(static_cast<const unsigned short*>(scaleRowPtr) + (c >> k.chunkShift));
    }
    __device__ __forceinline__ static float dot(uint4 w, const XChunk& x, uint32_t scaleBits, float) {
        const float scale = __half2float(__ushort_as_half((unsigned short)scaleBits));
        const float s = (wordDot(w.x, x.part[0].x, x.part[0].y) + wordDot(w.y, x.part[0].z, x.part[0].w)) +
                        (wordDot(w.z, x.part[1].x, x.part[1].y) + wordDot(w.w, x.part[1].z, x.part[1].w));
        return scale * s;
    }
};

void launchGemvInt8(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatInt8>(ctx, m, e, a);
}

} // namespace parley::cuda
