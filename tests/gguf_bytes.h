#pragma once
// Writes GGUF bytes by hand, so that tests can build small files and forge any field
// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md).
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace parley::test {

struct GgufBytes {
    std::vector<uint8_t> b;
    uint64_t kvCount = 0; // key/values written with the kv* helpers

    template <typename T> void put(T v) {
        uint8_t raw[sizeof(T)];
        std::memcpy(raw, &v, sizeof(T));
        b.insert(b.end(), raw, raw + sizeof(T));
    }
    void str(const std::string& s) {
        put<uint64_t>(s.size());
        b.insert(b.end(), s.begin(), s.end());
    }
    void header(uint32_t version, uint64_t tensors, uint64_t kvs) {
        put<uint32_t>(0x46554747);
        put<uint32_t>(version);
        put<uint64_t>(tensors);
        put<uint64_t>(kvs);
    }
    void kvStr(const std::string& k, const std::string& v) { str(k); put<uint32_t>(8); str(v); ++kvCount; }
    void kvU32(const std::string& k, uint32_t v) { str(k); put<uint32_t>(4); put<uint32_t>(v); ++kvCount; }
    void kvBool(const std::string& k, bool v) { str(k); put<uint32_t>(7); put<uint8_t>(v); ++kvCount; }
    void kvStrings(const std::string& k, const std::vector<std::string>& v) {
        str(k); put<uint32_t>(9); put<uint32_t>(8); put<uint64_t>(v.size());
        for (const auto& s : v) str(s);
        ++kvCount;
    }
    void kvInts(const std::string& k, const std::vector<int32_t>& v) {
        str(k); put<uint32_t>(9); put<uint32_t>(5); put<uint64_t>(v.size());
        for (int32_t x : v) put<int32_t>(x);
        ++kvCount;
    }
    void kvFloats(const std::string& k, const std::vector<float>& v) {
        str(k); put<uint32_t>(9); put<uint32_t>(6); put<uint64_t>(v.size());
        for (float x : v) put<float>(x);
        ++kvCount;
    }
    void tensorInfo(const std::string& name, std::vector<uint64_t> dims, uint32_t type, uint64_t offset) {
        str(name);
        put<uint32_t>(static_cast<uint32_t>(dims.size()));
        for (uint64_t d : dims) put<uint64_t>(d);
        put<uint32_t>(type);
        put<uint64_t>(offset);
    }
    void alignTo(size_t a) { while (b.size() % a) b.push_back(0); }
    // A metadata-only file: a version-3 header with no tensors, then the key/values written so far.
    std::vector<uint8_t> file() const {
        GgufBytes h;
        h.header(3, 0, kvCount);
        h.b.insert(h.b.end(), b.begin(), b.end());
        return h.b;
    }
};

} // namespace parley::test
