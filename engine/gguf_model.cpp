// Reading a LLaMA-family model from a GGUF file: hyperparameters from the `{arch}.*` keys
// (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md, "LLM" section), tensors by their
// GGUF names, tokenizer and chat template from `tokenizer.*`.
#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/model_loader.h"

#include <cmath>
#include <limits>

namespace parley::detail {

std::unique_ptr<Model> openGguf(const std::string& path, const ModelOptions& options) {
    GgufFile file(path);
    auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };

    auto model = std::make_unique<Model>();
    ModelConfig& c = model->config_;
    const std::string arch = file.getString("general.architecture");
    if (arch.empty()) fail("general.architecture is missing");
    if (arch != "llama" && arch != "qwen2") fail("unsupported architecture " + arch);
    c.architecture = arch;
    c.name = file.getString("general.name");

    auto key = [&](const char* k) { return arch + "." + k; };
    auto getInt = [&](const char* k, int64_t fallback) -> int {
        int64_t v = file.getInt(key(k), fallback);
        if (v < 0 || v > std::numeric_limits<int>::max()) fail(key(k) + " is " + std::to_string(v) + ", out of range");
        return static_cast<int>(v);
    };
    auto requireInt = [&](const char* k) {
        if (!file.find(key(k))) fail(key(k) + " is missing");
        return getInt(k, 0);
    };
    c.nLayer = requireInt("block_count");
    c.nEmbd = requireInt("embedding_length");
    c.nFf = requireInt("feed_forward_length");
    c.nHead = requireInt("attention.head_count");
    c.nHeadKv = getInt("attention.head_count_kv", c.nHead);
    c.contextLength = requireInt("context_length");
    if (c.nHead > 0 && !file.find(key("attention.key_length")) && c.nEmbd % c.nHead != 0)
        fail("the model width " + std::to_string(c.nEmbd) + " is not a multiple of the head count " +
             std::to_string(c.nHead));
    c.headDim = getInt("attention.key_length", c.nHead > 0 ? c.nEmbd / c.nHead : 0);
    if (getInt("attention.value_length", c.headDim) != c.headDim) fail("key and value head sizes differ");
    int64_t vocab = file.getInt(key("vocab_size"), 0);
    if (vocab < 0 || vocab > (1 << 22)) fail(key("vocab_size") + " is out of range");
    c.vocabSize = static_cast<int>(vocab);
    c.normEps = static_cast<float>(file.getFloat(key("attention.layer_norm_rms_epsilon"), 1e-5));
    c.ropeTheta = static_cast<float>(file.getFloat(key("rope.freq_base"), 10000.0));
    c.qkvBias = arch == "qwen2";
    // llama.cpp's converter permutes llama Q/K rows so that adjacent pairs rotate; qwen2 keeps
    // the Hugging Face row order and rotates NeoX-style (halves of each head).
    c.ropeNeox = arch == "qwen2";

    std::string scaling = file.getString(key("rope.scaling.type"), "none");
    if (scaling == "linear") {
        c.ropeScaling = RopeScalingType::Linear;
        c.ropeFactor = static_cast<float>(file.getFloat(key("rope.scaling.factor"), 1.0));
    } else if (scaling == "none") {
        // Older files carry linear scaling as rope.scale_linear.
        double linear = file.getFloat(key("rope.scale_linear"), 1.0);
        if (linear != 1.0) {
            c.ropeScaling = RopeScalingType::Linear;
            c.ropeFactor = static_cast<float>(linear);
        }
    } else {
        fail("rope scaling '" + scaling + "' is not supported");
    }
    // Llama-3 scaling: llama.cpp's converter writes the per-frequency divisors as a tensor.
    if (const TensorView* freqs = file.tensor("rope_freqs.weight")) {
        if (freqs->type != DType::F32 || freqs->dims.size() != 1 || freqs->dims[0] != c.headDim / 2)
            fail("tensor 'rope_freqs.weight' should be " + std::to_string(c.headDim / 2) + " F32 values");
        c.ropeFreqFactors = toFloats(*freqs);
        c.ropeScaling = RopeScalingType::Llama3;
        c.ropeFactor = 1;
        for (float f : c.ropeFreqFactors) c.ropeFactor = std::max(c.ropeFactor, f);
    }
    validateConfig(path, c);
    if (getInt("rope.dimension_count", c.headDim) != c.headDim)
        fail("rotary embeddings over part of each head are not supported");

    ModelInfo& info = model->info_;
    info.path = path;
    info.format = "gguf v" + std::to_string(file.version());
    TensorMap tensors;
    for (const TensorView& t : file.tensors())
        if (t.name != "rope_freqs.weight") tensors.emplace(t.name, &t);
    buildWeights(path, c, tensors, options, model->weights_, info);

    model->tokenizer_ = Tokenizer::fromGguf(file);
    model->chatTemplate_ = ChatTemplate::detect(file.getString("tokenizer.chat_template"));
    checkTokenizer(path, *model);
    return model;
}

} // namespace parley::detail
