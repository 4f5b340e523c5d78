#pragma once
// Hyperparameters of a LLaMA-family model (DESIGN.md §2): RMSNorm, rotary embeddings,
// grouped-query attention, SwiGLU MLP, optional tied embeddings and QKV bias.
#include <cstdint>
#include <string>
#include <vector>

namespace parley {

enum class RopeScalingType { None, Linear, Llama3 };

struct ModelConfig {
    std::string architecture;  // "llama" or "qwen2"
    std::string name;          // human-readable, from the file
    int nLayer = 0;
    int nEmbd = 0;             // model width
    int nHead = 0;
    int nHeadKv = 0;
    int headDim = 0;           // nEmbd / nHead unless the file says otherwise
    int nFf = 0;               // MLP hidden width
    int vocabSize = 0;
    int contextLength = 0;     // trained context
    float normEps = 1e-5f;
    float ropeTheta = 10000.f;
    // true: rotate pairs (i, i + headDim/2) as Hugging Face does (NeoX style);
    // false: rotate adjacent pairs (2i, 2i+1) as GGUF llama files expect (their Q/K rows are
    // permuted by the converter).
    bool ropeNeox = false;
    RopeScalingType ropeScaling = RopeScalingType::None;
    float ropeFactor = 1.f;                 // Linear and Llama3
    float ropeLowFreqFactor = 1.f;          // Llama3
    float ropeHighFreqFactor = 4.f;         // Llama3
    int ropeOriginalContext = 8192;         // Llama3
    // [headDim/2] divisors of each rotary frequency, as llama.cpp's converter writes Llama-3
    // scaling into a GGUF (tensor rope_freqs.weight). When set they replace the Llama3 formula.
    std::vector<float> ropeFreqFactors;
    bool tiedEmbeddings = false;            // output projection = token embedding
    bool qkvBias = false;                   // Qwen2

    int qDim() const { return nHead * headDim; }
    int kvDim() const { return nHeadKv * headDim; }
    // Bytes of FP16 K and V cache per token of context (kvCacheBytesPerToken in
    // engine/kv_cache_format.h also knows the 8-bit cache).
    int64_t kvBytesPerToken() const { return int64_t(2) * nLayer * kvDim() * 2; }
};

// The rotary inverse frequencies [headDim/2] every backend uses: theta^(-2i/headDim), then
// divided by ropeFactor (Linear: positions scaled down), by Meta's apply_scaling (Llama3), or
// by ropeFreqFactors where the file gives them.
std::vector<double> ropeInverseFrequencies(const ModelConfig& config);

} // namespace parley
