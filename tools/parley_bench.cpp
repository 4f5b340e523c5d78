// parley-bench: the benchmark of DESIGN.md §6. Prefill tokens/s, decode tokens/s at batch 1,
// time to first token, peak VRAM, load (and quantize) time, for a model file or a synthetic
// shape (random weights made on the device, no download). It measures the GPU's copy bandwidth
// in the same run and prints the decode roofline: bytes read per token (every weight once, plus
// the K/V cache at the decode's mean context) over that bandwidth, and the measured decode speed
// as a percentage of it.
#include "engine/backend_registry.h"
#include "engine/error.h"
#include "engine/kv_cache_format.h"
#include "engine/model.h"
#include "engine/precision_planner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace parley;

namespace {

void usage() {
    std::puts(
        "usage: parley-bench (-m MODEL | --synthetic llama2-7b|llama2-13b|smollm2-135m)\n"
        "                    [--precision fp16|int8|int4|auto] [-p 512] [-n 128] [--ctx N] [--json]\n"
        "                    [--backend auto|cuda|cpu] [--group 32|128] [--repeat 3] [--threads N] [--no-pdl] [--no-graphs]\n"
        "                    [--kv-cache fp16|int8]\n"
        "       parley-bench --gemv --synthetic SHAPE [--precision P] [--group G] [--json]\n"
        "  --precision  synthetic: every matrix in it; a model file: FP16 matrices are quantized\n"
        "               to it on the GPU (a quantized file keeps its own precision); auto: the\n"
        "               precision planner's choice for the free VRAM of GPU 0\n"
        "  -p, -n       prompt tokens (prefill) and generated tokens (decode)\n"
        "  --ctx        KV cache length (default: p + n)\n"
        "  --group      INT8/INT4 group size (default 32)\n"
        "  --kv-cache   K/V cache values: fp16 (default) or int8, 8 bits with a float scale per head\n"
        "               vector (engine/kv_cache_format.h; the CUDA backend takes head sizes 64 and 128)\n"
        "  --gemv       time each decode matrix of the shape alone on the GPU (GB/s, % of copy bandwidth)");
}

ModelConfig syntheticConfig(const std::string& name) {
    ModelConfig c;
    c.architecture = "llama";
    c.name = name + " (synthetic)";
    c.normEps = 1e-5f;
    c.ropeTheta = 10000.f;
    if (name == "llama2-7b") {
        c.nLayer = 32; c.nEmbd = 4096; c.nHead = 32; c.nHeadKv = 32; c.nFf = 11008; c.vocabSize = 32000;
        c.contextLength = 4096;
    } else if (name == "llama2-13b") {
        c.nLayer = 40; c.nEmbd = 5120; c.nHead = 40; c.nHeadKv = 40; c.nFf = 13824; c.vocabSize = 32000;
        c.contextLength = 4096;
    } else if (name == "smollm2-135m") {
        c.nLayer = 30; c.nEmbd = 576; c.nHead = 9; c.nHeadKv = 3; c.nFf = 1536; c.vocabSize = 49152;
        c.contextLength = 8192; c.ropeTheta = 100000.f; c.tiedEmbeddings = true;
    } else {
        throw Error("unknown synthetic shape '" + name + "' (llama2-7b, llama2-13b, smollm2-135m)");
    }
    c.headDim = c.nEmbd / c.nHead;
    return c;
}

Precision parsePrecision(const std::string& s) {
    if (s == "fp16") return Precision::FP16;
    if (s == "int8") return Precision::INT8;
    if (s == "int4") return Precision::INT4;
    throw Error("unknown precision '" + s + "' (fp16, int8, int4)");
}

// (parley::precisionName, reachable where a local variable of that name hides it.)
std::string precisionText(Precision p) { return precisionName(p); }

double nowMs() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

uint64_t gpuUsedBytes(int device) {
    const std::vector<GpuDevice> d = probeGpus();
    for (const GpuDevice& g : d)
        if (g.index == device) return g.totalBytes - g.freeBytes;
    return 0;
}

// --gemv: each decode matrix of the shape alone (the fused ones as the decode step runs them),
// next to the copy bandwidth measured in the same run.
int benchGemvs(const ModelConfig& c, Precision precision, int group, int device, bool json) {
    const double bandwidth = measureGpuCopyBandwidth(device, uint64_t(1) << 30, 21);
    struct Shape {
        const char* name;
        int64_t rows, cols;
        GemvBenchEpilogue epilogue;
    };
    // (The QKV row is measured as three equal parts, as a model without grouped-query heads has.)
    const Shape shapes[] = {
        {"qkv", 3 * int64_t(c.qDim()), c.nEmbd, GemvBenchEpilogue::Qkv},
        {"o", c.nEmbd, c.qDim(), GemvBenchEpilogue::Residual},
        {"gate_up", 2 * int64_t(c.nFf), c.nEmbd, GemvBenchEpilogue::GateUp},
        {"down", c.nEmbd, c.nFf, GemvBenchEpilogue::Residual},
    };
    for (const bool asDecoded : {false, true}) {
        double totalUs = 0, totalBytes = 0;
        const char* how = asDecoded ? "epilogue as in decode" : "plain store";
        for (const Shape& s : shapes) {
            const GemvTiming t = benchmarkGpuGemv(device, precision, group, s.rows, s.cols,
                                                  asDecoded ? s.epilogue : GemvBenchEpilogue::Store, c.headDim, 200);
            totalUs += t.microseconds;
            totalBytes += t.microseconds * t.gbPerSecond * 1e3;
            if (json)
                std::printf("{\"gemv\":\"%s\",\"epilogue\":\"%s\",\"precision\":\"%s\",\"group\":%d,\"rows\":%lld,"
                            "\"cols\":%lld,\"us\":%.2f,\"gb_s\":%.1f,\"copy_bandwidth_gb_s\":%.1f,\"pct\":%.1f}\n",
                            s.name, how, precisionText(precision).c_str(), group, (long long)s.rows, (long long)s.cols,
                            t.microseconds, t.gbPerSecond, bandwidth, 100 * t.gbPerSecond / bandwidth);
            else
                std::printf("%-8s %6lld x %-6lld %-5s %8.2f us %7.0f GB/s  %5.1f%% of copy bandwidth (%s)\n", s.name,
                            (long long)s.rows, (long long)s.cols, precisionText(precision).c_str(), t.microseconds,
                            t.gbPerSecond, 100 * t.gbPerSecond / bandwidth, how);
        }
        const double layerGbs = totalBytes / (totalUs * 1e3);
        if (!json)
            std::printf("layer    %8.2f us %7.0f GB/s  %5.1f%% (copy bandwidth %.0f GB/s; %s)\n", totalUs, layerGbs,
                        100 * layerGbs / bandwidth, bandwidth, how);
    }
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::string modelPath, synthetic, precisionName = "fp16", backendKind = "auto";
    int prompt = 512, generate = 128, ctx = 0, group = 32, repeat = 3;
    bool json = false, precisionGiven = false, gemvOnly = false;
    BackendOptions bo;
    try {
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            auto next = [&]() -> std::string {
                if (i + 1 >= argc) throw Error("option " + a + " needs a value");
                return argv[++i];
            };
            if (a == "-m") modelPath = next();
            else if (a == "--synthetic") synthetic = next();
            else if (a == "--precision") { precisionName = next(); precisionGiven = true; }
            else if (a == "-p") prompt = std::stoi(next());
            else if (a == "-n") generate = std::stoi(next());
            else if (a == "--ctx") ctx = std::stoi(next());
            else if (a == "--group") group = std::stoi(next());
            else if (a == "--repeat") repeat = std::stoi(next());
            else if (a == "--threads") bo.cpuThreads = std::stoi(next());
            else if (a == "--backend") backendKind = next();
            else if (a == "--json") json = true;
            else if (a == "--no-pdl") bo.usePdl = false;
            else if (a == "--no-graphs") bo.useGraphs = false;
            else if (a == "--gemv") gemvOnly = true;
            else if (a == "--kv-cache") {
                const std::string text = next();
                const std::optional<KvCacheType> type = parseKvCacheType(text);
                if (!type) throw Error("--kv-cache must be fp16 or int8, not '" + text + "'");
                bo.kvCache = *type;
            }
            else if (a == "--help" || a == "-h") { usage(); return 0; }
            else throw Error("unknown option '" + a + "' (try --help)");
        }
        if (modelPath.empty() == synthetic.empty()) throw Error("give either -m MODEL or --synthetic SHAPE");
        if (gemvOnly) {
            if (synthetic.empty()) throw Error("--gemv needs --synthetic SHAPE");
            return benchGemvs(syntheticConfig(synthetic), parsePrecision(precisionName), group, bo.cudaDevice, json);
        }
        if (prompt < 2 || generate < 1) throw Error("-p must be at least 2 and -n at least 1");
        if (ctx <= 0) ctx = prompt + generate;
        // --precision auto: the planner (DESIGN.md §3) picks from the free VRAM now.
        std::unique_ptr<Model> model;
        if (precisionName == "auto") {
            PrecisionPlanInput in;
            in.contextLength = ctx;
            in.kvCache = bo.kvCache == KvCacheType::INT8 ? KvCacheRequest::INT8 : KvCacheRequest::FP16;
            in.int4GroupSize = group;
            if (!synthetic.empty()) {
                in.config = syntheticConfig(synthetic);
            } else {
                model = Model::open(modelPath);
                in.config = model->config();
                const WeightMatrix& probe = model->weights().layers.at(0).wq;
                in.filePrecision = probe.precision;
            }
            std::string why;
            const std::vector<GpuDevice> gpus = probeGpus(&why);
            if (gpus.empty()) throw Error("--precision auto needs a GPU: " + why);
            in.freeBytes = gpus[0].freeBytes;
            const PrecisionPlan plan = planPrecision(in);
            std::fprintf(stderr, "parley-bench: precision %s\n", plan.reason.c_str());
            if (!plan.fits) return 1;
            precisionName = precisionText(plan.precision);
        }
        const Precision precision = parsePrecision(precisionName);
        if (ctx < prompt + generate) throw Error("--ctx must hold -p + -n tokens");
        bo.int8GroupSize = precision == Precision::INT8 ? group : 32;
        bo.int4GroupSize = group;
        if (!modelPath.empty() && precision != Precision::FP16) bo.quantizeOnDevice = precision;

        std::string notice;
        std::unique_ptr<Backend> backend = makeBackend(backendKind, bo, &notice);
        if (!notice.empty()) std::fprintf(stderr, "parley-bench: %s\n", notice.c_str());
        const bool gpu = backend->name().rfind("cuda", 0) == 0;

        double bandwidth = 0;
        if (gpu) bandwidth = measureGpuCopyBandwidth(bo.cudaDevice, uint64_t(1) << 30, 21);
        const uint64_t usedBefore = gpu ? gpuUsedBytes(bo.cudaDevice) : 0;

        ModelConfig config;
        const double loadStart = nowMs();
        if (!synthetic.empty()) {
            config = syntheticConfig(synthetic);
            backend->loadSynthetic(config, precision, group, ctx, 1234);
        } else {
            // The CPU backend runs the weights as the engine holds them: convert on load when asked.
            ModelOptions mo;
            if (!gpu && precisionGiven) mo.precision = precision;
            if (!model) model = Model::open(modelPath, mo);
            config = model->config();
            backend->load(config, model->weights(), ctx);
        }
        const double loadMs = nowMs() - loadStart;
        uint64_t peak = gpu ? gpuUsedBytes(bo.cudaDevice) : 0;

        std::mt19937 rng(42);
        std::uniform_int_distribution<int32_t> tok(0, config.vocabSize - 1);
        std::vector<int32_t> promptTokens(prompt);
        for (int32_t& t : promptTokens) t = tok(rng);
        SamplingParams greedy;
        greedy.temperature = 0;
        greedy.repeatPenalty = 1.f;
        std::vector<float> logits(config.vocabSize);
        auto step = [&](const int32_t* tokens, int n, int pos) -> int32_t {
            if (backend->samplesOnDevice()) return backend->forwardAndSample(tokens, n, pos, greedy, nullptr, 0, 0.f);
            backend->forward(tokens, n, pos, false, logits.data());
            return int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
        };

        // Run 0 warms up (kernel loading, cuBLAS heuristics, one graph capture per context bucket).
        std::vector<double> ttft, decodeMs;
        for (int r = 0; r <= repeat; ++r) {
            const double t0 = nowMs();
            int32_t next = step(promptTokens.data(), prompt, 0);
            const double t1 = nowMs();
            for (int i = 0; i < generate; ++i) next = step(&next, 1, prompt + i);
            const double t2 = nowMs();
            if (r > 0) {
                ttft.push_back(t1 - t0);
                decodeMs.push_back(t2 - t1);
            }
            if (gpu) peak = std::max(peak, gpuUsedBytes(bo.cudaDevice));
        }
        const double ttftMs = median(ttft), decMs = median(decodeMs);
        const double prefillTps = prompt / (ttftMs / 1e3), decodeTps = generate / (decMs / 1e3);
        const uint64_t weightBytes = backend->weightBytesPerToken();
        const double meanContext = prompt + (generate + 1) / 2.0;
        const double kvBytes = double(kvCacheBytesPerToken(config, bo.kvCache)) * meanContext;
        const double bytesPerToken = double(weightBytes) + kvBytes;
        const double roofline = bandwidth > 0 && bytesPerToken > 0 ? bandwidth * 1e9 / bytesPerToken : 0;
        const double pct = roofline > 0 ? 100.0 * decodeTps / roofline : 0;
        const std::string what = synthetic.empty() ? modelPath : synthetic;
        if (synthetic.empty() && !precisionGiven) precisionName = "as stored";
        const double gib = double(uint64_t(1) << 30);

        if (json) {
            std::printf(
                "{\"model\":\"%s\",\"backend\":\"%s\",\"precision\":\"%s\",\"group\":%d,\"prompt\":%d,\"generate\":%d,"
                "\"ctx\":%d,\"prefill_tok_s\":%.1f,\"decode_tok_s\":%.1f,\"ttft_ms\":%.2f,\"load_ms\":%.0f,"
                "\"peak_vram_gib\":%.3f,\"vram_before_load_gib\":%.3f,\"copy_bandwidth_gb_s\":%.1f,"
                "\"weight_bytes_per_token\":%llu,\"kv_bytes_per_token\":%.0f,\"roofline_tok_s\":%.1f,"
                "\"roofline_pct\":%.1f,\"pdl\":%s,\"graphs\":%s,\"kv_cache\":\"%s\"}\n",
                what.c_str(), backend->name().c_str(), precisionName.c_str(), group, prompt, generate, ctx, prefillTps,
                decodeTps, ttftMs, loadMs, peak / gib, usedBefore / gib, bandwidth, (unsigned long long)weightBytes,
                kvBytes, roofline, pct, bo.usePdl ? "true" : "false", bo.useGraphs ? "true" : "false",
                kvCacheLabel(bo.kvCache));
        } else {
            std::printf("model            %s (%s, group %d), context %d, K/V cache %s\n", what.c_str(),
                        precisionName.c_str(), group, ctx, kvCacheLabel(bo.kvCache));
            std::printf("backend          %s\n", backend->name().c_str());
            std::printf("load + quantize  %.0f ms\n", loadMs);
            std::printf("prefill          %.0f tok/s (%d tokens)\n", prefillTps, prompt);
            std::printf("time to first    %.2f ms\n", ttftMs);
            std::printf("decode           %.1f tok/s (%d tokens after the prompt)\n", decodeTps, generate);
            if (gpu) {
                std::printf("peak VRAM        %.2f GiB (device-wide, CUDA context included; %.2f GiB before load)\n",
                            peak / gib, usedBefore / gib);
                std::printf("copy bandwidth   %.0f GB/s (device to device, read + write)\n", bandwidth);
                std::printf("bytes per token  %.3f GB weights + %.3f GB K/V cache\n", weightBytes / 1e9, kvBytes / 1e9);
                std::printf("decode roofline  %.1f tok/s; measured %.1f%% of it\n", roofline, pct);
            }
        }
        return 0;
    } catch (const Error& e) {
        std::fprintf(stderr, "parley-bench: %s\n", e.what());
        return 1;
    }
}
