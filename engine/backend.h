#pragma once
// The interface every compute backend implements (DESIGN.md §1): the CPU backend in engine/,
// the CUDA backend in kernels/. The engine owns tokenizing, sampling and the session; a backend
// owns the weights in its own memory and the KV cache, and runs the forward pass.
#include "engine/error.h"
#include "engine/kv_cache_format.h"
#include "engine/model_config.h"
#include "engine/sampler.h"
#include "engine/weights.h"

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

    // Optional, for backends whose logits live elsewhere (the GPU): runs n tokens as forward()
    // does, then picks the next token from the last position's logits where they are, so that
    // only the token id crosses to the host. history: the tokens so far (repetition penalty);
    // uniform: a draw in [0, 1) from the caller's seeded generator.
    virtual bool samplesOnDevice() const { return false; }
    virtual int32_t forwardAndSample(const int32_t* tokens, int n, int startPos, const SamplingParams& params,
                                     const int32_t* history, int historyCount, float uniform) {
        throw Error(name() + ": sampling on the device is not supported");
    }
    // Optional (parley-bench): random weights of the given shape, made by the backend itself
    // (never zeros), in one precision for every matrix; groupSize for INT8/INT4.
    virtual void loadSynthetic(const ModelConfig& config, Precision precision, int groupSize, int maxContext,
                               uint64_t seed) {
        throw Error(name() + ": synthetic weights are not supported");
    }
    // Bytes of weights the decode step reads per token (0 where unknown).
    virtual uint64_t weightBytesPerToken() const { return 0; }
};

// threads <= 0: one per core. kvCache INT8: the cache stays FP16 in memory, but every K/V head
// vector is rounded through the 8-bit format as it is written (engine/kv_cache_format.h), so
// that the CPU attends over the values the GPU's 8-bit cache holds.
std::unique_ptr<Backend> makeCpuBackend(int threads, KvCacheType kvCache = KvCacheType::FP16);

} // namespace parley
