#include "engine/safetensors.h"

#include "engine/error.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>

namespace parley {
namespace {

// The format's own limit on the header (safetensors' MAX_HEADER_SIZE is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr int kMaxJsonDepth = 16;   // a valid header nests three deep
constexpr int kMaxDims = 8;
constexpr uint64_t kMaxDim = uint64_t(1) << 40;

// Element sizes of every dtype the format defines; 0: not a safetensors dtype.
int dtypeBytes(const std::string& d) {
    static const std::pair<const char*, int> sizes[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"F8_E8M0", 1},
        {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4},
        {"F64", 8}, {"I64", 8}, {"U64", 8}};
    for (const auto& [name, bytes] : sizes)
        if (d == name) return bytes;
    return 0;
}

std::optional<DType> readableDtype(const std::string& d) {
    if (d == "F32") return DType::F32;
    if (d == "F16") return DType::F16;
    if (d == "BF16") return DType::BF16;
    return std::nullopt;
}

// nlohmann's parser keeps its own stack, but a deeply nested value would still be destroyed
// recursively; refuse deep nesting before parsing. Brackets inside strings do not count.
int jsonDepth(const char* s, uint64_t n) {
    int depth = 0, maxDepth = 0;
    bool inString = false;
    for (uint64_t i = 0; i < n; ++i) {
        char c = s[i];
        if (inString) {
            if (c == '\\') ++i;
            else if (c == '"') inString = false;
        } else if (c == '"') {
            inString = true;
        } else if (c == '{' || c == '[') {
            maxDepth = std::max(maxDepth, ++depth);
            if (maxDepth > kMaxJsonDepth) return maxDepth;
        } else if (c == '}' || c == ']') {
            --depth;
        }
    }
    return maxDepth;
}

} // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
    const MappedFile& f = *file_;
    auto fail = [&](const std::string& what) -> Error { return Error(path + ": " + what); };
    if (f.sizeBytes() < 8) throw fail("not a safetensors file (shorter than its 8-byte header size)");
    uint64_t headerBytes = 0;
    for (int i = 7; i >= 0; --i) headerBytes = (headerBytes << 8) | f.data()[i];
    if (headerBytes > kMaxHeaderBytes)
        throw fail("header size " + std::to_string(headerBytes) + " is larger than the format allows");
    if (headerBytes > f.sizeBytes() - 8)
        throw fail("truncated: the " + std::to_string(headerBytes) + "-byte header runs past the end of the file");
    const char* headerText = reinterpret_cast<const char*>(f.data() + 8);
    if (headerBytes < 2 || headerText[0] != '{') throw fail("header is not a JSON object");
    if (jsonDepth(headerText, headerBytes) > kMaxJsonDepth) throw fail("header JSON is nested too deeply");

    nlohmann::json header;
    try {
        header = nlohmann::json::parse(headerText, headerText + headerBytes);
    } catch (const nlohmann::json::exception& e) {
        throw fail(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw fail("header is not a JSON object");

    const uint8_t* data = f.data() + 8 + headerBytes;
    const uint64_t dataBytes = f.sizeBytes() - 8 - headerBytes;
    struct Range {
        uint64_t begin, end;
        std::string name;
    };
    std::vector<Range> ranges;
    for (const auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            if (!info.is_object()) throw fail("__metadata__ is not an object");
            for (const auto& [k, v] : info.items()) {
                if (!v.is_string()) throw fail("__metadata__ value '" + k + "' is not a string");
                metadata_[k] = v.get<std::string>();
            }
            continue;
        }
        auto where = [&](const std::string& what) { return fail("tensor '" + name + "' " + what); };
        if (!info.is_object()) throw where("is not described by an object");
        auto dt = info.find("dtype");
        auto shape = info.find("shape");
        auto offsets = info.find("data_offsets");
        if (dt == info.end() || !dt->is_string()) throw where("has no dtype");
        if (shape == info.end() || !shape->is_array()) throw where("has no shape");
        if (offsets == info.end() || !offsets->is_array() || offsets->size() != 2) throw where("has no data_offsets pair");
        std::string dtype = dt->get<std::string>();
        int elementBytes = dtypeBytes(dtype);
        if (!elementBytes) throw where("has dtype '" + dtype + "', which is not a safetensors dtype");
        if (shape->size() > kMaxDims) throw where("has " + std::to_string(shape->size()) + " dimensions");

        // Element count with an overflow check: each dim <= 2^40, the product <= 2^50.
        std::vector<int64_t> dims;
        uint64_t elements = 1;
        for (const auto& d : *shape) {
            if (!d.is_number_unsigned()) throw where("has a shape entry that is not a non-negative integer");
            uint64_t n = d.get<uint64_t>();
            if (n > kMaxDim) throw where("has dimension " + std::to_string(n));
            if (n && elements > (uint64_t(1) << 50) / n) throw where("is impossibly large");
            elements *= n;
            dims.push_back(static_cast<int64_t>(n));
        }
        for (const auto& o : *offsets)
            if (!o.is_number_unsigned()) throw where("has data_offsets that are not non-negative integers");
        uint64_t begin = (*offsets)[0].get<uint64_t>(), end = (*offsets)[1].get<uint64_t>();
        if (begin > end || end > dataBytes) throw where("lies outside the file (truncated or corrupted)");
        if (end - begin != elements * static_cast<uint64_t>(elementBytes))
            throw where("has " + std::to_string(end - begin) + " bytes of data but its shape and dtype need " +
                        std::to_string(elements * elementBytes));
        ranges.push_back({begin, end, name});

        std::optional<DType> readable = readableDtype(dtype);
        if (!readable) {
            other_[name] = dtype;
            continue;
        }
        TensorView v;
        v.name = name;
        v.dims.assign(dims.rbegin(), dims.rend()); // GGUF order: the contiguous dimension first
        if (v.dims.empty()) v.dims.push_back(1);   // a scalar
        v.type = *readable;
        v.data = data + begin;
        v.sizeBytes = end - begin;
        index_.emplace(name, tensors_.size());
        tensors_.push_back(std::move(v));
    }

    // The data must be indexed entirely and without overlaps or holes (the format's rule).
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
        return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
    });
    uint64_t expected = 0;
    for (const Range& r : ranges) {
        if (r.begin < expected) throw fail("tensor '" + r.name + "' overlaps another tensor's data");
        if (r.begin > expected) throw fail("the data has a hole before tensor '" + r.name + "'");
        expected = r.end;
    }
    if (expected != dataBytes)
        throw fail("the header describes " + std::to_string(expected) + " bytes of data but the file holds " +
                   std::to_string(dataBytes));
}

const TensorView* SafetensorsFile::tensor(std::string_view name) const {
    auto it = index_.find(std::string(name));
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

} // namespace parley
