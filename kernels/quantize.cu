// Weight conversions on the device. See quantize.h.
#include "kernels/dequant.cuh"
#include "kernels/kv_cache.cuh"
#include "kernels/quantize.h"

namespace parley::cuda {

namespace {

// One thread per group of a row.
__global__ void quantizeInt8Kernel(const __half* __restrict__ src, int64_t rows, int64_t cols, int groupSize,
                                   int8_t* __restrict__ q, __half* __restrict__ scales) {
    const int64_t groups = cols / groupSize;
    const int64_t id = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (id >= rows * groups) return;
    const int64_t r = id / groups, g = id % groups;
    const __half* s = src + r * cols + g * groupSize;
    float amax = 0.f;
    for (int i = 0; i < groupSize; ++i) amax = fmaxf(amax, fabsf(__half2float(s[i])));
    const __half scaleH = __float2half_rn(amax / 127.f);
    const float scale = __half2float(scaleH);
    const float inv = scale > 0.f ? 1.f / scale : 0.f;
    int8_t* out = q + r * cols + g * groupSize;
    for (int i = 0; i < groupSize; ++i) {
        const float v = rintf(__half2float(s[i]) * inv);
        out[i] = int8_t(fminf(127.f, fmaxf(-127.f, v)));
    }
    scales[id] = scaleH;
}

__global__ void quantizeInt4Kernel(const __half* __restrict__ src, int64_t rows, int64_t cols, int groupSize,
                                   uint8_t* __restrict__ q, __half2* __restrict__ scaleMin) {
    const int64_t groups = cols / groupSize;
    const int64_t id = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (id >= rows * groups) return;
    const int64_t r = id / groups, g = id % groups;
    const __half* s = src + r * cols + g * groupSize;
    float lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < groupSize; ++i) {
        const float v = __half2float(s[i]);
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
    }
    const __half scaleH = __float2half_rn((hi - lo) / 15.f), minH = __float2half_rn(lo);
    const float scale = __half2float(scaleH), mn = __half2float(minH);
    const float inv = scale > 0.f ? 1.f / scale : 0.f;
    uint8_t* out = q + r * (cols / 2) + g * groupSize / 2;
    for (int i = 0; i < groupSize; i += 2) {
        const int q0 = int(fminf(15.f, fmaxf(0.f, rintf((__half2float(s[i]) - mn) * inv))));
        const int q1 = int(fminf(15.f, fmaxf(0.f, rintf((__half2float(s[i + 1]) - mn) * inv))));
        out[i / 2] = uint8_t(q0 | (q1 << 4));
    }
    scaleMin[id] = __halves2half2(scaleH, minH);
}

// Eight weights a thread, one 16-byte store.
__global__ void dequantizeRowsKernel(MatrixView m, int64_t rowBegin, int64_t rowCount, __half* __restrict__ dst) {
    const int64_t per = m.cols / 8;
    const int64_t id = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (id >= rowCount * per) return;
    const int64_t r = id / per, c0 = (id % per) * 8, row = rowBegin + r;
    __align__(16) __half out[8];
    if (m.precision == Precision::INT8) {
        const float s = __half2float(static_cast<const __half*>(m.scales)[row * m.groupsPerRow + c0 / m.groupSize]);
        const uint2 raw = *reinterpret_cast<const uint2*>(static_cast<const int8_t*>(m.data) + row * m.cols + c0);
        const int8_t* b = reinterpret_cast<const int8_t*>(&raw);
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = __float2half_rn(s * float(b[i]));
    } else if (m.precision == Precision::INT4) {
        const float2 sm = __half22float2(static_cast<const __half2*>(m.scales)[row * m.groupsPerRow + c0 / m.groupSize]);
        const uint32_t raw = *reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(m.data) + row * (m.cols / 2) + c0 / 2);
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = __float2half_rn(fmaf(sm.x, float((raw >> (4 * i)) & 15u), sm.y));
    } else {
#pragma unroll
        for (int i = 0; i < 8; ++i) out[i] = __float2half_rn(weightAt(m, row, c0 + i));
    }
    *reinterpret_cast<uint4*>(dst + r * m.cols + c0) = *reinterpret_cast<const uint4*>(out);
}

