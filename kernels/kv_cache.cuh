#pragma once
// The 8-bit K/V cache on the device. Format (engine/kv_cache_format.h, the CPU backend rounds the
// same way): each position's K (after rotation) and V vector of one KV head, rounded to FP16
// first, is stored as headDim int8 values q_i = rint(x_i * 127 / amax) with one float scale
// amax / 127, and read back as q_i * scale (symmetric absmax quantization per vector, as in
// LLM.int8(), Dettmers et al. 2022, with one scale per head vector). No fast-math here, so the
// division and rounding are IEEE and the device's values equal the CPU's bit for bit.
#include "kernels/cuda_common.cuh"

#include <cstdint>

namespace parley::cuda {

// One layer's 8-bit cache.
struct KvCache8 {
    int8_t* k = nullptr;      // [maxContext][kvDim]
    int8_t* v = nullptr;
    float* kScale = nullptr;  // [nHeadKv][scaleStride]: a head's scales adjacent over positions, so
    float* vScale = nullptr;  // that a block reading a run of rows of one head reads them together
    int64_t scaleStride = 0;  // maxContext
};

__host__ __device__ __forceinline__ float kvScaleFor(float amax) { return amax / 127.f; }

// x: the FP16-rounded value; amax: the largest |x| of its head vector.
__device__ __forceinline__ int8_t kvQuantize(float x, float amax) {
    return amax > 0.f ? int8_t(fminf(127.f, fmaxf(-127.f, rintf(x * (127.f / amax))))) : int8_t(0);
}

// int8 values as floats without I2F, which runs at a quarter of the FMA rate and bounded the
// 8-bit attention kernels (H200, 7B shape at 4,096 positions: slower than the FP16 cache): each
// byte, offset by 128, becomes the low mantissa byte of 2^23 (one PRMT), and one subtraction takes
// 2^23 + 128 back off. Exact for every int8 (all values stay below 2^24).
__device__ __forceinline__ float int8ByteToFloat(unsigned biased, unsigned selector) {
    return __int_as_float(int(__byte_perm(biased, 0x4B000000u, selector))) - 8388736.f;
}
// Four int8 in one 32-bit word (lowest byte first).
__device__ __forceinline__ void int8x4ToFloats(unsigned w, float* f) {
    const unsigned u = w ^ 0x80808080u;
    f[0] = int8ByteToFloat(u, 0x7540);
    f[1] = int8ByteToFloat(u, 0x7541);
    f[2] = int8ByteToFloat(u, 0x7542);
    f[3] = int8ByteToFloat(u, 0x7543);
}
// Two int8 in the low 16 bits.
__device__ __forceinline__ void int8x2ToFloats(unsigned w, float* f) {
    const unsigned u = w ^ 0x8080u;
    f[0] = int8ByteToFloat(u, 0x7540);
    f[1] = int8ByteToFloat(u, 0x7541);
}

// Eight int8 values (lowest byte first) times a scale, as eight halves, each rounded once (for a
// scale that is itself a half the product is exact in float). For the 8-bit cache's rows in
// prefill attention and for INT8 weight rows in the prefill's dequantization.
__device__ __forceinline__ uint4 int8x8ToHalves(uint2 raw, float scale) {
    float f[8];
    int8x4ToFloats(raw.x, f);
    int8x4ToFloats(raw.y, f + 4);
    __align__(16) __half h[8];
#pragma unroll
    for (int i = 0; i < 8; ++i) h[i] = __float2half_rn(f[i] * scale);
    return *reinterpret_cast<const uint4*>(h);
}

} // namespace parley::cuda
