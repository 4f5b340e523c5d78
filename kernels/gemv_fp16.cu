// GEMV over FP16 weights: a 16-byte chunk is 8 halves, converted pairwise to float and
// multiplied with x in float (accumulation in float, as the CPU reference does). FP16 weights
// are two bytes each, so this kernel has instructions to spare and keeps x in float.
#include "kernels/gemv_kernel.cuh"

namespace parley::cuda {

struct FormatFp16 {
    using XType = float;
    static constexpr int kElems = 8;
    static constexpr bool kNeedsChunkSums = false;
    struct XChunk {
        uint4 part[2]; // x[0..3], x[4..7] as floats
    };
    __device__ static const void* scaleRow(const GemvKernelArgs&, int64_t) { return nullptr; }
    __device__ __forceinline__ static uint32_t loadScale(const GemvKernelArgs&, const void*, int) { return 0; }
    __device__ __forceinline__ static float dot(uint4 w, const XChunk& x, uint32_t, float) {
        const float4 a = *reinterpret_cast<const float4*>(&x.part[0]);
        const float4 b = *reinterpret_cast<const float4*>(&x.part[1]);
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
