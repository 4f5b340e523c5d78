#pragma once
// The precision planner (DESIGN.md §3): free GPU memory minus a reserve must hold the weights at
// the chosen precision, the KV cache for the context (FP16, or 8-bit where asked:
// engine/kv_cache_format.h), and the backend's workspace. The highest of FP16 -> INT8 -> INT4
// that fits wins, never above the file's own precision (a Q4 file stays INT4). The user may ask
// for one; the plan says whether it fits. Pure arithmetic: no CUDA here — free memory comes from
// the VRAM probe (backend_registry.h).
#include "engine/kv_cache_format.h"
#include "engine/model_config.h"
#include "engine/weights.h"

#include <cstdint>
#include <optional>
#include <string>

namespace parley {

struct PrecisionPlanInput {
    ModelConfig config;
    Precision filePrecision = Precision::FP16; // the highest precision the file's matrices hold
    int contextLength = 2048;
    uint64_t freeBytes = 0;                    // free GPU memory now (cudaMemGetInfo)
    std::optional<Precision> requested;        // the user's override
    int int8GroupSize = 32;
    int int4GroupSize = 32;
    // The CUDA backend keeps an untied token embedding in host memory (it is only looked up);
    // a tied one is the output projection and lives on the GPU either way.
    bool untiedEmbeddingOnGpu = false;
    uint64_t reserveBytes = uint64_t(256) << 20; // cuBLAS, kernels, fragmentation
    // The K/V cache asked for: 8 bits take about half the bytes of FP16, which can let a higher
    // weight precision fit. Auto: at each precision the FP16 cache first, then the 8-bit one
    // (where the GPU takes the model's head size); the plan says which, and its reason says so.
    KvCacheRequest kvCache = KvCacheRequest::FP16;
};

struct GpuMemoryEstimate {
    uint64_t weightBytes = 0;
    uint64_t kvCacheBytes = 0;
    uint64_t workspaceBytes = 0;
    uint64_t reserveBytes = 0;
    uint64_t total() const { return weightBytes + kvCacheBytes + workspaceBytes + reserveBytes; }
};

struct PrecisionPlan {
    bool fits = false;
    Precision precision = Precision::INT4;
    GpuMemoryEstimate memory;   // for the chosen precision
    KvCacheType kvCache = KvCacheType::FP16; // the cache the plan counted
    uint64_t freeBytes = 0;
    std::string reason;         // "INT4 — needs 4.6 GB, 7.1 GB free" (", with an 8-bit K/V cache"
                                // after "free" when the input asks for it)
};

// What the CUDA backend will take for this model at precision p with a K/V cache of type kv (the
// token embedding and output projection never go below INT8, as ModelOptions does). Without kv:
// the type in.kvCache names (Auto: FP16).
GpuMemoryEstimate estimateGpuMemory(const PrecisionPlanInput& in, Precision p, KvCacheType kv);
GpuMemoryEstimate estimateGpuMemory(const PrecisionPlanInput& in, Precision p);
PrecisionPlan planPrecision(const PrecisionPlanInput& in);

// "INT4", "INT8", "FP16".
const char* precisionLabel(Precision p);
// 4.6e9 -> "4.6 GB" (decimal gigabytes, one decimal).
std::string formatGigabytes(uint64_t bytes);

} // namespace parley
