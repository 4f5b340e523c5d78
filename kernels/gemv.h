#pragma once
// Matrix-vector products for decode (batch 1): y = W x with W in FP16, INT8 or INT4, read at
// full width (16 bytes a lane, coalesced along rows), each warp computing two output rows.
// The input may be normalised on the way in (RMSNorm fused into the projection: the sum of
// squares comes from the kernel that wrote x), and the epilogue fuses what follows the
// projection: a residual add that also accumulates the next norm's sum of squares, SwiGLU over
// the gate and up rows, or rotary embedding with the K/V cache write for the fused QKV matrix.
#include "kernels/cuda_common.cuh"
#include "kernels/device_matrix.h"

namespace parley::cuda {

enum class GemvEpilogue {
    Store,    // out[row] = acc; rows paired (2p, 2p+1)
    Residual, // resid[row] += acc; *ssqOut += sum of resid[row]^2 (for the next RMSNorm)
    GateUp,   // rows (p, nFf + p) of [gate; up]: out[p] = silu(gate) * up
    Qkv,      // rows of [q; k; v]: bias, rotary embedding, q -> qOut, k and v -> cache at *pos
};

struct GemvArgs {
    // Input: x[cols] floats; normalised as x * rsqrt(*ssq / cols + eps) * normWeight when
    // normWeight is set.
    const float* x = nullptr;
    const float* normWeight = nullptr;
    const float* ssq = nullptr;
    float eps = 1e-5f;
    // Output rows are "logical" (the fused matrix's numbering); matrix row = logical - rowOffset.
    // Pairs pairBegin .. pairBegin+pairCount-1 are computed (see GemvEpilogue for the pairing).
    int pairBegin = 0;
    int pairCount = 0;
    int rowOffset = 0;
    int logicalRows = 0;
    float* out = nullptr;      // Store, GateUp
    float* resid = nullptr;    // Residual
    float* ssqOut = nullptr;   // Residual
    int nFf = 0;               // GateUp
    // Qkv
    float* qOut = nullptr;          // [qDim] floats
    __half* kCache = nullptr;       // this layer's [maxContext][kvDim], written at row *pos; with
    __half* vCache = nullptr;       // kvNewRowOnly, one FP16 row [kvDim] (the new token's, which the
    bool kvNewRowOnly = false;      // attention kernel quantizes into the 8-bit cache)
    const int* pos = nullptr;       // device: the position being written
    const float* invFreq = nullptr; // [headDim/2] rotary frequencies (scaling applied)
    const float* bias = nullptr;    // [qDim + 2 kvDim] or null
    int qDim = 0, kvDim = 0, headDim = 0;
    bool neox = false;
    uint64_t* trace = nullptr; // PARLEY_CUDA_TRACE slots of this launch (decode_trace.h), or null
};

// Pairs of a matrix with `rows` logical rows for each epilogue.
inline int gemvPairCount(GemvEpilogue e, int rows) { return e == GemvEpilogue::GateUp ? rows / 2 : (rows + 1) / 2; }

void launchGemvFp16(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a);
void launchGemvInt8(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a);
void launchGemvInt4(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a);

inline void launchGemv(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    switch (m.precision) {
    case Precision::FP16: launchGemvFp16(ctx, m, e, a); break;
    case Precision::INT8: launchGemvInt8(ctx, m, e, a); break;
    case Precision::INT4: launchGemvInt4(ctx, m, e, a); break;
    }
}

} // namespace parley::cuda