// The prefill's dequantization: a thread per 8 weights (one 16-byte store, so that a warp writes
// 512 contiguous bytes), with no I2F (it runs at a quarter of the rate; at one a weight, with
// the float-to-half conversion, it may set the pace of the kernel above). INT4 works in packed
// half arithmetic (int4x8ToHalves, dequant.cuh). INT8 takes the 8-bit cache's byte-to-float
// permute (kv_cache.cuh); scale * q is exact in float, rounded once to FP16.

__global__ void dequantizeInt4RowsKernel(const uint32_t* __restrict__ data, const __half2* __restrict__ scaleMin,
                                         int64_t groupsPerRow, uint32_t wordsPerRow, int wordsPerGroupLog2,
                                         int64_t rowBegin, uint32_t wordCount, uint4* __restrict__ dst) {
    const uint32_t id = blockIdx.x * blockDim.x + threadIdx.x;
    if (id >= wordCount) return;
    const uint32_t r = id / wordsPerRow, c = id - r * wordsPerRow;
    const int64_t row = rowBegin + r;
    const uint32_t w = data[row * wordsPerRow + c];
    const __half2 sm = scaleMin[row * groupsPerRow + (c >> wordsPerGroupLog2)];
    dst[id] = int4x8ToHalves(w, __low2half2(sm), __high2half2(sm));
}

__global__ void dequantizeInt8RowsKernel(const uint2* __restrict__ data, const __half* __restrict__ scales,
                                         int64_t groupsPerRow, uint32_t partsPerRow, int partsPerGroupLog2,
                                         int64_t rowBegin, uint32_t partCount, uint4* __restrict__ dst) {
    const uint32_t id = blockIdx.x * blockDim.x + threadIdx.x;
    if (id >= partCount) return;
    const uint32_t r = id / partsPerRow, c = id - r * partsPerRow;
    const int64_t row = rowBegin + r;
    const float scale = __half2float(scales[row * groupsPerRow + (c >> partsPerGroupLog2)]);
    dst[id] = int8x8ToHalves(data[row * partsPerRow + c], scale);
}

__device__ __forceinline__ uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Uniform in (-1, 1), never 0: 24 random bits mapped to odd multiples of 2^-24.
__device__ __forceinline__ float uniformSigned(uint64_t seed, uint64_t i) {
    const uint32_t bits = uint32_t(splitmix64(seed * 0x100000001B3ull + i) >> 40);
    return (float(bits) + 0.5f) * (2.f / 16777216.f) - 1.f;
}

__global__ void randomHalfKernel(__half* dst, int64_t count, uint64_t seed, uint64_t offset, float scale) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
        float v = uniformSigned(seed, offset + i) * scale;
        if (__half2float(__float2half_rn(v)) == 0.f) v = v < 0.f ? -6.1e-5f : 6.1e-5f;
        dst[i] = __float2half_rn(v);
    }
}

__global__ void randomFloatKernel(float* dst, int64_t count, uint64_t seed, float center, float spread) {
    for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x)
        dst[i] = center + spread * uniformSigned(seed, i);
}

} // namespace

