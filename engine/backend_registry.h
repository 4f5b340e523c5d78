#pragma once
// Chooses and creates a compute backend (DESIGN.md §1). The CUDA backend is a shared library,
// libparley_cuda.so, loaded at run time from the executable's ../lib or its own folder (or the
// path in PARLEY_CUDA_LIBRARY, which when set is the only one tried): the engine itself never links CUDA, so a machine without a
// driver, a GPU or the CUDA libraries runs on the CPU. "auto" tries CUDA and, on any failure at
// start, says why once and uses the CPU.
#include "engine/backend.h"
#include "engine/kv_cache_format.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley {

struct BackendOptions {
    int cpuThreads = 0;                      // <= 0: one per core
    int cudaDevice = 0;
    // FP16 matrices arriving at the CUDA backend are quantized on the GPU to this precision.
    std::optional<Precision> quantizeOnDevice;
    int int8GroupSize = 32;
    int int4GroupSize = 32;
    bool usePdl = true;                      // programmatic dependent launch in the decode graph
    bool useGraphs = true;                   // the decode step as a CUDA graph
    bool embeddingsOnHost = true;            // an untied embedding table stays in pinned host memory
    // The K/V cache's element type (engine/kv_cache_format.h). The CUDA backend refuses INT8 at
    // load for head sizes other than 64 and 128; the CPU backend emulates its rounding.
    KvCacheType kvCache = KvCacheType::FP16;
};

struct GpuDevice {
    int index = 0;
    std::string name;
    int computeMajor = 0, computeMinor = 0;
    uint64_t freeBytes = 0, totalBytes = 0;
    int multiprocessors = 0;
};

// kind: "auto", "cpu" or "cuda". "cuda" throws Error when the CUDA backend cannot start; "auto"
// falls back to the CPU and puts the reason (one line) into *notice when notice is given.
std::unique_ptr<Backend> makeBackend(const std::string& kind, const BackendOptions& options = {},
                                     std::string* notice = nullptr);

// The GPUs the CUDA library sees, with their free memory now. Empty, with the reason in *error,
// where the library or a device is missing.
std::vector<GpuDevice> probeGpus(std::string* error = nullptr);

// Device-to-device copy bandwidth (read + write counted), GB/s; throws Error without CUDA.
double measureGpuCopyBandwidth(int device, uint64_t bytes, int repeats);

// One decode GEMV (rows x cols, random weights) timed alone on the GPU, with the epilogue the
// decode step gives that matrix (plain store, residual add, SwiGLU, or rotary embedding with
// the K/V write; the last two with the RMSNorm fused): microseconds a launch and weight bytes
// read a second (GB/s). Throws Error without CUDA.
struct GemvTiming {
    double microseconds = 0;
    double gbPerSecond = 0;
};
enum class GemvBenchEpilogue { Store = 0, Residual = 1, GateUp = 2, Qkv = 3 };
GemvTiming benchmarkGpuGemv(int device, Precision precision, int groupSize, int64_t rows, int64_t cols,
                            GemvBenchEpilogue epilogue, int headDim, int launches);

// The path the CUDA library was loaded from (empty before the first successful load), and
// whether it can be loaded at all (the reason in *error when not).
std::string cudaLibraryPath();
bool cudaLibraryAvailable(std::string* error = nullptr);

} // namespace parley
