#pragma once
// Inside Model::open (model.cpp): the GGUF loader (gguf_model.cpp) and the Hugging Face loader
// (hf_model.cpp) each read hyperparameters, tokenizer and tensors from their format; the checks
// and the conversion into the engine's weight formats are shared and live in model.cpp.
#include "engine/model.h"

#include <string>
#include <unordered_map>

namespace parley::detail {

// A model's tensors by their GGUF names: token_embd.weight, blk.N.attn_q.weight, output.weight...
using TensorMap = std::unordered_map<std::string, const TensorView*>;

std::unique_ptr<Model> openGguf(const std::string& path, const ModelOptions& options);
std::unique_ptr<Model> openHuggingFace(const std::string& folder, const ModelOptions& options);

// Checks the hyperparameters against each other and against sane limits; Error naming `path`.
void validateConfig(const std::string& path, const ModelConfig& config);
// Fills config.vocabSize and config.tiedEmbeddings from the tensors, checks every tensor's shape
// against the hyperparameters, then (unless options.metadataOnly) converts the weights.
// info gets tensorTypes and parameterCount.
void buildWeights(const std::string& path, ModelConfig& config, const TensorMap& tensors,
                  const ModelOptions& options, ModelWeights& weights, ModelInfo& info);
// Checks the tokenizer's ids against the model's vocabulary and fills info.tokenizerKind and
// info.chatTemplate.
void checkTokenizer(const std::string& path, Model& model);
// The layer index of a "blk.N.*" name, or -1.
int layerOfTensor(const std::string& name);

} // namespace parley::detail
