#pragma once
// SwiGLU (Shazeer 2020) for prefill rows: act = silu(gate) * up, from the fused [gate | up]
// projection. (Decode fuses it into the gate/up GEMV epilogue.)
#include "kernels/cuda_common.cuh"

namespace parley::cuda {

__device__ __forceinline__ float silu(float g) { return g / (1.f + __expf(-g)); }

// gateUp: half [n][2 nFf]; act: half [n][nFf].
void launchSwiGluRows(const LaunchContext& ctx, const __half* gateUp, int n, int nFf, __half* act);
// Decode fallback where gate and up differ in format: gateUp floats [2 nFf] -> act [nFf].
void launchSwiGluVector(const LaunchContext& ctx, const float* gateUp, int nFf, float* act);

} // namespace parley::cuda
