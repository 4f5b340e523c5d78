// GEMV over INT4 weights (w = scale * q + min per group): a 16-byte chunk is 32 weights, four
// 32-bit words of eight nibbles (nibble i of a word is its element i, low nibble first). x is
// kept as int16 with one step per chunk (gemv_kernel.cuh), each value split into its low byte
// (unsigned) and high byte (signed), x = 256 hi + lo. A word's even nibbles masked into bytes
// (w & 0x0F0F0F0F) and its odd ones masked in place (w & 0xF0F0F0F0: 16 q, still a byte) each
// meet four low bytes and four high bytes of x in a dp4a (PTX "dp4a": four byte products and
// their sum an instruction), so a word takes two bit operations and four dp4a, where
// dequantizing to FP16 and multiplying in half2 took about sixteen instructions: the INT4 GEMV
// was bound by its instructions, not its bytes (docs/benchmarks.md). The sums are exact in
// int32 (the odd ones at most 16 * 240 * 32767 a chunk, divided by 16 exactly at the end).
// Per chunk:
//   sum w x = step * (scale * sum q xq + min * sum xq),
// with the chunk's sum of int16 x computed once per block. The CPU backend rounds x the same
// way (engine/cpu_matmul.h), so the two agree to float rounding.
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

struct FormatInt4 {
    using XType = int16_t;
    static constexpr int kElems = 32;
    static constexpr bool kNeedsChunkSums = true;
    struct XChunk {
        uint4 part[4]; // part j, for word j: low bytes of the even elements, of the odd ones, high bytes likewise
    };
    __device__ static const void* scaleRow(const GemvKernelArgs& k, int64_t row) {
        return static_cast<const __half2*>(k.scales) + row * k.groupsPerRow;
    }
    __device__ __forceinline__ static uint4 packPart(const int (&q)[8]) {
        return make_uint4(lowBytes(q[0], q[2], q[4], q[6]), lowBytes(q[1], q[3], q[5], q[7]),
                          highBytes(q[0], q[2], q[4], q[6]), highBytes(q[1], q[3], q[5], q[7]));
    }
    // Even nibbles masked into bytes meet x as they are; odd nibbles are masked in place (16 q, at
    // most 240, still a byte) and their sums divided by 16 at the end, exactly: no shift a word.
    __device__ __forceinline__ static void wordDot(uint32_t word, uint4 x, int& lo, int& hi, int& lo16, int& hi16) {
        const uint32_t even = word & 0x0F0F0F0Fu, odd16 = word & 0xF0F0F0F0u;
        lo = dp4aUU(even, x.x, lo);
        lo16 = dp4aUU(odd16, x.y, lo16);
        hi = dp4aUS(even, x.z, hi);
        hi16 = dp4aUS(odd16, x.w, hi16);
    }
    __device__ __forceinline__ static uint32_t loadScale(const GemvKernelArgs& k, const void* scaleRowPtr, int c) {
        return __ldg(static_cast<const unsigned*>(scaleRowPtr) + (c >> k.chunkShift));
    }
    // scale * sum q xq + min * sum xq over the chunk (times the step in the caller).
    __device__ __forceinline__ static float dot(uint4 w, const XChunk& x, uint32_t scaleMin, float chunkSum) {
        int lo = 0, hi = 0, lo16 = 0, hi16 = 0;
        wordDot(w.x, x.part[0], lo, hi, lo16, hi16);
        wordDot(w.y, x.part[1], lo, hi, lo16, hi16);
        wordDot(w.z, x.part[2], lo, hi, lo16, hi16);
        wordDot(w.w, x.part[3], lo, hi, lo16, hi16);
        const int sum = (hi * 256 + lo) + ((hi16 * 256 + lo16) >> 4); // (the odd sums are 16 times theirs)
        const float2 sm = __half22float2(*reinterpret_cast<const __half2*>(&scaleMin));
        return fmaf(sm.x, float(sum), sm.y * chunkSum);
    }
};

void launchGemvInt4(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatInt4>(ctx, m, e, a);
}

} // namespace parley::cuda
