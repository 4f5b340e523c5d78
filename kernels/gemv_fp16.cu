// GEMV over FP16 weights: a 16-byte chunk is 8 halves, converted pairwise to float and
// multiplied with x in float (accumulation in float, as the CPU reference does).
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

struct FormatFp16 {
    static constexpr int kElems = 8;
    static constexpr bool kNeedsChunkSums = false;
    static constexpr int kMinBlocks = 3;
    static constexpr int kUnroll = 4;
    __device__ static const void* scaleRow(const GemvKernelArgs&, int64_t) { return nullptr; }
    __device__ __forceinline__ static float dot(const GemvKernelArgs&, uint4 w, const float4* xs4, int c,
                                                int nChunks, const void*, float) {
        const float4 a = xs4[c], b = xs4[nChunks + c];
        const float2 f0 = __half22float2(*reinterpret_cast<const __half2*>(&w.x));
        const float2 f1 = __half22float2(*reinterpret_cast<const __half2*>(&w.y));
        const float2 f2 = __half22float2(*reinterpret_cast<const __half2*>(&w.z));
        const float2 f3 = __half22float2(*reinterpret_cast<const __half2*>(&w.w));
        float s = f0.x * a.x;
        s = fmaf(f0.y, a.y, s);
        s = fmaf(f1.x, a.z, s);
        s = fmaf(f1.y, a.w, s);
        s = fmaf(f2.x, b.x, s);
        s = fmaf(f2.y, b.y, s);
        s = fmaf(f3.x, b.z, s);
        s = fmaf(f3.y, b.w, s);
        return s;
    }
};

void launchGemvFp16(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    launchGemvFormat<FormatFp16>(ctx, m, e, a);
}

} // namespace parley::cuda
