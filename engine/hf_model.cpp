// Reading a LLaMA-family model from a Hugging Face folder: config.json (transformers'
// LlamaConfig / MistralConfig / Qwen2Config fields), the weights in one or several .safetensors
// files (with model.safetensors.index.json naming the file of each tensor), the tokenizer
// (tokenizer.model or tokenizer.json) and the chat template from tokenizer_config.json.
// Hugging Face keeps Q/K rows in their original order, so rotary embeddings rotate NeoX-style.
#include "engine/error.h"
#include "engine/model_loader.h"
#include "engine/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

namespace parley::detail {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr uint64_t kMaxJsonFileBytes = 64u << 20;

json readJsonFile(const std::string& path) {
    std::error_code ec;
    uint64_t size = fs::file_size(path, ec);
    if (ec) throw Error(path + ": cannot be read");
    if (size > kMaxJsonFileBytes) throw Error(path + ": is " + std::to_string(size) + " bytes, too large for a JSON file");
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    if (!f) throw Error(path + ": cannot be read");
    try {
        return json::parse(s.str());
    } catch (const json::exception& e) {
        throw Error(path + ": not valid JSON (" + e.what() + ")");
    }
}

// Typed access to config.json with errors that name the file and the key.
class Config {
public:
    Config(std::string path, json j) : path_(std::move(path)), j_(std::move(j)) {
        if (!j_.is_object()) throw Error(path_ + ": not a JSON object");
    }
    const json* find(const char* key) const {
        auto it = j_.find(key);
        return it == j_.end() || it->is_null() ? nullptr : &*it;
    }
    int integer(const char* key, std::optional<int> fallback = std::nullopt) const {
        const json* v = find(key);
        if (!v) {
            if (!fallback) throw Error(path_ + ": '" + key + "' is missing");
            return *fallback;
        }
        if (!v->is_number_integer() || v->get<int64_t>() < 0 || v->get<int64_t>() > std::numeric_limits<int>::max())
            throw Error(path_ + ": '" + key + "' is not an integer in range");
        return v->get<int>();
    }
    double number(const char* key, double fallback) const {
        const json* v = find(key);
        if (!v) return fallback;
        if (!v->is_number()) throw Error(path_ + ": '" + key + "' is not a number");
        return v->get<double>();
    }
    bool boolean(const char* key, bool fallback) const {
        const json* v = find(key);
        if (!v) return fallback;
        if (!v->is_boolean()) throw Error(path_ + ": '" + key + "' is not true or false");
        return v->get<bool>();
    }
    std::string string(const char* key) const {
        const json* v = find(key);
        return v && v->is_string() ? v->get<std::string>() : std::string();
    }
    const std::string& path() const { return path_; }

private:
    std::string path_;
    json j_;
};

const std::pair<const char*, const char*> kPerLayerNames[] = {
        {"input_layernorm.weight", "attn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},
        {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},
        {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},
        {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.o_proj.bias", "attn_output.bias"},
        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},
        {"mlp.down_proj.weight", "ffn_down.weight"},
};

// Hugging Face tensor names -> GGUF names (the names buildWeights expects).
std::string ggufName(const std::string& hf) {
    if (hf == "model.embed_tokens.weight") return "token_embd.weight";
    if (hf == "model.norm.weight") return "output_norm.weight";
    if (hf == "lm_head.weight") return "output.weight";
    const std::string prefix = "model.layers.";
    if (hf.rfind(prefix, 0) != 0) return {};
    size_t dot = hf.find('.', prefix.size());
    if (dot == std::string::npos || dot == prefix.size() || dot - prefix.size() > 6) return {};
    std::string layer = hf.substr(prefix.size(), dot - prefix.size());
    if (!std::all_of(layer.begin(), layer.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) return {};
    std::string rest = hf.substr(dot + 1);
    for (const auto& [from, to] : kPerLayerNames)
        if (rest == from) return "blk." + std::to_string(std::stoi(layer)) + "." + to;
    return {};
}

// The other way, for messages about tensors that are missing.
std::string huggingFaceName(const std::string& gguf) {
    if (gguf == "token_embd.weight") return "model.embed_tokens.weight";
    if (gguf == "output_norm.weight") return "model.norm.weight";
    if (gguf == "output.weight") return "lm_head.weight";
    int layer = layerOfTensor(gguf);
    if (layer < 0) return gguf;
    std::string rest = gguf.substr(gguf.find('.', 4) + 1);
    for (const auto& [hf, g] : kPerLayerNames)
        if (rest == g) return "model.layers." + std::to_string(layer) + "." + hf;
    return gguf;
}

// The chat template text: tokenizer_config.json's chat_template (a string, or a list of named
// templates of which "default" is used), else a chat_template.jinja file.
std::string readChatTemplate(const fs::path& folder) {
    fs::path cfgPath = folder / "tokenizer_config.json";
    std::error_code ec;
    if (fs::exists(cfgPath, ec)) {
        json cfg = readJsonFile(cfgPath.string());
        if (cfg.is_object() && cfg.contains("chat_template")) {
            const json& t = cfg["chat_template"];
            if (t.is_string()) return t.get<std::string>();
            if (t.is_array()) {
                std::string first;
                for (const json& e : t) {
                    if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
                    std::string text = e["template"].get<std::string>();
                    if (e.contains("name") && e["name"] == "default") return text;
                    if (first.empty()) first = text;
                }
                return first;
            }
        }
    }
    fs::path jinja = folder / "chat_template.jinja";
    if (fs::exists(jinja, ec) && fs::file_size(jinja, ec) < kMaxJsonFileBytes) {
        std::ifstream f(jinja, std::ios::binary);
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }
    return {};
}

} // namespace

std::unique_ptr<Model> openHuggingFace(const std::string& folderPath, const ModelOptions& options) {
    fs::path folder(folderPath);
    std::error_code ec;
    fs::path configPath = folder / "config.json";
    if (!fs::exists(configPath, ec)) throw Error(folderPath + ": not a Hugging Face model folder (no config.json)");
    Config cfg(configPath.string(), readJsonFile(configPath.string()));
    auto fail = [&](const std::string& what) { throw Error(cfg.path() + ": " + what); };

    auto model = std::make_unique<Model>();
    ModelConfig& c = model->config_;
    std::string arch;
    if (const json* a = cfg.find("architectures"); a && a->is_array() && !a->empty() && (*a)[0].is_string())
        arch = (*a)[0].get<std::string>();
    std::string modelType = cfg.string("model_type");
    if (arch == "LlamaForCausalLM" || arch == "MistralForCausalLM" || (arch.empty() && (modelType == "llama" || modelType == "mistral")))
        c.architecture = "llama";
    else if (arch == "Qwen2ForCausalLM" || (arch.empty() && modelType == "qwen2"))
        c.architecture = "qwen2";
    else
        fail("unsupported architecture " + (arch.empty() ? (modelType.empty() ? std::string("(none given)") : modelType) : arch));
    c.name = cfg.string("_name_or_path");
    if (c.name.empty()) c.name = fs::absolute(folder, ec).filename().string();

    c.nLayer = cfg.integer("num_hidden_layers");
    c.nEmbd = cfg.integer("hidden_size");
    c.nFf = cfg.integer("intermediate_size");
    c.nHead = cfg.integer("num_attention_heads");
    c.nHeadKv = cfg.integer("num_key_value_heads", c.nHead);
    if (c.nHead > 0 && !cfg.find("head_dim") && c.nEmbd % c.nHead != 0)
        fail("hidden_size " + std::to_string(c.nEmbd) + " is not a multiple of num_attention_heads " + std::to_string(c.nHead));
    c.headDim = cfg.integer("head_dim", c.nHead > 0 ? c.nEmbd / c.nHead : 0);
    c.vocabSize = cfg.integer("vocab_size");
    c.contextLength = cfg.integer("max_position_embeddings", 2048);
    c.normEps = static_cast<float>(cfg.number("rms_norm_eps", 1e-6));
    c.ropeTheta = static_cast<float>(cfg.number("rope_theta", 10000.0));
    c.ropeNeox = true;
    c.qkvBias = c.architecture == "qwen2";
    if (c.architecture == "llama" && cfg.boolean("attention_bias", false))
        fail("attention_bias (biases on every attention projection) is not supported");
    if (cfg.boolean("mlp_bias", false)) fail("mlp_bias is not supported");
    if (std::string act = cfg.string("hidden_act"); !act.empty() && act != "silu")
        fail("activation '" + act + "' is not supported (SwiGLU needs silu)");

    if (const json* rs = cfg.find("rope_scaling")) {
        if (!rs->is_object()) fail("rope_scaling is not an object");
        std::string kind;
        if (rs->contains("rope_type") && (*rs)["rope_type"].is_string()) kind = (*rs)["rope_type"].get<std::string>();
        else if (rs->contains("type") && (*rs)["type"].is_string()) kind = (*rs)["type"].get<std::string>();
        auto num = [&](const char* k, double fallback) {
            if (!rs->contains(k)) return fallback;
            if (!(*rs)[k].is_number()) fail(std::string("rope_scaling.") + k + " is not a number");
            return (*rs)[k].get<double>();
        };
        if (kind == "linear") {
            c.ropeScaling = RopeScalingType::Linear;
            c.ropeFactor = static_cast<float>(num("factor", 1.0));
        } else if (kind == "llama3") {
            c.ropeScaling = RopeScalingType::Llama3;
            c.ropeFactor = static_cast<float>(num("factor", 8.0));
            c.ropeLowFreqFactor = static_cast<float>(num("low_freq_factor", 1.0));
            c.ropeHighFreqFactor = static_cast<float>(num("high_freq_factor", 4.0));
            double orig = num("original_max_position_embeddings", 8192);
            if (!(orig >= 1 && orig <= (1 << 24))) fail("rope_scaling.original_max_position_embeddings is out of range");
            c.ropeOriginalContext = static_cast<int>(orig);
        } else if (kind != "default" && !kind.empty()) {
            fail("rope scaling '" + kind + "' is not supported");
        }
    }
    validateConfig(cfg.path(), c);

    // The safetensors files: those the index names, else every *.safetensors in the folder.
    std::vector<std::string> files;
    std::map<std::string, std::string> expectedFile; // tensor -> file, from the index
    fs::path indexPath = folder / "model.safetensors.index.json";
    if (fs::exists(indexPath, ec)) {
        json index = readJsonFile(indexPath.string());
        if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
            throw Error(indexPath.string() + ": has no weight_map object");
        std::set<std::string> unique;
        for (const auto& [name, file] : index["weight_map"].items()) {
            if (!file.is_string()) throw Error(indexPath.string() + ": the file of '" + name + "' is not a string");
            std::string f = file.get<std::string>();
            if (f.empty() || f.find('/') != std::string::npos || f.find('\\') != std::string::npos || f == "." || f == "..")
                throw Error(indexPath.string() + ": '" + f + "' is not a file name in the folder");
            unique.insert(f);
            expectedFile[name] = f;
        }
        files.assign(unique.begin(), unique.end());
    } else {
        for (const auto& entry : fs::directory_iterator(folder, ec))
            if (entry.path().extension() == ".safetensors") files.push_back(entry.path().filename().string());
        std::sort(files.begin(), files.end());
    }
    if (files.empty()) throw Error(folderPath + ": no .safetensors files");

    std::vector<std::unique_ptr<SafetensorsFile>> shards;
    TensorMap tensors;
    std::map<std::string, std::string> hfNameOf; // GGUF name -> Hugging Face name, for messages
    for (const std::string& f : files) {
        shards.push_back(std::make_unique<SafetensorsFile>((folder / f).string()));
        const SafetensorsFile& shard = *shards.back();
        for (const auto& [name, dtype] : shard.otherTensors())
            if (!ggufName(name).empty())
                throw Error(shard.path() + ": tensor '" + name + "' has dtype " + dtype + ", which Parley does not read");
        for (const TensorView& t : shard.tensors()) {
            if (auto it = expectedFile.find(t.name); it != expectedFile.end() && it->second != f)
                throw Error(shard.path() + ": holds tensor '" + t.name + "', which the index puts in " + it->second);
            std::string g = ggufName(t.name);
            if (g.empty()) continue;
            if (!tensors.emplace(g, &t).second) throw Error(shard.path() + ": tensor '" + t.name + "' appears twice");
            hfNameOf[g] = t.name;
        }
    }
    for (const auto& [name, file] : expectedFile)
        if (!ggufName(name).empty() && !tensors.count(ggufName(name)))
            throw Error((folder / file).string() + ": lacks tensor '" + name + "', which the index puts there");
    if (tensors.count("blk.0.attn_output.bias")) fail("biases on the attention output are not supported");

    ModelInfo& info = model->info_;
    info.path = folderPath;
    info.format = "safetensors";
    try {
        buildWeights(folderPath, c, tensors, options, model->weights_, info);
    } catch (const Error& e) {
        // Name tensors as the folder does.
        std::string what = e.what();
        size_t open = what.find("tensor '");
        size_t close = open == std::string::npos ? open : what.find('\'', open + 8);
        if (close != std::string::npos) {
            std::string g = what.substr(open + 8, close - open - 8);
            auto it = hfNameOf.find(g);
            what.replace(open + 8, g.size(), it != hfNameOf.end() ? it->second : huggingFaceName(g));
        }
        throw Error(what);
    }

    model->tokenizer_ = Tokenizer::fromPath(folderPath);
    model->chatTemplate_ = ChatTemplate::detect(readChatTemplate(folder));
    checkTokenizer(folderPath, *model);
    return model;
}

} // namespace parley::detail
