#pragma once
// Element types of tensors in model files, and how many bytes a run of elements takes.
// Block layouts follow ggml's (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md and
// ggml-common.h): a "block" of blockElements() values is stored in blockBytes() bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley {

enum class DType {
    F32,
    F16,
    BF16,
    Q8_0, // 32 values: fp16 d, int8 q[32];                     w = d*q
    Q4_0, // 32 values: fp16 d, 16 bytes of nibbles;            w = d*(q-8)
    Q4_1, // 32 values: fp16 d, fp16 m, 16 bytes of nibbles;    w = d*q + m
    Q4_K, // 256 values: fp16 d, fp16 dmin, 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
    Q6_K, // 256 values: 128 bytes low 4 bits, 64 bytes high 2 bits, int8 scales[16], fp16 d
};

int64_t blockElements(DType t);
int64_t blockBytes(DType t);
const char* dtypeName(DType t);
// GGUF's ggml_type number for a type we read, or nothing when we do not read that type.
std::optional<DType> dtypeFromGgml(uint32_t ggmlType);
// A ggml type's name for error messages, also for types we do not read ("IQ2_XS").
std::string ggmlTypeName(uint32_t ggmlType);

// A tensor inside a mapped model file: shape, element type and where its bytes are.
// dims[0] is the fastest-varying (contiguous) dimension, as in GGUF; for a weight matrix
// dims = {inputFeatures, outputFeatures}. Safetensors shapes are reversed into this order.
struct TensorView {
    std::string name;
    std::vector<int64_t> dims;
    DType type = DType::F32;
    const uint8_t* data = nullptr;
    uint64_t sizeBytes = 0;

    int64_t elementCount() const;
};

} // namespace parley
