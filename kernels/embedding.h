#pragma once
// Token embedding lookup: the rows of the embedding matrix (any format, in device or mapped
// host memory) for the given tokens, as floats — the residual stream's start.
#include "kernels/cuda_common.cuh"
#include "kernels/device_matrix.h"

namespace parley::cuda {

// tokens: device [n]; resid: [n][cols]. Token ids outside [0, rows) give a zero row and set
// *badToken (device) to 1, checked by the host after the step.
void launchEmbedRows(const LaunchContext& ctx, const DeviceMatrix& table, const int32_t* tokens, int n, float* resid,
                     int* badToken);
// Decode: one token read from step->token; also writes the first RMSNorm's sum of squares into
// ssq[0] and zeroes ssq[1 .. ssqCount-1] for the step's fused norms.
void launchEmbedDecode(const LaunchContext& ctx, const DeviceMatrix& table, const int32_t* token, float* resid,
                       float* ssq, int ssqCount, int* badToken);

} // namespace parley::cuda
