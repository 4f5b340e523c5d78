// GEMV over INT4 weights (w = scale * q + min per group): a 16-byte chunk is 32 weights, four
// 32-bit words of eight nibbles, multiplied in packed half2 (two weights an instruction) with x
// kept in FP16. Nibbles become halves without conversions (the trick of Kim et al., "Who Says
// Elephants Can't Run", 2022, as FasterTransformer's weight-only kernels use it): a word masked
// with 0x000F000F and or-ed with 0x64006400 holds the halves 1024 + q of its nibbles 0 and 4;
// masked with 0x00F000F0 it holds 1024 + 16 q of nibbles 1 and 5; the word shifted right by 8
// gives nibbles 2, 6 and 3, 7 the same way. One subtraction (or one fma by 1/16) leaves q - 8
// exactly, so x is kept in shared memory as the half2 pairs (x[j], x[j + 4]) of each word.
// Centring q on 8 keeps the FP16 sums small: each half of a word's half2 sum has 4 terms of at
// most 8 * 2^7 (kXLimit), far below FP16's 65504; words are summed in float, which keeps the
// rounding of the FP16 sums (4 terms) small enough for the logits to stay within 1e-2 of the
// CPU's on the default model (summed over a whole chunk in FP16 they did not). Per chunk:
//   sum w x = scale * sum (q - 8) x + (min + 8 scale) * sum x,
// with the chunk's sum of x (as rounded to FP16) computed once per block.
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

struct FormatInt4 {
    using XType = __half;
    static constexpr int kElems = 32;
    static constexpr int kXLimitLog2 = 7;
    static constexpr bool kNeedsChunkSums = true;
    struct XChunk {
        uint4 part[4]; // part k: (x[8k+j], x[8k+j+4]) for j = 0..3
    };
    __device__ static const void* scaleRow(const GemvKernelArgs& k, int64_t row) {
        return static_cast<const __half2*>(k.scales) + row * k.groupsPerRow;
    }
    __device__ __forceinline__ static uint4 packPart(const float (&v)[8]) {
        uint4 p;
        __half2* h = reinterpret_cast<__half2*>(&p);
#pragma unroll
        for (int j = 0; j < 4; ++j) h[j] = __floats2half2_rn(v[j], v[j + 4]);
        return p;
    }
    // sum (q - 8) x over one word's 8 weights: four half2 products, summed in FP16 (each half
    // of the half2 adds 4 terms), then in float.
    __device__ __forceinline__ static float wordDot(uint32_t word, uint4 x) {
        const __half2 k1032 = __half2half2(__ushort_as_half(0x6408));  // 1032
        const __half2 kSixteenth = __half2half2(__ushort_as_half(0x2C00)); // 1/16
        const __half2 kMinus72 = __half2half2(__ushort_as_half(0xD480));   // -72
        const uint32_t shifted = word >> 8;
        uint32_t b0 = (word & 0x000F000Fu) | 0x64006400u;    // nibbles 0, 4: 1024 + q
        uint32_t b1 = (word & 0x00F000F0u) | 0x64006400u;    // nibbles 1, 5: 1024 + 16 q
        uint32_t b2 = (shifted & 0x000F000Fu) | 0x64006400u; // nibbles 2, 6
        uint32_t b3 = (shifted & 0x00F000F0u) | 0x64006400u; // nibbles 3, 7
        const __half2 q0 = __hsub2(*reinterpret_cast<__half2*>(&b0), k1032);
        const __half2 q1 = __hfma2(*reinterpret_cast<__half2*>(&b1), kSixteenth, kMinus72);
        const __half2 q2 = __hsub2(*reinterpret_cast<__half2*>(&b2), k1032);
        const __half2 q3 = __hfma2(*reinterpret_cast<__half2*>(&b3), kSixteenth, kMinus72);
        __half2 acc = __hmul2(q0, *reinterpret_cast<const __half2*>(&x.x));
        acc = __hfma2(q1, *reinterpret_cast<const __half2*>(&x.y), acc);
        acc = __hfma2(q2, *reinterpret_cast<const __half2*>(&x.z), acc);
        acc = __hfma2(q3, *reinterpret_cast<const __half2*>(&x.w), acc);
        const float2 f = __half22float2(acc);
        return f.x + f.y;
    }
    __device__ __forceinline__ static uint32_t loadScale(const GemvKernelArgs& k, const void* scaleRowPtr, int c) {
        return __ldg(static_cast<const unsigned*>(scaleRowPtr) + (c >> k.chunkShift));
    }
    __device__ __forceinline__ static float dot(uint4 w, const XChunk& x, uint32_t scaleMin, float chunkSum) {
        const float2 sm = __half22float2(*reinterpret_cast<const __half2*>(&scaleMin));
        const float s = (wordDot(w.x, x.part[0]) + wordDot(w.y, x.part[1])) + (wordDot(w.z, x.part[2]) + wordDot(w.w, x.part[3]));
        return fmaf(sm.x, s, fmaf(8.f, sm.x, sm.y) * chunkSum);
    }
};

void launchGemvInt4(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatInt4>(ctx, m, e, a);
}

} // namespace parley::cuda
