#pragma once
// Reader for GGUF model files, versions 2 and 3
// (spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
// The file is memory-mapped. Every count, length, offset, dimension and type is checked against
// the bytes that are really there before it is used, so a truncated or hostile file gives one
// Error naming the file and the problem, never a crash or an allocation the file cannot justify.
#include "engine/dtype.h"
#include "engine/mapped_file.h"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley {

enum class GgufValueType : uint32_t {
    UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
    String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};

struct GgufValue {
    GgufValueType type = GgufValueType::UInt8;
    // Scalars: integers in one of these two (by signedness), floats in f, bool in b.
    uint64_t u = 0;
    int64_t i = 0;
    double f = 0;
    bool b = false;
    std::string s;                      // String
    GgufValueType elementType = GgufValueType::UInt8; // Array
    std::vector<GgufValue> array;       // Array

    bool isInteger() const;
    bool isFloat() const { return type == GgufValueType::Float32 || type == GgufValueType::Float64; }
};

class GgufFile {
public:
    explicit GgufFile(const std::string& path); // throws Error

    const std::string& path() const { return file_->path(); }
    uint32_t version() const { return version_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t fileSizeBytes() const { return file_->sizeBytes(); }

    const GgufValue* find(std::string_view key) const;
    const std::vector<std::string>& keys() const { return keyOrder_; }
    // Typed getters: the default when the key is absent; an Error when present with another type.
    std::string getString(std::string_view key, const std::string& fallback = {}) const;
    int64_t getInt(std::string_view key, int64_t fallback) const;
    double getFloat(std::string_view key, double fallback) const;
    bool getBool(std::string_view key, bool fallback) const;
    // An array's elements (empty when absent); Error when present and not an array of `type`.
    const std::vector<GgufValue>& getArray(std::string_view key, GgufValueType type) const;

    const std::vector<TensorView>& tensors() const { return tensors_; }
    const TensorView* tensor(std::string_view name) const;

    // A GgufFile keeps its mapping alive; views into it stay valid while any holder does.
    std::shared_ptr<const MappedFile> mapping() const { return file_; }

private:
    std::shared_ptr<const MappedFile> file_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    std::vector<std::string> keyOrder_;
    std::unordered_map<std::string, GgufValue> values_;
    std::vector<TensorView> tensors_;
    std::unordered_map<std::string, size_t> tensorIndex_;
};

} // namespace parley
