// GEMV over INT8 weights with one FP16 scale per group: a 16-byte chunk is 16 weights. x is
// kept as int16 with one step per chunk (gemv_kernel.cuh), each value split into its low byte
// (unsigned) and high byte (signed), x = 256 hi + lo; a word of four weights meets four low
// bytes and four high bytes in two dp4a (PTX "dp4a": four byte products and their sum an
// instruction), summed exactly in int32 (at most 16 * 128 * 32767 a chunk), where converting
// to FP16 and multiplying in half2 took about eight instructions a word. The group's scale and
// the chunk's step multiply the chunk's sum in float. The CPU backend rounds x the same way
// (engine/cpu_matmul.h).
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

struct FormatInt8 {
    using XType = int16_t;
    static constexpr int kElems = 16;
    static constexpr bool kNeedsChunkSums = false;
    struct XChunk {
        uint4 part[2]; // elements 0..7, 8..15: low bytes of 4 elements, high bytes of those, the next 4 likewise
    };
    __device__ static const void* scaleRow(const GemvKernelArgs& k, int64_t row) {
        return static_cast<const __half*>(k.scales) + row * k.groupsPerRow;
    }
    __device__ __forceinline__ static uint4 packPart(const int (&q)[8]) {
        return make_uint4(lowBytes(q[0], q[1], q[2], q[3]), highBytes(q[0], q[1], q[2], q[3]),
                          lowBytes(q[4], q[5], q[6], q[7]), highBytes(q[4], q[5], q[6], q[7]));
    }
    __device__ __forceinline__ static uint32_t loadScale(const GemvKernelArgs& k, const void* scaleRowPtr, int c) {
        return __ldg(static_cast<const unsigned short*>(scaleRowPtr) + (c >> k.chunkShift));
    }
    // scale * sum q xq over the chunk (times the step in the caller).
    __device__ __forceinline__ static float dot(uint4 w, const XChunk& x, uint32_t scaleBits, float) {
        int lo = 0, hi = 0;
        lo = dp4aSU(w.x, x.part[0].x, lo);
        hi = dp4aSS(w.x, x.part[0].y, hi);
        lo = dp4aSU(w.y, x.part[0].z, lo);
        hi = dp4aSS(w.y, x.part[0].w, hi);
        lo = dp4aSU(w.z, x.part[1].x, lo);
        hi = dp4aSS(w.z, x.part[1].y, hi);
        lo = dp4aSU(w.w, x.part[1].z, lo);
        hi = dp4aSS(w.w, x.part[1].w, hi);
        const float scale = __half2float(__ushort_as_half((unsigned short)scaleBits));
        return scale * float(hi * 256 + lo);
    }
};

void launchGemvInt8(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatInt8>(ctx, m, e, a);
}

} // namespace parley::cuda
