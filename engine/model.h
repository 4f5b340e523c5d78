#pragma once
// A loaded model: hyperparameters, weights in the engine's formats, tokenizer and chat template.
// Model::open reads a GGUF file or a Hugging Face folder (config.json + *.safetensors).
#include "engine/chat_template.h"
#include "engine/model_config.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace parley {

struct LayerWeights {
    std::vector<float> attnNorm; // [nEmbd]
    WeightMatrix wq;             // [qDim][nEmbd]
    WeightMatrix wk;             // [kvDim][nEmbd]
    WeightMatrix wv;             // [kvDim][nEmbd]
    std::vector<float> bq;       // [qDim]  (qkvBias only)
    std::vector<float> bk;       // [kvDim] (qkvBias only)
    std::vector<float> bv;       // [kvDim] (qkvBias only)
    WeightMatrix wo;             // [nEmbd][qDim]
    std::vector<float> ffnNorm;  // [nEmbd]
    WeightMatrix wGate;          // [nFf][nEmbd]
    WeightMatrix wUp;            // [nFf][nEmbd]
    WeightMatrix wDown;          // [nEmbd][nFf]
};

struct ModelWeights {
    WeightMatrix tokenEmbedding; // [vocab][nEmbd]; a row is a token's embedding
    std::vector<LayerWeights> layers;
    std::vector<float> outputNorm; // [nEmbd]
    WeightMatrix output;           // [vocab][nEmbd]; empty when tied to tokenEmbedding
    const WeightMatrix& outputProjection() const { return output.rows ? output : tokenEmbedding; }
    uint64_t sizeBytes() const;
};

struct ModelOptions {
    // Empty: each tensor keeps the file's own precision (Q4_x -> INT4, Q8_0/Q6_K -> INT8,
    // F16/BF16/F32 -> FP16). Set: every matrix in that precision, except that the token embedding
    // and output projection never go below INT8.
    std::optional<Precision> precision;
    int int8GroupSize = 32;
    int int4GroupSize = 32;
    bool forceGroupSize = false;
    // Only the header, hyperparameters and tokenizer: no weights (for `info`, validation).
    bool metadataOnly = false;
};

struct ModelInfo {
    std::string path;
    std::string format;                          // "gguf v3", "safetensors"
    std::map<std::string, int64_t> tensorTypes;  // file tensor type -> count
    int64_t parameterCount = 0;
    std::string tokenizerKind;                   // "sentencepiece" or "bpe"
    std::string chatTemplate;                    // family name
};

class Model {
public:
    static std::unique_ptr<Model> open(const std::string& path, const ModelOptions& options = {});

    const ModelConfig& config() const { return config_; }
    const ModelWeights& weights() const { return weights_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    const ChatTemplate& chatTemplate() const { return chatTemplate_; }
    const ModelInfo& info() const { return info_; }

    ModelConfig config_;
    ModelWeights weights_;
    std::unique_ptr<Tokenizer> tokenizer_;
    ChatTemplate chatTemplate_;
    ModelInfo info_;
};

} // namespace parley
