#pragma once
// Weight conversions on the device: FP16 -> INT8/INT4 (round to nearest, as the engine's
// quantizeMatrix does on the CPU), any format -> FP16 rows (the prefill scratch that cuBLAS
// reads), and random FP16 values for synthetic models (a counter-based hash: never zeros, the
// same for a seed).
#include "kernels/cuda_common.cuh"
#include "kernels/device_matrix.h"

namespace parley::cuda {

// src: half [rows][cols] -> dst rows [rowBegin, rowBegin + rows) (dst.precision INT8 or INT4).
void launchQuantizeRows(const LaunchContext& ctx, const __half* src, int64_t rows, const DeviceMatrix& dst, int64_t rowBegin);
// dst: half [rowCount][cols] <- rows rowBegin .. of m.
void launchDequantizeRows(const LaunchContext& ctx, const DeviceMatrix& m, int64_t rowBegin, int64_t rowCount, __half* dst);
// dst[i] = uniform in (-scale, scale) from (seed, offset + i); never exactly zero.
void launchRandomHalf(const LaunchContext& ctx, __half* dst, int64_t count, uint64_t seed, uint64_t offset, float scale);
void launchRandomFloat(const LaunchContext& ctx, float* dst, int64_t count, uint64_t seed, float center, float spread);

} // namespace parley::cuda
