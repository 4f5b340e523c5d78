// parley-cli: the engine from the command line — info, tokenize, generate, chat, perplexity.
// Errors are one line on stderr and a non-zero exit.
#include "engine/backend.h"
#include "engine/backend_registry.h"
#include "engine/chat_session.h"
#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/kv_cache_format.h"
#include "engine/model.h"
#include "engine/precision_planner.h"
#include "engine/session.h"
#include "engine/tokenizer.h"

#include <nlohmann/json.hpp>

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

using namespace parley;

namespace {

// Command-line arguments: flags with values, boolean switches, and positional words.
struct Args {
    std::map<std::string, std::string> values;
    std::map<std::string, bool> switches;
    std::vector<std::string> positional;

    bool has(const std::string& k) const { return values.count(k) > 0; }
    std::string get(const std::string& k, const std::string& fallback = {}) const {
        auto it = values.find(k);
        return it == values.end() ? fallback : it->second;
    }
    bool flag(const std::string& k) const { return switches.count(k) > 0; }
    double number(const std::string& k, double fallback) const {
        if (!has(k)) return fallback;
        const std::string& s = get(k);
        char* end = nullptr;
        double v = std::strtod(s.c_str(), &end);
        if (s.empty() || *end) throw Error("option " + k + " needs a number, not '" + s + "'");
        return v;
    }
    int integer(const std::string& k, int fallback) const {
        double v = number(k, fallback);
        if (v != std::floor(v) || std::fabs(v) > 1e9) throw Error("option " + k + " needs a whole number");
        return static_cast<int>(v);
    }
};

Args parseArgs(int argc, char** argv, int first, const std::vector<std::string>& valueOptions,
               const std::vector<std::string>& switchOptions) {
    Args a;
    for (int i = first; i < argc; ++i) {
        std::string s = argv[i];
        auto isOneOf = [&](const std::vector<std::string>& list) {
            for (const auto& o : list)
                if (o == s) return true;
            return false;
        };
        if (isOneOf(valueOptions)) {
            if (i + 1 >= argc) throw Error("option " + s + " needs a value");
            a.values[s] = argv[++i];
        } else if (isOneOf(switchOptions)) {
            a.switches[s] = true;
        } else if (s.size() > 1 && s[0] == '-' && !std::isdigit(static_cast<unsigned char>(s[1]))) {
            throw Error("unknown option " + s + " (try --help)");
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

// -m and --model are the same option.
std::string modelPath(const Args& a) {
    std::string m = a.has("-m") ? a.get("-m") : a.get("--model");
    if (m.empty()) throw Error("no model given (-m MODEL)");
    return m;
}

ModelOptions modelOptions(const Args& a) {
    ModelOptions o;
    std::string p = a.get("--precision", "auto");
    if (p == "fp16") o.precision = Precision::FP16;
    else if (p == "int8") o.precision = Precision::INT8;
    else if (p == "int4") o.precision = Precision::INT4;
    else if (p != "auto") throw Error("--precision must be auto, fp16, int8 or int4, not '" + p + "'");
    if (a.has("--group-size")) {
        int g = a.integer("--group-size", 32);
        if (g != 16 && g != 32 && g != 64 && g != 128) throw Error("--group-size must be 16, 32, 64 or 128");
        o.int4GroupSize = g;
        o.int8GroupSize = g;
        o.forceGroupSize = true;
    }
    return o;
}

// --kv-cache auto|fp16|int8 (engine/kv_cache_format.h). The commands read it before opening the
// model, so that a misspelling is reported at once and not after a load.
KvCacheRequest kvCacheFor(const Args& a) {
    const std::string text = a.get("--kv-cache", "auto");
    const std::optional<KvCacheRequest> request = parseKvCacheRequest(text);
    if (!request) throw Error("--kv-cache must be auto, fp16 or int8, not '" + text + "'");
    return *request;
}

// The backend the user asked for (auto: CUDA where it starts, else the CPU, saying why once).
// With --precision auto on a GPU, the precision planner (DESIGN.md §3) may quantize an FP16/INT8
// model further on the device, or take the 8-bit K/V cache (--kv-cache auto), so that it fits
// the free VRAM; its reason is printed. *kvCache: the cache the backend got.
std::unique_ptr<Backend> backendFor(const Args& a, const Model& model, int ctx, KvCacheRequest request,
                                    KvCacheType* kvCache) {
    std::string kind = a.get("--backend", "auto");
    if (kind != "auto" && kind != "cpu" && kind != "cuda")
        throw Error("--backend must be auto, cpu or cuda, not '" + kind + "'");
    BackendOptions bo;
    bo.cpuThreads = a.integer("--threads", 0);
    bo.kvCache = kvCacheTypeOf(request);
    if (kind != "cpu" && a.get("--precision", "auto") == "auto") {
        std::vector<GpuDevice> gpus = probeGpus();
        if (!gpus.empty()) {
            PrecisionPlanInput in;
            in.config = model.config();
            in.filePrecision = model.weights().layers.empty() ? Precision::FP16 : model.weights().layers[0].wq.precision;
            in.contextLength = ctx;
            in.freeBytes = gpus[0].freeBytes;
            in.kvCache = request;
            PrecisionPlan plan = planPrecision(in);
            std::fprintf(stderr, "parley-cli: %s on %s\n", plan.reason.c_str(), gpus[0].name.c_str());
            if (plan.fits && plan.precision != in.filePrecision) bo.quantizeOnDevice = plan.precision;
            if (plan.fits) bo.kvCache = plan.kvCache;
        }
    }
    std::string notice;
    auto backend = makeBackend(kind, bo, &notice);
    if (!notice.empty()) std::fprintf(stderr, "parley-cli: %s\n", notice.c_str());
    backend->load(model.config(), model.weights(), ctx);
    if (kvCache) *kvCache = bo.kvCache;
    return backend;
}

SamplingParams samplingFor(const Args& a) {
    SamplingParams s;
    s.temperature = static_cast<float>(a.number("--temp", 0.7));
    s.topK = a.integer("--top-k", 40);
    s.topP = static_cast<float>(a.number("--top-p", 0.95));
    s.minP = static_cast<float>(a.number("--min-p", 0.05));
    s.repeatPenalty = static_cast<float>(a.number("--repeat-penalty", 1.0));
    s.seed = static_cast<uint64_t>(a.number("--seed", 0));
    if (s.temperature < 0) throw Error("--temp must not be negative");
    if (s.topP <= 0 || s.topP > 1) throw Error("--top-p must be in (0, 1]");
    return s;
}

int contextFor(const Args& a, const Model& m) {
    int ctx = a.integer("--ctx", std::min(m.config().contextLength > 0 ? m.config().contextLength : 2048, 4096));
    if (ctx < 16) throw Error("--ctx must be at least 16");
    return ctx;
}

std::atomic<bool> g_interrupted{false};
void onSigint(int) { g_interrupted = true; }

const char* kUsage =
    "usage: parley-cli COMMAND [options]\n"
    "commands:\n"
    "  info        -m MODEL                      what a model file holds\n"
    "  tokenize    -m MODEL TEXT [--bos]         token ids of TEXT\n"
    "  generate    -m MODEL -p PROMPT [...]      continue a prompt\n"
    "  chat        -m MODEL [--system TEXT]      talk with a model\n"
    "  perplexity  -m MODEL -f FILE [...]        perplexity of a text\n"
    "`parley-cli COMMAND --help` explains each. MODEL is a GGUF file or a Hugging Face folder.\n";

const char* kModelOptionsHelp =
    "  --precision auto|fp16|int8|int4  weights in memory (auto: the file's own)\n"
    "  --group-size N                   requantize with groups of N (16, 32, 64, 128)\n"
    "  --backend auto|cpu|cuda          where to run (default auto)\n"
    "  --threads N                      CPU threads (default: one per core)\n"
    "  --ctx N                          context length (default: the model's, at most 4096)\n"
    "  --kv-cache auto|fp16|int8        K/V cache values; int8 halves the cache's memory on the GPU\n"
    "                                   (head sizes 64 and 128; the CPU rounds as the GPU does but\n"
    "                                   keeps FP16 storage); auto (default): FP16 unless with\n"
    "                                   --precision auto only int8 lets the model fit the GPU\n";

int cmdInfo(const Args& a) {
    ModelOptions o;
    o.metadataOnly = true;
    auto m = Model::open(modelPath(a), o);
    const ModelConfig& c = m->config();
    const ModelInfo& i = m->info();
    std::printf("file: %s\nformat: %s\nname: %s\narchitecture: %s\n", i.path.c_str(), i.format.c_str(),
                c.name.c_str(), c.architecture.c_str());
    std::printf("parameters: %lld (%.1fM)\n", static_cast<long long>(i.parameterCount), i.parameterCount / 1e6);
    std::printf("layers: %d\nwidth: %d\nheads: %d\nkv heads: %d\nhead dim: %d\nffn: %d\nvocab: %d\n", c.nLayer,
                c.nEmbd, c.nHead, c.nHeadKv, c.headDim, c.nFf, c.vocabSize);
    std::printf("context length: %d\nrope theta: %g\n", c.contextLength, c.ropeTheta);
    std::printf("tied embeddings: %s\n", c.tiedEmbeddings ? "yes" : "no");
    std::string types;
    for (const auto& [t, n] : i.tensorTypes) types += (types.empty() ? "" : ", ") + t + " x" + std::to_string(n);
    std::printf("tensor types: %s\n", types.c_str());
    std::printf("tokenizer: %s\nchat template: %s\n", i.tokenizerKind.c_str(), i.chatTemplate.c_str());
    return 0;
}

int cmdTokenize(const Args& a) {
    if (a.positional.size() != 1) throw Error("tokenize needs exactly one TEXT argument");
    std::string path = modelPath(a);
    std::unique_ptr<Tokenizer> tok;
    if (path.size() > 5 && path.compare(path.size() - 5, 5, ".gguf") == 0) {
        GgufFile f(path);
        tok = Tokenizer::fromGguf(f);
    } else {
        tok = Tokenizer::fromPath(path);
    }
    std::vector<int32_t> ids = tok->encode(a.positional[0], a.flag("--bos"), !a.flag("--no-special"));
    std::string line;
    for (size_t k = 0; k < ids.size(); ++k) line += (k ? " " : "") + std::to_string(ids[k]);
    std::printf("%s\n", line.c_str());
    return 0;
}

int cmdGenerate(const Args& a) {
    if (!a.has("-p")) throw Error("generate needs a prompt (-p PROMPT)");
    const KvCacheRequest kvRequest = kvCacheFor(a);
    auto model = Model::open(modelPath(a), modelOptions(a));
    KvCacheType kvCache = KvCacheType::FP16;
    auto backend = backendFor(a, *model, contextFor(a, *model), kvRequest, &kvCache);
    Session session(*model, *backend);
    const Tokenizer& tok = model->tokenizer();
    std::vector<int32_t> prompt = tok.encode(a.get("-p"), tok.addsBosByDefault(), true);
    GenerateOptions go;
    go.maxTokens = a.integer("-n", 128);
    go.cancel = &g_interrupted;
    bool json = a.flag("--json");
    GenerateResult r = session.generate(prompt, samplingFor(a), go, [&](std::string_view piece) {
        if (json) return;
        std::fwrite(piece.data(), 1, piece.size(), stdout);
        std::fflush(stdout);
    });
    if (json) {
        nlohmann::json j;
        j["tokens"] = r.tokens;
        j["text"] = r.text;
        j["prompt_tokens"] = r.promptTokens;
        j["stop_reason"] = stopReasonName(r.reason);
        j["prefill_tokens_per_second"] = r.prefillTokensPerSecond();
        j["decode_tokens_per_second"] = r.decodeTokensPerSecond();
        j["ttft_ms"] = r.ttftMs;
        j["backend"] = backend->name();
        j["kv_cache"] = kvCacheLabel(kvCache);
        std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    } else {
        std::printf("\n");
        std::fprintf(stderr, "[%d prompt tokens, %.1f tok/s prefill; %zu tokens, %.1f tok/s decode; %s]\n",
                     r.promptTokens, r.prefillTokensPerSecond(), r.tokens.size(), r.decodeTokensPerSecond(),
                     backend->name().c_str());
    }
    return 0;
}

int cmdChat(const Args& a) {
    const KvCacheRequest kvRequest = kvCacheFor(a);
    auto model = Model::open(modelPath(a), modelOptions(a));
    auto backend = backendFor(a, *model, contextFor(a, *model), kvRequest, nullptr);
    ChatSession chat(*model, *backend);
    if (a.has("--system")) chat.setSystemPrompt(a.get("--system"));
    SamplingParams sampling = samplingFor(a);
    GenerateOptions go;
    go.maxTokens = a.integer("-n", 512);
    go.cancel = &g_interrupted;
    std::fprintf(stderr, "Parley chat — %s (%s, %s). Ctrl+C stops a reply; Ctrl+D or /exit quits.\n",
                 model->config().name.c_str(), model->info().chatTemplate.c_str(), backend->name().c_str());
    std::string line;
    while (true) {
        std::fprintf(stderr, "> ");
        if (!std::getline(std::cin, line) || line == "/exit") break;
        if (line.empty()) continue;
        g_interrupted = false;
        try {
            GenerateResult r = chat.reply(line, sampling, go, [](std::string_view piece) {
                std::fwrite(piece.data(), 1, piece.size(), stdout);
                std::fflush(stdout);
            });
            std::printf("\n");
            std::fflush(stdout);
            if (r.reason == StopReason::Cancelled) std::fprintf(stderr, "[stopped]\n");
        } catch (const Error& e) {
            std::fprintf(stderr, "parley-cli: %s\n", e.what());
        }
    }
    return 0;
}

int cmdPerplexity(const Args& a) {
    if (!a.has("-f")) throw Error("perplexity needs a text file (-f FILE)");
    std::ifstream in(a.get("-f"), std::ios::binary);
    if (!in) throw Error(a.get("-f") + ": cannot read");
    std::stringstream ss;
    ss << in.rdbuf();
    const KvCacheRequest kvRequest = kvCacheFor(a);
    auto model = Model::open(modelPath(a), modelOptions(a));
    int ctx = a.integer("--ctx", 512);
    auto backend = backendFor(a, *model, ctx, kvRequest, nullptr);
    Session session(*model, *backend);
    const Tokenizer& tok = model->tokenizer();
    std::vector<int32_t> ids = tok.encode(ss.str(), false, false);
    const int vocab = model->config().vocabSize;
    // Non-overlapping windows of ctx tokens (BOS first where the model uses one); every token
    // after the window's first is scored by the log-probability the model gave it.
    const bool bos = tok.addsBosByDefault();
    const int perWindow = ctx - (bos ? 1 : 0);
    if (ids.size() < 2) throw Error(a.get("-f") + ": too little text for perplexity");
    double nll = 0;
    int64_t counted = 0;
    for (size_t start = 0; start + 1 < ids.size(); start += perWindow) {
        std::vector<int32_t> window;
        if (bos) window.push_back(tok.bos());
        size_t end = std::min(ids.size(), start + perWindow);
        window.insert(window.end(), ids.begin() + start, ids.begin() + end);
        session.reset();
        std::vector<float> logits = session.evaluate(window);
        for (size_t p = (bos ? 1 : 0); p + 1 < window.size(); ++p) {
            const float* l = logits.data() + p * vocab;
            double mx = l[0];
            for (int v = 1; v < vocab; ++v) mx = std::max<double>(mx, l[v]);
            double sum = 0;
            for (int v = 0; v < vocab; ++v) sum += std::exp(l[v] - mx);
            nll += (mx + std::log(sum)) - l[window[p + 1]];
            ++counted;
        }
        std::fprintf(stderr, "[%zu/%zu tokens] ppl so far %.4f\n", end, ids.size(), std::exp(nll / counted));
        if (g_interrupted) throw Error("interrupted");
    }
    std::printf("tokens scored = %lld\nppl = %.4f\n", static_cast<long long>(counted), std::exp(nll / counted));
    return 0;
}

struct Command {
    const char* name;
    int (*run)(const Args&);
    std::vector<std::string> valueOptions;
    std::vector<std::string> switchOptions;
    std::string help;
};

} // namespace

int main(int argc, char** argv) {
    const std::vector<std::string> modelOpts = {"-m", "--model", "--precision", "--group-size", "--backend",
                                                "--threads", "--ctx", "--kv-cache"};
    auto with = [&](std::vector<std::string> extra) {
        extra.insert(extra.end(), modelOpts.begin(), modelOpts.end());
        return extra;
    };
    const std::string sampleHelp =
        "  -n N                 at most N new tokens\n"
        "  --temp T             temperature (0: greedy; default 0.7)\n"
        "  --top-k K --top-p P --min-p P --repeat-penalty R --seed S\n";
    std::vector<Command> commands = {
        {"info", cmdInfo, {"-m", "--model"}, {}, "usage: parley-cli info -m MODEL\n"
         "Prints architecture, parameters, tensor types, context length, tokenizer and chat template.\n"},
        {"tokenize", cmdTokenize, {"-m", "--model"}, {"--bos", "--no-special"},
         "usage: parley-cli tokenize -m MODEL TEXT [--bos] [--no-special]\n"
         "Prints the token ids of TEXT on one line. MODEL: a GGUF file, a Hugging Face folder,\n"
         "a tokenizer.model or a tokenizer.json. --bos adds BOS; --no-special tokenizes special\n"
         "token text (\"<|im_start|>\") as plain characters.\n"},
        {"generate", cmdGenerate,
         with({"-p", "-n", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed"}), {"--json"},
         "usage: parley-cli generate -m MODEL -p PROMPT [-n N] [--temp T] [--top-k K] [--top-p P]\n"
         "       [--seed S] [--precision auto|fp16|int8|int4] [--backend auto|cpu|cuda] [--threads N]\n"
         "       [--kv-cache auto|fp16|int8] [--json]\n"
         "Streams the continuation of PROMPT to stdout. --json prints one object with the token ids,\n"
         "text and prefill/decode tokens per second instead.\n" + sampleHelp + kModelOptionsHelp},
        {"chat", cmdChat,
         with({"--system", "-n", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty", "--seed"}), {},
         "usage: parley-cli chat -m MODEL [--system TEXT]\n"
         "Talk with the model using its chat template; replies stream as they are made.\n" + sampleHelp +
             kModelOptionsHelp},
        {"perplexity", cmdPerplexity, with({"-f"}), {},
         "usage: parley-cli perplexity -m MODEL -f FILE [--ctx N] [--precision ...]\n"
         "Perplexity of the text in FILE over windows of N tokens (default 512); ends with 'ppl = X'.\n" +
             std::string(kModelOptionsHelp)},
    };

    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
        std::fputs(kUsage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    std::signal(SIGINT, onSigint);
    for (const Command& c : commands) {
        if (std::strcmp(argv[1], c.name) != 0) continue;
        for (int i = 2; i < argc; ++i) {
            if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
                std::fputs(c.help.c_str(), stdout);
                return 0;
            }
        }
        try {
            return c.run(parseArgs(argc, argv, 2, c.valueOptions, c.switchOptions));
        } catch (const Error& e) {
            std::fprintf(stderr, "parley-cli: %s\n", e.what());
            return 1;
        } catch (const std::bad_alloc&) {
            std::fprintf(stderr, "parley-cli: out of memory\n");
            return 1;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "parley-cli: %s\n", e.what());
            return 1;
        }
    }
    std::fprintf(stderr, "parley-cli: unknown command '%s' (try --help)\n", argv[1]);
    return 2;
}
