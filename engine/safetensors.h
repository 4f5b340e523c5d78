#pragma once
// Reader for .safetensors files (https://huggingface.co/docs/safetensors, "Format"):
//   8 bytes   N, the header size, unsigned little-endian
//   N bytes   a JSON object: for each tensor {"dtype": "F16", "shape": [rows, cols],
//             "data_offsets": [begin, end]} (offsets relative to the byte after the header),
//             and optionally "__metadata__": {string: string}
//   the rest  the tensors' bytes, little-endian, row-major, indexed entirely and without holes.
// The file is memory-mapped. The header is validated before any tensor is used: its size, its
// JSON, each dtype, shape and offset pair (in range, matching shape x element size, no overlaps),
// so a truncated or hostile file gives one Error naming the file and the problem.
#include "engine/dtype.h"
#include "engine/mapped_file.h"

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace parley {

class SafetensorsFile {
public:
    explicit SafetensorsFile(const std::string& path); // throws Error

    const std::string& path() const { return file_->path(); }
    // Tensors of the dtypes Parley reads (F32, F16, BF16), dims reversed into GGUF order
    // (dims[0] contiguous).
    const std::vector<TensorView>& tensors() const { return tensors_; }
    const TensorView* tensor(std::string_view name) const;
    // Tensors that are valid but of a dtype Parley does not read (I64, F8_E4M3, ...): name -> dtype.
    const std::map<std::string, std::string>& otherTensors() const { return other_; }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    std::shared_ptr<const MappedFile> mapping() const { return file_; }

private:
    std::shared_ptr<const MappedFile> file_;
    std::vector<TensorView> tensors_;
    std::unordered_map<std::string, size_t> index_;
    std::map<std::string, std::string> other_;
    std::map<std::string, std::string> metadata_;
};

} // namespace parley
