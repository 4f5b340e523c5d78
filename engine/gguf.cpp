#include "engine/gguf.h"

#include "engine/error.h"

#include <cstring>

namespace parley {
namespace {

constexpr uint32_t kMagic = 0x46554747; // "GGUF" little-endian
constexpr int kMaxDims = 4;             // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;
constexpr uint64_t kMaxNameBytes = 1024;

// A cursor over the mapped header that refuses to read past the end of the file.
class Cursor {
public:
    Cursor(const MappedFile& f) : file_(f) {}

    uint64_t offset() const { return pos_; }
    uint64_t remaining() const { return file_.sizeBytes() - pos_; }

    [[noreturn]] void fail(const std::string& what) const {
        throw Error(file_.path() + ": " + what + " (at byte " + std::to_string(pos_) + ")");
    }

    void need(uint64_t n, const char* what) const {
        if (n > remaining()) fail(std::string("truncated: ") + what + " runs past the end of the file");
    }

    template <typename T> T read(const char* what) {
        need(sizeof(T), what);
        T v;
        std::memcpy(&v, file_.data() + pos_, sizeof(T));
        pos_ += sizeof(T);
        return v;
    }

    std::string readString(const char* what, uint64_t maxBytes = UINT64_MAX) {
        uint64_t n = read<uint64_t>(what);
        if (n > maxBytes) fail(std::string(what) + " is " + std::to_string(n) + " bytes long, more than allowed");
        need(n, what);
        std::string s(reinterpret_cast<const char*>(file_.data() + pos_), n);
        pos_ += n;
        return s;
    }

private:
    const MappedFile& file_;
    uint64_t pos_ = 0;
};

// The smallest number of bytes a value of this type takes, used to bound array counts by what
// the file can hold before anything is allocated.
uint64_t minValueBytes(GgufValueType t) {
    switch (t) {
    case GgufValueType::UInt8: case GgufValueType::Int8: case GgufValueType::Bool: return 1;
    case GgufValueType::UInt16: case GgufValueType::Int16: return 2;
    case GgufValueType::UInt32: case GgufValueType::Int32: case GgufValueType::Float32: return 4;
    case GgufValueType::UInt64: case GgufValueType::Int64: case GgufValueType::Float64: return 8;
    case GgufValueType::String: return 8;
    case GgufValueType::Array: return 12;
    }
    return 1;
}

bool validType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::Float64); }

const char* typeName(GgufValueType t) {
    switch (t) {
    case GgufValueType::UInt8: return "uint8";
    case GgufValueType::Int8: return "int8";
    case GgufValueType::UInt16: return "uint16";
    case GgufValueType::Int16: return "int16";
    case GgufValueType::UInt32: return "uint32";
    case GgufValueType::Int32: return "int32";
    case GgufValueType::Float32: return "float32";
    case GgufValueType::Bool: return "bool";
    case GgufValueType::String: return "string";
    case GgufValueType::Array: return "array";
    case GgufValueType::UInt64: return "uint64";
    case GgufValueType::Int64: return "int64";
    case GgufValueType::Float64: return "float64";
    }
    return "?";
}

GgufValue readValue(Cursor& c, GgufValueType type, int depth) {
    GgufValue v;
    v.type = type;
    switch (type) {
    case GgufValueType::UInt8: v.u = c.read<uint8_t>("uint8 value"); break;
    case GgufValueType::Int8: v.i = c.read<int8_t>("int8 value"); break;
    case GgufValueType::UInt16: v.u = c.read<uint16_t>("uint16 value"); break;
    case GgufValueType::Int16: v.i = c.read<int16_t>("int16 value"); break;
    case GgufValueType::UInt32: v.u = c.read<uint32_t>("uint32 value"); break;
    case GgufValueType::Int32: v.i = c.read<int32_t>("int32 value"); break;
    case GgufValueType::UInt64: v.u = c.read<uint64_t>("uint64 value"); break;
    case GgufValueType::Int64: v.i = c.read<int64_t>("int64 value"); break;
    case GgufValueType::Float32: v.f = c.read<float>("float32 value"); break;
    case GgufValueType::Float64: v.f = c.read<double>("float64 value"); break;
    case GgufValueType::Bool: {
        uint8_t b = c.read<uint8_t>("bool value");
        if (b > 1) c.fail("bool value is " + std::to_string(b) + ", not 0 or 1");
        v.b = b != 0;
        break;
    }
    case GgufValueType::String: v.s = c.readString("string value"); break;
    case GgufValueType::Array: {
        if (depth >= kMaxArrayDepth) c.fail("arrays nested deeper than " + std::to_string(kMaxArrayDepth));
        uint32_t et = c.read<uint32_t>("array element type");
        if (!validType(et)) c.fail("array element type " + std::to_string(et) + " is not a GGUF type");
        v.elementType = static_cast<GgufValueType>(et);
        uint64_t n = c.read<uint64_t>("array length");
        if (n > c.remaining() / minValueBytes(v.elementType))
            c.fail("array of " + std::to_string(n) + " " + typeName(v.elementType) +
                   " elements cannot fit in the rest of the file");
        v.array.reserve(n);
        for (uint64_t k = 0; k < n; ++k) v.array.push_back(readValue(c, v.elementType, depth + 1));
        break;
    }
    }
    return v;
}

} // namespace

