#pragma once
// A weight matrix in device memory, in the layout the GEMV kernels read (DESIGN.md §2):
//   FP16: data = half [rows][ld], ld = cols rounded up to 8 (zero padding), so that every row
//         is a whole number of 16-byte chunks
//   INT8: data = int8 [rows][cols],   scales = half [rows][groups]            w = scale * q
//   INT4: data = uint8 [rows][cols/2] (element 2j low nibble, 2j+1 high nibble),
//         scales = half2 (scale, min) [rows][groups] — interleaved on upload so that one 4-byte
//         load gives both for a 16-byte chunk of 32 weights                 w = scale * q + min
// Rows are contiguous, so a warp reading 16 bytes a lane along a row reads 512 coalesced bytes.
#include "engine/weights.h"

#include <cstdint>

namespace parley::cuda {

struct DeviceMatrix {
    Precision precision = Precision::FP16;
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t ld = 0;          // FP16: stored elements per row (>= cols); INT8/INT4: cols
    int groupSize = 0;       // INT8/INT4
    void* data = nullptr;
    void* scales = nullptr;  // INT8: half; INT4: half2 (scale, min)

    int64_t groupsPerRow() const { return groupSize ? cols / groupSize : 0; }
    int64_t rowBytes() const {
        return precision == Precision::FP16 ? ld * 2 : precision == Precision::INT8 ? cols : cols / 2;
    }
    int64_t dataBytes() const { return rows * rowBytes(); }
    int64_t scaleBytes() const {
        return precision == Precision::FP16 ? 0 : rows * groupsPerRow() * (precision == Precision::INT8 ? 2 : 4);
    }
    // What one GEMV reads: every weight and every scale once.
    uint64_t bytes() const { return uint64_t(dataBytes() + scaleBytes()); }
};

} // namespace parley::cuda