void launchQuantizeRows(const LaunchContext& ctx, const __half* src, int64_t rows, const DeviceMatrix& dst, int64_t rowBegin) {
    const int64_t groups = dst.groupsPerRow();
    const int64_t count = rows * groups;
    if (count <= 0) return;
    const dim3 grid(unsigned(ceilDiv(count, 256)));
    if (dst.precision == Precision::INT8) {
        launchKernel(ctx, quantizeInt8Kernel, grid, dim3(256), 0, "quantize launch", src, rows, dst.cols, dst.groupSize,
                     static_cast<int8_t*>(dst.data) + rowBegin * dst.cols,
                     static_cast<__half*>(dst.scales) + rowBegin * groups);
    } else if (dst.precision == Precision::INT4) {
        launchKernel(ctx, quantizeInt4Kernel, grid, dim3(256), 0, "quantize launch", src, rows, dst.cols, dst.groupSize,
                     static_cast<uint8_t*>(dst.data) + rowBegin * (dst.cols / 2),
                     static_cast<__half2*>(dst.scales) + rowBegin * groups);
    } else {
        PARLEY_CUDA_CHECK(cudaMemcpy2DAsync(static_cast<__half*>(dst.data) + rowBegin * dst.ld, size_t(dst.ld) * 2, src,
                                            size_t(dst.cols) * 2, size_t(dst.cols) * 2, size_t(rows),
                                            cudaMemcpyDeviceToDevice, ctx.stream));
    }
}

void launchDequantizeRows(const LaunchContext& ctx, const DeviceMatrix& m, int64_t rowBegin, int64_t rowCount, __half* dst) {
    // The fast kernels: 8 weights a thread, each 8 inside one group (group sizes a power-of-two
    // multiple of 8), rows 16-byte aligned in and out.
    const int64_t partsPerGroup = m.groupSize / 8, partsPerRow = m.cols / 8;
    const bool fast = m.precision != Precision::FP16 && m.cols % 8 == 0 && m.groupSize % 8 == 0 && partsPerGroup > 0 &&
                      (partsPerGroup & (partsPerGroup - 1)) == 0 && rowCount * partsPerRow < (int64_t(1) << 31) &&
                      reinterpret_cast<uintptr_t>(dst) % 16 == 0 && reinterpret_cast<uintptr_t>(m.data) % 16 == 0;
    if (fast && rowCount > 0) {
        int log2 = 0;
        while ((int64_t(1) << log2) < partsPerGroup) ++log2;
        const uint32_t parts = uint32_t(rowCount * partsPerRow);
        const dim3 grid(unsigned(ceilDiv(parts, 256)));
        if (m.precision == Precision::INT4)
            launchKernel(ctx, dequantizeInt4RowsKernel, grid, dim3(256), 0, "dequantize launch",
                         static_cast<const uint32_t*>(m.data), static_cast<const __half2*>(m.scales), m.groupsPerRow(),
                         uint32_t(partsPerRow), log2, rowBegin, parts, reinterpret_cast<uint4*>(dst));
        else
            launchKernel(ctx, dequantizeInt8RowsKernel, grid, dim3(256), 0, "dequantize launch",
                         static_cast<const uint2*>(m.data), static_cast<const __half*>(m.scales), m.groupsPerRow(),
                         uint32_t(partsPerRow), log2, rowBegin, parts, reinterpret_cast<uint4*>(dst));
        return;
    }
    const int64_t count = rowCount * (m.cols / 8);
    if (count <= 0) return;
    launchKernel(ctx, dequantizeRowsKernel, dim3(unsigned(ceilDiv(count, 256))), dim3(256), 0, "dequantize launch",
                 viewOf(m), rowBegin, rowCount, dst);
}

void launchRandomHalf(const LaunchContext& ctx, __half* dst, int64_t count, uint64_t seed, uint64_t offset, float scale) {
    if (count <= 0) return;
    launchKernel(ctx, randomHalfKernel, dim3(unsigned(std::min<int64_t>(ceilDiv(count, 256), 65536))), dim3(256), 0,
                 "random fill launch", dst, count, seed, offset, scale);
}

void launchRandomFloat(const LaunchContext& ctx, float* dst, int64_t count, uint64_t seed, float center, float spread) {
    if (count <= 0) return;
    launchKernel(ctx, randomFloatKernel, dim3(unsigned(std::min<int64_t>(ceilDiv(count, 256), 65536))), dim3(256), 0,
                 "random fill launch", dst, count, seed, center, spread);
}

} // namespace parley::cuda