bool GgufValue::isInteger() const {
    switch (type) {
    case GgufValueType::UInt8: case GgufValueType::Int8: case GgufValueType::UInt16:
    case GgufValueType::Int16: case GgufValueType::UInt32: case GgufValueType::Int32:
    case GgufValueType::UInt64: case GgufValueType::Int64: return true;
    default: return false;
    }
}

GgufFile::GgufFile(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
    const MappedFile& f = *file_;
    Cursor c(f);
    if (f.sizeBytes() < 4 || c.read<uint32_t>("magic") != kMagic) {
        throw Error(path + ": not a GGUF file (no GGUF magic)");
    }
    version_ = c.read<uint32_t>("version");
    if (version_ != 2 && version_ != 3)
        c.fail("GGUF version " + std::to_string(version_) + " is not supported (only 2 and 3)");
    uint64_t tensorCount = c.read<uint64_t>("tensor count");
    uint64_t kvCount = c.read<uint64_t>("metadata count");
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at
    // least 8 + 4 + 8 + 4 + 8. Bound the counts by the file before looping on them.
    if (kvCount > c.remaining() / 13) c.fail("metadata count " + std::to_string(kvCount) + " cannot fit in the file");
    if (tensorCount > c.remaining() / 32) c.fail("tensor count " + std::to_string(tensorCount) + " cannot fit in the file");

    for (uint64_t k = 0; k < kvCount; ++k) {
        std::string key = c.readString("metadata key", kMaxNameBytes);
        uint32_t t = c.read<uint32_t>("metadata value type");
        if (!validType(t)) c.fail("metadata '" + key + "' has type " + std::to_string(t) + ", not a GGUF type");
        GgufValue v = readValue(c, static_cast<GgufValueType>(t), 0);
        if (values_.count(key)) c.fail("metadata key '" + key + "' appears twice");
        keyOrder_.push_back(key);
        values_.emplace(std::move(key), std::move(v));
    }

    if (const GgufValue* a = find("general.alignment")) {
        if (!a->isInteger()) c.fail("general.alignment is not an integer");
        uint64_t al = a->type == GgufValueType::UInt32 || a->type == GgufValueType::UInt64 ||
                              a->type == GgufValueType::UInt16 || a->type == GgufValueType::UInt8
                          ? a->u
                          : static_cast<uint64_t>(a->i);
        if (al == 0 || (al & (al - 1)) != 0 || al > (1u << 20))
            c.fail("general.alignment " + std::to_string(al) + " is not a power of two up to 1 MiB");
        alignment_ = al;
    }

    struct RawInfo {
        std::string name;
        std::vector<int64_t> dims;
        uint32_t type;
        uint64_t offset;
    };
    std::vector<RawInfo> infos;
    infos.reserve(tensorCount);
    for (uint64_t k = 0; k < tensorCount; ++k) {
        RawInfo r;
        r.name = c.readString("tensor name", kMaxNameBytes);
        uint32_t nDims = c.read<uint32_t>("tensor dimension count");
        if (nDims == 0 || nDims > kMaxDims)
            c.fail("tensor '" + r.name + "' has " + std::to_string(nDims) + " dimensions (1 to 4 allowed)");
        for (uint32_t d = 0; d < nDims; ++d) {
            uint64_t n = c.read<uint64_t>("tensor dimension");
            if (n == 0 || n > (uint64_t(1) << 40))
                c.fail("tensor '" + r.name + "' has dimension " + std::to_string(n));
            r.dims.push_back(static_cast<int64_t>(n));
        }
        r.type = c.read<uint32_t>("tensor type");
        r.offset = c.read<uint64_t>("tensor offset");
        infos.push_back(std::move(r));
    }

    uint64_t dataStart = (c.offset() + alignment_ - 1) / alignment_ * alignment_;
    if (dataStart > f.sizeBytes() && tensorCount > 0)
        throw Error(path + ": truncated: the tensor data section is missing");
    uint64_t dataBytes = f.sizeBytes() > dataStart ? f.sizeBytes() - dataStart : 0;

    tensors_.reserve(infos.size());
    for (RawInfo& r : infos) {
        auto where = [&](const std::string& what) { return path + ": tensor '" + r.name + "' " + what; };
        std::optional<DType> dt = dtypeFromGgml(r.type);
        if (!dt) throw Error(where("has type " + ggmlTypeName(r.type) + ", which Parley does not read"));
        // Element count with overflow check: each dim <= 2^40 and the product must stay <= 2^50.
        uint64_t elements = 1;
        for (int64_t d : r.dims) {
            if (elements > (uint64_t(1) << 50) / static_cast<uint64_t>(d)) throw Error(where("is impossibly large"));
            elements *= static_cast<uint64_t>(d);
        }
        if (r.dims[0] % blockElements(*dt) != 0)
            throw Error(where("has a row of " + std::to_string(r.dims[0]) + " elements, not a multiple of " +
                              std::to_string(blockElements(*dt)) + " as " + dtypeName(*dt) + " needs"));
        uint64_t bytes = elements / blockElements(*dt) * blockBytes(*dt);
        if (r.offset % alignment_ != 0) throw Error(where("has an offset not aligned to " + std::to_string(alignment_)));
        if (r.offset > dataBytes || bytes > dataBytes - r.offset)
            throw Error(where("lies outside the file (truncated or corrupted)"));
        if (tensorIndex_.count(r.name)) throw Error(where("appears twice"));
        TensorView v;
        v.name = r.name;
        v.dims = r.dims;
        v.type = *dt;
        v.data = f.data() + dataStart + r.offset;
        v.sizeBytes = bytes;
        tensorIndex_.emplace(r.name, tensors_.size());
        tensors_.push_back(std::move(v));
    }
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = values_.find(std::string(key));
    return it == values_.end() ? nullptr : &it->second;
}

