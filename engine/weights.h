#pragma once
// Weight formats inside the engine — what every backend sees (DESIGN.md §2):
//   FP16: one half per weight.
//   INT8: weight-only, int8 q with one FP16 scale per group of `groupSize` along a row:
//         w = scale * q.
//   INT4: weight-only, unsigned 4-bit q in [0, 15] with an FP16 scale and FP16 minimum per
//         group: w = scale * q + min. Two weights a byte: element 2j in the low nibble,
//         element 2j+1 in the high nibble.
// GGUF blocks convert exactly: Q8_0 -> INT8 g32; Q4_0 -> INT4 g32 (min = -8 d); Q4_1 -> INT4 g32;
// Q6_K -> INT8 g16 (scale = d * sub-block scale, rounded to FP16); Q4_K -> INT4 g32
// (scale = d * sc, min = -dmin * m, both rounded to FP16). Anything else goes through float and
// is rounded to nearest.
#include "engine/dtype.h"

#include <cstdint>
#include <string>
#include <vector>

namespace parley {

enum class Precision { FP16, INT8, INT4 };
const char* precisionName(Precision p); // "fp16", "int8", "int4"

// A row-major weight matrix: `rows` output features, each a row of `cols` input features.
struct WeightMatrix {
    int64_t rows = 0;
    int64_t cols = 0;
    Precision precision = Precision::FP16;
    int groupSize = 0;              // INT8/INT4: weights per scale group along a row (divides cols)
    std::vector<uint16_t> f16;      // FP16: [rows][cols] half bits
    std::vector<int8_t> q8;         // INT8: [rows][cols]
    std::vector<uint8_t> q4;        // INT4: [rows][cols/2]
    std::vector<uint16_t> scales;   // INT8/INT4: [rows][cols/groupSize] half bits
    std::vector<uint16_t> mins;     // INT4: [rows][cols/groupSize] half bits

    int64_t groupsPerRow() const { return groupSize ? cols / groupSize : 0; }
    // Bytes the weights take in memory (what decode reads once per token).
    uint64_t sizeBytes() const;
    // Row r as floats (reference path for tests and slow code): out[cols].
    void dequantizeRow(int64_t r, float* out) const;
};

// How a file's tensor becomes a WeightMatrix.
struct QuantizeOptions {
    Precision precision = Precision::FP16;
    // Group size used when quantizing from float. Exact GGUF conversions keep their own.
    int int8GroupSize = 32;
    int int4GroupSize = 32;
    // Requantize pre-quantized blocks into the group size above even where an exact conversion
    // exists (e.g. Q4_1 g32 -> INT4 g128); used to study group sizes.
    bool forceGroupSize = false;
};

// Decodes n consecutive values of a tensor of type t (n a multiple of the block size), exactly as
// ggml defines each block type.
void dequantize(DType t, const uint8_t* src, float* dst, int64_t n);

// The group size used for rows of `cols` weights when `requested` is asked for: the largest of
// requested, requested/2, ... (down to 16) that divides cols — so "group 128" on a 576-wide matrix
// (SmolLM2) uses groups of 64 — or `requested` itself when none does (and conversion then fails).
int fittingGroupSize(int64_t cols, int requested);
// A 2-D tensor view {cols, rows} -> WeightMatrix in the requested precision; the group size is
// fittingGroupSize(cols, requested).
WeightMatrix toWeightMatrix(const TensorView& t, const QuantizeOptions& opt);
// Floats [rows][cols] -> WeightMatrix with round-to-nearest quantization.
WeightMatrix quantizeMatrix(const float* w, int64_t rows, int64_t cols, Precision p, int groupSize);
// A 1-D (or any) tensor as floats.
std::vector<float> toFloats(const TensorView& t);

// IEEE half <-> float.
float halfToFloat(uint16_t h);
uint16_t floatToHalf(float f); // round to nearest even
float bf16ToFloat(uint16_t h);

} // namespace parley
