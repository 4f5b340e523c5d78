#pragma once
// One weight of a DeviceMatrix as float (the slow, obvious way: for embedding rows and the
// prefill dequantization into FP16 scratch, where each weight is touched once).
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

} // namespace parley::cuda
