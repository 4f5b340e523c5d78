// Model::open: picks the loader for the path (a GGUF file or a Hugging Face folder), and the
// checks and weight conversion both loaders share.
#include "engine/model.h"

#include "engine/error.h"
#include "engine/model_loader.h"

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <new>

namespace parley {

uint64_t ModelWeights::sizeBytes() const {
    uint64_t total = tokenEmbedding.sizeBytes() + output.sizeBytes() + outputNorm.size() * sizeof(float);
    for (const LayerWeights& l : layers) {
        total += l.wq.sizeBytes() + l.wk.sizeBytes() + l.wv.sizeBytes() + l.wo.sizeBytes();
        total += l.wGate.sizeBytes() + l.wUp.sizeBytes() + l.wDown.sizeBytes();
        total += (l.attnNorm.size() + l.ffnNorm.size() + l.bq.size() + l.bk.size() + l.bv.size()) * sizeof(float);
    }
    return total;
}

std::unique_ptr<Model> Model::open(const std::string& path, const ModelOptions& options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p(path);
    if (fs::is_directory(p, ec)) return detail::openHuggingFace(path, options);
    if (!fs::exists(p, ec)) throw Error(path + ": no such file or folder");
    // A file inside a Hugging Face folder (config.json, a .safetensors shard) opens the folder.
    std::string ext = p.extension().string();
    if (p.filename() == "config.json" || ext == ".safetensors")
        return detail::openHuggingFace(p.parent_path().empty() ? "." : p.parent_path().string(), options);
    char magic[4] = {};
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(path + ": cannot be read");
    f.read(magic, 4);
    if (f.gcount() == 4 && std::memcmp(magic, "GGUF", 4) == 0) return detail::openGguf(path, options);
    throw Error(path + ": neither a GGUF file nor a Hugging Face model folder");
}

namespace detail {

int layerOfTensor(const std::string& name) {
    if (name.rfind("blk.", 0) != 0) return -1;
    size_t end = name.find('.', 4);
    if (end == std::string::npos || end == 4 || end - 4 > 6) return -1;
    int layer = 0;
    for (size_t i = 4; i < end; ++i) {
        if (name[i] < '0' || name[i] > '9') return -1;
        layer = layer * 10 + (name[i] - '0');
    }
    return layer;
}

void validateConfig(const std::string& path, const ModelConfig& c) {
    auto fail = [&](const std::string& what) { throw Error(path + ": " + what); };
    auto inRange = [&](const char* what, int64_t v, int64_t lo, int64_t hi) {
        if (v < lo || v > hi)
            fail(std::string(what) + " is " + std::to_string(v) + ", outside " + std::to_string(lo) + ".." +
                 std::to_string(hi));
    };
    inRange("the layer count", c.nLayer, 1, 1024);
    inRange("the model width", c.nEmbd, 1, 1 << 17);
    inRange("the head count", c.nHead, 1, 1024);
    inRange("the KV head count", c.nHeadKv, 1, c.nHead);
    if (c.nHead % c.nHeadKv != 0)
        fail(std::to_string(c.nHead) + " heads cannot be shared evenly by " + std::to_string(c.nHeadKv) + " KV heads");
    inRange("the head size", c.headDim, 2, 1024);
    if (c.headDim % 2 != 0) fail("the head size " + std::to_string(c.headDim) + " is odd; rotary embeddings need pairs");
    inRange("the MLP width", c.nFf, 1, 1 << 20);
    inRange("the context length", c.contextLength, 1, 1 << 24);
    if (!(c.normEps > 0 && c.normEps < 1)) fail("the RMSNorm epsilon " + std::to_string(c.normEps) + " is not in (0, 1)");
    if (!(c.ropeTheta > 1 && std::isfinite(c.ropeTheta)))
        fail("the rotary base " + std::to_string(c.ropeTheta) + " is not a finite number above 1");
    if (c.ropeScaling != RopeScalingType::None && !(c.ropeFactor > 0 && std::isfinite(c.ropeFactor)))
        fail("the rope scaling factor " + std::to_string(c.ropeFactor) + " is not a positive number");
    if (c.ropeScaling == RopeScalingType::Llama3 && c.ropeFreqFactors.empty()) {
        if (!(c.ropeHighFreqFactor > c.ropeLowFreqFactor && c.ropeLowFreqFactor > 0) || c.ropeOriginalContext <= 0)
            fail("the Llama-3 rope scaling parameters are inconsistent");
    }
    if (!c.ropeFreqFactors.empty()) {
        if (static_cast<int>(c.ropeFreqFactors.size()) != c.headDim / 2)
            fail("rope_freqs has " + std::to_string(c.ropeFreqFactors.size()) + " values, expected " +
                 std::to_string(c.headDim / 2) + " (half the head size)");
        for (float f : c.ropeFreqFactors)
            if (!(f > 0 && std::isfinite(f))) fail("rope_freqs holds a value that is not a positive number");
    }
}

namespace {

Precision filePrecision(DType t) {
    switch (t) {
    case DType::Q4_0: case DType::Q4_1: case DType::Q4_K: return Precision::INT4;
    case DType::Q8_0: case DType::Q6_K: return Precision::INT8;
    default: return Precision::FP16;
    }
}

std::string shapeText(const std::vector<int64_t>& dims) {
    std::string s = "[";
    for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
    return s + "]";
}

// Finds a tensor and checks its shape (GGUF order: the contiguous dimension first).
class TensorChecker {
public:
    TensorChecker(const std::string& path, const TensorMap& tensors, ModelInfo& info)
        : path_(path), tensors_(tensors), info_(info) {}

