#pragma once
// A read-only memory map of a whole file. Model files are mapped, never read into memory,
// so opening a 13 GB model costs no RAM until its tensors are touched.
#include <cstdint>
#include <string>

namespace parley {

class MappedFile {
public:
    explicit MappedFile(const std::string& path); // throws Error
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    uint64_t sizeBytes() const { return sizeBytes_; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    uint64_t sizeBytes_ = 0;
};

} // namespace parley
