// GEMV over INT8 weights with one FP16 scale per group: a 16-byte chunk is 16 weights. Bytes
// become floats without the slow integer-to-float conversion: biased to unsigned (xor 0x80) and
// placed by a byte permute into the mantissa of 2^23, they read as 2^23 + 128 + q exactly; one
// subtraction gives q. The group's scale multiplies the chunk's partial sum once.
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

__device__ __forceinline__ float int8WordDot(uint32_t word, float4 x) {
    const uint32_t u = word ^ 0x80808080u;
    constexpr float kBias = 8388608.f + 128.f;
    const float q0 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7650)) - kBias;
    const float q1 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7651)) - kBias;
    const float q2 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7652)) - kBias;
    const float q3 = __uint_as_float(__byte_perm(u, 0x4B000000u, 0x7653)) - kBias;
    float s = q0 * x.x;
    s = fmaf(q1, x.y, s);
    s = fmaf(q2, x.z, s);
    s = fmaf(q3, x.w, s);
    return s;
}

struct FormatInt8 {
    static constexpr int kElems = 16;
    static constexpr bool kNeedsChunkSums = false;
    static constexpr int kMinBlocks = 3;
    static constexpr int kUnroll = 4;
    __device__ static const void* scaleRow(const GemvKernelArgs& k, int64_t row) {
        return static_cast<const __half*>(k.scales) + row * k.groupsPerRow;
    }
    __device__ __forceinline__ static float dot(const GemvKernelArgs& k, uint4 w, const float4* xs4, int c,
                                                int nChunks, const void* scaleRowPtr, float) {
        const float scale = __half2float(__ldg(static_cast<const __half*>(scaleRowPtr) + (c >> k.chunkShift)));
        float s = int8WordDot(w.x, xs4[c]);
        s += int8WordDot(w.y, xs4[nChunks + c]);
        s += int8WordDot(w.z, xs4[2 * nChunks + c]);
        s += int8WordDot(w.w, xs4[3 * nChunks + c]);
        return scale * s;
    }
};

void launchGemvInt8(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatInt8>(ctx, m, e, a);
}

} // namespace parley::cuda
