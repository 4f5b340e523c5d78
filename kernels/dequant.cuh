#pragma once
// One weight of a DeviceMatrix as float (the slow, obvious way: for embedding rows and the
// prefill dequantization into FP16 scratch, where each weight is touched once), and the fast
// INT4 word-to-halves conversion both prefill paths share.
#include "kernels/device_matrix.h"

#include <cuda_fp16.h>

namespace parley::cuda {

struct MatrixView {
    Precision precision;
    int64_t cols;
    int64_t ld;
    int groupSize;
    int64_t groupsPerRow;
    const void* data;
    const void* scales;
};

inline MatrixView viewOf(const DeviceMatrix& m) {
    return {m.precision, m.cols, m.ld, m.groupSize, m.groupsPerRow(), m.data, m.scales};
}

__device__ __forceinline__ float weightAt(const MatrixView& m, int64_t row, int64_t col) {
    if (m.precision == Precision::FP16) return __half2float(static_cast<const __half*>(m.data)[row * m.ld + col]);
    const int64_t g = row * m.groupsPerRow + col / m.groupSize;
    if (m.precision == Precision::INT8) {
        const float s = __half2float(static_cast<const __half*>(m.scales)[g]);
        return s * float(static_cast<const int8_t*>(m.data)[row * m.cols + col]);
    }
    const uint8_t b = static_cast<const uint8_t*>(m.data)[row * (m.cols / 2) + col / 2];
    const int q = (col & 1) ? (b >> 4) : (b & 15);
    const float2 sm = __half22float2(static_cast<const __half2*>(m.scales)[g]);
    return sm.x * float(q) + sm.y;
}

// A half2's bits and back.
__device__ __forceinline__ __half2 halvesOf(uint32_t bits) { return *reinterpret_cast<const __half2*>(&bits); }
__device__ __forceinline__ uint32_t bitsOf(__half2 h) { return *reinterpret_cast<const uint32_t*>(&h); }

// One INT4 word (nibble i is weight i) as eight halves, w = scale * q + min, each rounded once:
// integers become halves exactly under FP16's exponent of 1024 (Kim et al., "Who Says Elephants
// Can't Run", 2022: 0x6400 | q is the half 1024 + q), 1024 is taken off exactly, then one HFMA2.
// The pair (2p, 2p + 1): byte p of the even nibbles and byte p of the odd ones moved to bytes 0
// and 2 by a byte permute, the other bytes masked off and the exponent or-ed in (one LOP3). For
// the prefill's dequantization and the sm_90a GEMM's converter, which must give the same bits.
__device__ __forceinline__ uint4 int4x8ToHalves(uint32_t w, __half2 scale, __half2 minimum) {
    const uint32_t even = w & 0x0F0F0F0Fu, odd = (w >> 4) & 0x0F0F0F0Fu;
    const uint32_t sel[4] = {0x4400u, 0x5511u, 0x6622u, 0x7733u};
    uint32_t o[4];
#pragma unroll
    for (int p = 0; p < 4; ++p) {
        const uint32_t bits = (__byte_perm(even, odd, sel[p]) & 0x00FF00FFu) | 0x64006400u; // 1024 + q
        o[p] = bitsOf(__hfma2(__hsub2(halvesOf(bits), halvesOf(0x64006400u)), scale, minimum));
    }
    return make_uint4(o[0], o[1], o[2], o[3]);
}

} // namespace parley::cuda
