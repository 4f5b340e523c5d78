#pragma once
// The interface every compute backend implements (DESIGN.md §1): the CPU backend in engine/,
// the CUDA backend in kernels/. The engine owns tokenizing, sampling and the session; a backend
// owns the weights in its own memory and the KV cache, and runs the forward pass.
#include "engine/model_config.h"

#include <cstdint>
#include <memory>
#include <string>

namespace parley {

struct ModelWeights;

class Backend {
public:
    virtual ~Backend() = default;
    // "cpu (2 threads, AVX2)", "cuda: NVIDIA H100 80GB HBM3".
    virtual std::string name() const = 0;
    // Takes the weights into the backend's memory and allocates a KV cache for maxContext
    // positions. Throws Error (nothing held afterwards) when memory runs out.
    virtual void load(const ModelConfig& config, const ModelWeights& weights, int maxContext) = 0;
    virtual int maxContext() const = 0;
    // Runs n tokens at positions startPos .. startPos+n-1, writing their K/V into the cache;
    // positions below startPos must already be there. Writes n*vocab logits when allLogits,
    // else the vocab logits of the last token only.
    virtual void forward(const int32_t* tokens, int n, int startPos, bool allLogits, float* logits) = 0;
};

std::unique_ptr<Backend> makeCpuBackend(int threads); // threads <= 0: one per core

} // namespace parley