std::string GgufFile::getString(std::string_view key, const std::string& fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufValueType::String) throw Error(path() + ": metadata '" + std::string(key) + "' is not a string");
    return v->s;
}

int64_t GgufFile::getInt(std::string_view key, int64_t fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (!v->isInteger()) throw Error(path() + ": metadata '" + std::string(key) + "' is not an integer");
    switch (v->type) {
    case GgufValueType::UInt8: case GgufValueType::UInt16: case GgufValueType::UInt32: case GgufValueType::UInt64:
        if (v->u > static_cast<uint64_t>(INT64_MAX))
            throw Error(path() + ": metadata '" + std::string(key) + "' is out of range");
        return static_cast<int64_t>(v->u);
    default: return v->i;
    }
}

double GgufFile::getFloat(std::string_view key, double fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->isFloat()) return v->f;
    if (v->isInteger()) return static_cast<double>(getInt(key, 0));
    throw Error(path() + ": metadata '" + std::string(key) + "' is not a number");
}

bool GgufFile::getBool(std::string_view key, bool fallback) const {
    const GgufValue* v = find(key);
    if (!v) return fallback;
    if (v->type != GgufValueType::Bool) throw Error(path() + ": metadata '" + std::string(key) + "' is not a bool");
    return v->b;
}

const std::vector<GgufValue>& GgufFile::getArray(std::string_view key, GgufValueType type) const {
    static const std::vector<GgufValue> empty;
    const GgufValue* v = find(key);
    if (!v) return empty;
    if (v->type != GgufValueType::Array || v->elementType != type)
        throw Error(path() + ": metadata '" + std::string(key) + "' is not an array of " + typeName(type));
    return v->array;
}

const TensorView* GgufFile::tensor(std::string_view name) const {
    auto it = tensorIndex_.find(std::string(name));
    return it == tensorIndex_.end() ? nullptr : &tensors_[it->second];
}

} // namespace parley