    const TensorView* optional(const std::string& name, std::vector<int64_t> dims) {
        auto it = tensors_.find(name);
        if (it == tensors_.end()) return nullptr;
        const TensorView& t = *it->second;
        // A matrix stored with trailing dimensions of 1 is still that matrix.
        std::vector<int64_t> have = t.dims;
        while (have.size() > dims.size() && have.back() == 1) have.pop_back();
        if (have != dims)
            throw Error(path_ + ": tensor '" + name + "' has shape " + shapeText(t.dims) + ", expected " +
                        shapeText(dims) + " from the hyperparameters");
        info_.tensorTypes[dtypeName(t.type)] += 1;
        info_.parameterCount += t.elementCount();
        return &t;
    }
    const TensorView& required(const std::string& name, std::vector<int64_t> dims) {
        const TensorView* t = optional(name, std::move(dims));
        if (!t) throw Error(path_ + ": tensor '" + name + "' is missing");
        return *t;
    }

private:
    const std::string& path_;
    const TensorMap& tensors_;
    ModelInfo& info_;
};

} // namespace

void buildWeights(const std::string& path, ModelConfig& c, const TensorMap& tensors, const ModelOptions& options,
                  ModelWeights& w, ModelInfo& info) {
    auto embd = tensors.find("token_embd.weight");
    if (embd == tensors.end()) throw Error(path + ": tensor 'token_embd.weight' is missing");
    if (embd->second->dims.size() != 2)
        throw Error(path + ": tensor 'token_embd.weight' has shape " + shapeText(embd->second->dims) +
                    ", expected [width, vocabulary]");
    int64_t vocab = embd->second->dims[1];
    if (c.vocabSize && c.vocabSize != vocab)
        throw Error(path + ": the vocabulary size is " + std::to_string(c.vocabSize) + " but token_embd.weight has " +
                    std::to_string(vocab) + " rows");
    if (vocab < 1 || vocab > (1 << 22)) throw Error(path + ": the vocabulary size " + std::to_string(vocab) + " is out of range");
    c.vocabSize = static_cast<int>(vocab);
    c.tiedEmbeddings = tensors.find("output.weight") == tensors.end();

    for (const auto& [name, t] : tensors) {
        int layer = layerOfTensor(name);
        if (layer >= c.nLayer)
            throw Error(path + ": tensor '" + name + "' belongs to layer " + std::to_string(layer) + " but the model has " +
                        std::to_string(c.nLayer) + " layers");
    }

    const int64_t E = c.nEmbd, Q = c.qDim(), KV = c.kvDim(), F = c.nFf, V = c.vocabSize;
    TensorChecker check(path, tensors, info);
    struct LayerViews {
        const TensorView *attnNorm, *wq, *wk, *wv, *bq, *bk, *bv, *wo, *ffnNorm, *wGate, *wUp, *wDown;
    };
    const TensorView& embdView = check.required("token_embd.weight", {E, V});
    const TensorView& normView = check.required("output_norm.weight", {E});
    const TensorView* outView = check.optional("output.weight", {E, V});
    std::vector<LayerViews> views(c.nLayer);
    for (int l = 0; l < c.nLayer; ++l) {
        std::string p = "blk." + std::to_string(l) + ".";
        LayerViews& v = views[l];
        v.attnNorm = &check.required(p + "attn_norm.weight", {E});
        v.wq = &check.required(p + "attn_q.weight", {E, Q});
        v.wk = &check.required(p + "attn_k.weight", {E, KV});
        v.wv = &check.required(p + "attn_v.weight", {E, KV});
        v.bq = check.optional(p + "attn_q.bias", {Q});
        v.bk = check.optional(p + "attn_k.bias", {KV});
        v.bv = check.optional(p + "attn_v.bias", {KV});
        if (c.qkvBias && !(v.bq && v.bk && v.bv))
            throw Error(path + ": layer " + std::to_string(l) + " lacks the Q/K/V biases " + c.architecture + " needs");
        if (!c.qkvBias && (v.bq || v.bk || v.bv))
            throw Error(path + ": layer " + std::to_string(l) + " has Q/K/V biases, which " + c.architecture +
                        " does not use");
        v.wo = &check.required(p + "attn_output.weight", {Q, E});
        v.ffnNorm = &check.required(p + "ffn_norm.weight", {E});
        v.wGate = &check.required(p + "ffn_gate.weight", {E, F});
        v.wUp = &check.required(p + "ffn_up.weight", {E, F});
        v.wDown = &check.required(p + "ffn_down.weight", {F, E});
    }
    if (options.metadataOnly) return;

    auto matrix = [&](const TensorView& t, bool embeddingOrOutput) {
        QuantizeOptions q;
        q.precision = options.precision.value_or(filePrecision(t.type));
        // The embedding and output projection never go below INT8 when a precision is asked for
        // (model.h): they are the layers most sensitive to quantization.
        if (options.precision && embeddingOrOutput && q.precision == Precision::INT4) q.precision = Precision::INT8;
        q.int8GroupSize = options.int8GroupSize;
        q.int4GroupSize = options.int4GroupSize;
        q.forceGroupSize = options.forceGroupSize;
        return toWeightMatrix(t, q);
    };
    try {
        w.tokenEmbedding = matrix(embdView, true);
        w.outputNorm = toFloats(normView);
        if (outView) w.output = matrix(*outView, true);
        w.layers.resize(c.nLayer);
        for (int l = 0; l < c.nLayer; ++l) {
            const LayerViews& v = views[l];
            LayerWeights& L = w.layers[l];
            L.attnNorm = toFloats(*v.attnNorm);
            L.wq = matrix(*v.wq, false);
            L.wk = matrix(*v.wk, false);
            L.wv = matrix(*v.wv, false);
            if (v.bq) {
                L.bq = toFloats(*v.bq);
                L.bk = toFloats(*v.bk);
                L.bv = toFloats(*v.bv);
            }
            L.wo = matrix(*v.wo, false);
            L.ffnNorm = toFloats(*v.ffnNorm);
            L.wGate = matrix(*v.wGate, false);
            L.wUp = matrix(*v.wUp, false);
            L.wDown = matrix(*v.wDown, false);
        }
    } catch (const std::bad_alloc&) {
        throw Error(path + ": not enough memory for the weights");
    } catch (const Error& e) {
        std::string what = e.what();
        if (what.rfind(path, 0) == 0) throw;
        throw Error(path + ": " + what);
    }
}

void checkTokenizer(const std::string& path, Model& m) {
    const Tokenizer& t = *m.tokenizer_;
    if (t.vocabSize() > m.config_.vocabSize)
        throw Error(path + ": the tokenizer has " + std::to_string(t.vocabSize()) + " tokens but the model only " +
                    std::to_string(m.config_.vocabSize));
    if (t.bos() >= m.config_.vocabSize || t.eos() >= m.config_.vocabSize)
        throw Error(path + ": the BOS or EOS token id lies outside the vocabulary");
    m.info_.tokenizerKind = t.kind() == TokenizerKind::SentencePiece ? "sentencepiece" : "bpe";
    m.info_.chatTemplate = chatTemplateFamilyName(m.chatTemplate_.family());
}

} // namespace detail
} // namespace parley
