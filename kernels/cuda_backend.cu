// The CUDA backend (DESIGN.md §1, §2): weights in FP16, INT8 or INT4 on the GPU; decode as
// fused GEMVs captured into a CUDA graph per context-length bucket (the attention grid depends
// on the length); prefill as cuBLAS tensor-core GEMMs with tensor-core attention; sampling on
// the GPU. Everything the steps need is allocated at load, so generation itself allocates
// nothing; a failed allocation at load frees what was taken and throws an Error.
#include "engine/backend.h"
#include "engine/model.h"
#include "kernels/attention_decode.h"
#include "kernels/attention_prefill.h"
#include "kernels/cuda_api.h"
#include "kernels/decode_trace.h"
#include "kernels/embedding.h"
#include "kernels/gemv.h"
#include "kernels/prefill_gemm.h"
#include "kernels/quantize.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/swiglu.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <unordered_set>

namespace parley::cuda {

namespace {

std::string mib(uint64_t bytes) { return std::to_string((bytes + (1 << 19)) >> 20) + " MiB"; }

// Every allocation of a backend, so that a failure half-way frees what was taken.
class Arena {
public:
    ~Arena() { release(); }
    void* device(size_t bytes, const std::string& what) {
        if (bytes == 0) bytes = 16;
        void* p = nullptr;
        const cudaError_t e = cudaMalloc(&p, bytes);
        if (e != cudaSuccess) {
            cudaGetLastError();
            size_t freeBytes = 0, totalBytes = 0;
            cudaMemGetInfo(&freeBytes, &totalBytes);
            if (e == cudaErrorMemoryAllocation)
                throw Error("out of GPU memory: " + what + " needs " + mib(bytes) + ", " + mib(freeBytes) + " free (" +
                            mib(deviceBytes_) + " already taken by this model)");
            throwCudaError(e, ("cudaMalloc for " + what).c_str());
        }
        device_.push_back(p);
        deviceBytes_ += bytes;
        return p;
    }
    void* hostMapped(size_t bytes, const std::string& what) {
        void* p = nullptr;
        const cudaError_t e = cudaHostAlloc(&p, bytes ? bytes : 16, cudaHostAllocMapped | cudaHostAllocPortable);
        if (e != cudaSuccess) {
            cudaGetLastError();
            throw Error("out of pinned host memory: " + what + " needs " + mib(bytes));
        }
        host_.push_back(p);
        return p;
    }
    void free(void* p) {
        for (size_t i = 0; i < device_.size(); ++i)
            if (device_[i] == p) {
                cudaFree(p);
                device_.erase(device_.begin() + long(i));
                return;
            }
    }
    void release() {
        for (void* p : device_) cudaFree(p);
        for (void* p : host_) cudaFreeHost(p);
        device_.clear();
        host_.clear();
        deviceBytes_ = 0;
    }

private:
    std::vector<void*> device_, host_;
    uint64_t deviceBytes_ = 0;
};

// One launch's share of a fused matrix ([q; k; v] or [gate; up]): the whole matrix when all
// parts share a format, else one entry per part.
struct MatrixPart {
    DeviceMatrix m;
    int rowOffset = 0; // first logical row
};

struct Layer {
    float* attnNorm = nullptr;
    float* ffnNorm = nullptr;
    float* qkvBias = nullptr;
    std::vector<MatrixPart> qkv;
    DeviceMatrix wo;
    std::vector<MatrixPart> gateUp;
    DeviceMatrix down;
};

// What the host writes before each decode step (pinned, copied in one transfer).
struct DeviceStep {
    int32_t token = 0;
    int32_t pos = 0;
    SampleParamsDevice sample;
};
struct DeviceResult {
    int32_t token = 0;
    int32_t badToken = 0;
};

bool sameFormat(const WeightMatrix& a, const WeightMatrix& b) {
    return a.precision == b.precision && a.cols == b.cols && (a.precision == Precision::FP16 || a.groupSize == b.groupSize);
}

class CudaBackend final : public Backend {
public:
    CudaBackend(const ParleyCudaOptions& o, const cudaDeviceProp& prop) : opt_(o), prop_(prop) {
        const char* p = std::getenv("PARLEY_CUDA_PROFILE");
        profiling_ = p && *p && *p != '0';
    }
    ~CudaBackend() override {
        printProfile();
        trace_.print();
        trace_.release();
        for (cudaEvent_t e : profileEvents_) cudaEventDestroy(e);
        release();
    }

    std::string name() const override { return std::string("cuda: ") + prop_.name; }
    int maxContext() const override { return maxContext_; }
    bool samplesOnDevice() const override { return true; }
    uint64_t weightBytesPerToken() const override { return weightBytesPerToken_; }

    void load(const ModelConfig& config, const ModelWeights& weights, int maxContext) override {
        select();
        release();
        try {
            begin(config, maxContext);
            uploadAll(weights);
            allocateBuffers();
            PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
        } catch (...) {
            release();
            throw;
        }
    }

    void loadSynthetic(const ModelConfig& config, Precision precision, int groupSize, int maxContext,
                       uint64_t seed) override {
        select();
        release();
        try {
            begin(config, maxContext);
            synthesize(precision, groupSize, seed);
            allocateBuffers();
            PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
        } catch (...) {
            release();
            throw;
        }
    }

    void forward(const int32_t* tokens, int n, int startPos, bool allLogits, float* logits) override {
        select();
        checkRange(n, startPos);
        if (n == 1) decode(tokens[0], startPos, nullptr, logits);
        else prefill(tokens, n, startPos, allLogits, logits);
    }

    int32_t forwardAndSample(const int32_t* tokens, int n, int startPos, const SamplingParams& params,
                             const int32_t* history, int historyCount, float uniform) override {
        select();
        checkRange(n, startPos);
        SampleParamsDevice sp;
        sp.temperature = params.temperature;
        sp.topK = params.topK;
        sp.topP = params.topP;
        sp.minP = params.minP;
        sp.repeatPenalty = params.repeatPenalty;
        sp.uniform = uniform;
        if (params.repeatPenalty != 1.f && history && historyCount > 0) {
            std::unordered_set<int32_t> seen;
            const int from = std::max(0, historyCount - std::max(0, params.repeatLastN));
            for (int i = historyCount - 1; i >= from && sp.historyCount < kMaxSampleHistory; --i)
                if (seen.insert(history[i]).second) sp.history[sp.historyCount++] = history[i];
        }
        if (n == 1) return decode(tokens[0], startPos, &sp, nullptr);
        prefill(tokens, n, startPos, false, nullptr);
        hostStep_->sample = sp;
        const LaunchContext ctx{stream_, false};
        PARLEY_CUDA_CHECK(cudaMemcpyAsync(&dStep_->sample, &hostStep_->sample, sizeof(SampleParamsDevice),
                                          cudaMemcpyHostToDevice, stream_));
        launchSample(ctx, dLogits_, cfg_.vocabSize, &dStep_->sample, &dResult_->token);
        return finishStep();
    }

private:
    void select() { PARLEY_CUDA_CHECK(cudaSetDevice(opt_.device)); }

    void checkRange(int n, int startPos) {
        if (!loaded_) throw Error(name() + ": no model loaded");
        if (n <= 0 || startPos < 0 || int64_t(startPos) + n > maxContext_)
            throw Error(name() + ": positions " + std::to_string(startPos) + ".." + std::to_string(int64_t(startPos) + n - 1) +
                        " are outside the context of " + std::to_string(maxContext_) + " tokens");
    }

    void release() {
        for (auto& [len, g] : graphs_) cudaGraphExecDestroy(g);
        graphs_.clear();
        if (cublas_) cublasDestroy(cublas_);
        cublas_ = nullptr;
        if (gemm_.side) cudaStreamDestroy(gemm_.side);
        for (int b = 0; b < 2; ++b) {
            if (gemm_.ready[b]) cudaEventDestroy(gemm_.ready[b]);
            if (gemm_.free[b]) cudaEventDestroy(gemm_.free[b]);
        }
        gemm_ = GemmContext{};
        staging_ = nullptr;
        stagingBytes_ = 0;
        if (stream_) cudaStreamDestroy(stream_);
        stream_ = nullptr;
        arena_.release();
        kCache_ = vCache_ = nullptr;
        kCache8_ = vCache8_ = nullptr;
        kScale_ = vScale_ = nullptr;
        kvNewRows_ = nullptr;
        layers_.clear();
        loaded_ = false;
        weightBytesPerToken_ = 0;
    }

    void begin(const ModelConfig& config, int maxContext) {
        cfg_ = config;
        if (maxContext <= 0) throw Error("CUDA backend: context length must be positive");
        maxContext_ = maxContext;
        const int hd = cfg_.headDim;
        if (cfg_.nHead <= 0 || cfg_.nHeadKv <= 0 || cfg_.nHead % cfg_.nHeadKv || cfg_.nHead / cfg_.nHeadKv > kAttnMaxGroup)
            throw Error("CUDA backend: " + std::to_string(cfg_.nHead) + " query heads over " + std::to_string(cfg_.nHeadKv) +
                        " KV heads is not supported (at most " + std::to_string(kAttnMaxGroup) + " per KV head)");
        if (hd % 2 || hd > 256) throw Error("CUDA backend: head size " + std::to_string(hd) + " is not supported");
        const int maxCols = std::max(cfg_.nEmbd, std::max(cfg_.nFf, cfg_.qDim()));
        // The GEMV kernels keep x in shared memory: 4 bytes an element for FP16 weights, 2 plus 8
        // a chunk (its sum and power of two) for INT8/INT4.
        if (int64_t(maxCols) * 4 + 4096 > int64_t(prop_.sharedMemPerBlockOptin))
            throw Error("CUDA backend: width " + std::to_string(maxCols) + " is too wide for the GEMV kernels on " + prop_.name);
        PARLEY_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        const cublasStatus_t s = cublasCreate(&cublas_);
        if (s != CUBLAS_STATUS_SUCCESS) throwCublasError(s, "cublasCreate");
        usePdl_ = opt_.usePdl && prop_.major >= 9;
        const std::vector<double> inv = parley::ropeInverseFrequencies(cfg_);
        invFreq_ = upload(std::vector<float>(inv.begin(), inv.end()), "rotary frequencies");
        const size_t kvElems = size_t(cfg_.nLayer) * maxContext_ * cfg_.kvDim();
        if (opt_.kvCacheInt8) {
            if (!attentionDecodeSupportsInt8(hd))
                throw Error("CUDA backend: the 8-bit K/V cache needs a head size of 64 or 128 (this model: " +
                            std::to_string(hd) + "); use the FP16 cache");
            const size_t scales = size_t(cfg_.nLayer) * cfg_.nHeadKv * maxContext_;
            kCache8_ = static_cast<int8_t*>(arena_.device(kvElems, "the K cache"));
            vCache8_ = static_cast<int8_t*>(arena_.device(kvElems, "the V cache"));
            kScale_ = static_cast<float*>(arena_.device(scales * 4, "the K cache's scales"));
            vScale_ = static_cast<float*>(arena_.device(scales * 4, "the V cache's scales"));
            // The new token's FP16 K and V rows of each layer, from the QKV GEMV to the attention
            // kernel that quantizes them (attention_decode.h).
            kvNewRows_ = static_cast<__half*>(arena_.device(size_t(cfg_.nLayer) * 2 * cfg_.kvDim() * 2, "decode buffers"));
        } else {
            kCache_ = static_cast<__half*>(arena_.device(kvElems * 2, "the K cache"));
            vCache_ = static_cast<__half*>(arena_.device(kvElems * 2, "the V cache"));
        }
    }

    // Layer l's 8-bit cache (kv_cache.cuh), or none with the FP16 cache.
    KvCache8 cache8(int l) const {
        KvCache8 c;
        if (!kCache8_) return c;
        const size_t layerElems = size_t(maxContext_) * cfg_.kvDim(), layerScales = size_t(maxContext_) * cfg_.nHeadKv;
        c.k = kCache8_ + l * layerElems;
        c.v = vCache8_ + l * layerElems;
        c.kScale = kScale_ + l * layerScales;
        c.vScale = vScale_ + l * layerScales;
        c.scaleStride = maxContext_;
        return c;
    }

    float* upload(const std::vector<float>& v, const std::string& what) {
        float* d = static_cast<float*>(arena_.device(v.size() * 4, what));
        PARLEY_CUDA_CHECK(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice));
        return d;
    }

    // ---- Weights ----

    // Where FP16 weights arrive while the backend was asked for INT8/INT4, they are quantized here.
    Precision targetFor(Precision source, bool embeddingOrOutput) const {
        if (opt_.quantizeTo < 0 || source != Precision::FP16) return source;
        Precision t = Precision(opt_.quantizeTo);
        if (embeddingOrOutput && t == Precision::INT4) t = Precision::INT8;
        return t;
    }
    int groupFor(Precision p) const {
        return p == Precision::INT8 ? (opt_.int8GroupSize > 0 ? opt_.int8GroupSize : 32)
                                    : (opt_.int4GroupSize > 0 ? opt_.int4GroupSize : 32);
    }

    DeviceMatrix allocMatrix(Precision p, int64_t rows, int64_t cols, int groupSize, bool onHost, const std::string& what) {
        DeviceMatrix m;
        m.precision = p;
        m.rows = rows;
        m.cols = cols;
        m.ld = p == Precision::FP16 ? (cols + 7) / 8 * 8 : cols;
        m.groupSize = p == Precision::FP16 ? 0 : groupSize;
        if (p != Precision::FP16 && (groupSize <= 0 || cols % groupSize))
            throw Error("CUDA backend: " + what + " has " + std::to_string(cols) + " columns, not a multiple of its group size " +
                        std::to_string(groupSize));
        auto get = [&](size_t bytes) { return onHost ? arena_.hostMapped(bytes, what) : arena_.device(bytes, what); };
        m.data = get(size_t(m.dataBytes()));
        if (m.ld != cols) { // the padding must read as zeros
            if (onHost) std::memset(m.data, 0, size_t(m.dataBytes()));
            else PARLEY_CUDA_CHECK(cudaMemset(m.data, 0, size_t(m.dataBytes())));
        }
        if (p != Precision::FP16) m.scales = get(size_t(m.scaleBytes()));
        return m;
    }

    // Copies src into rows [rowBegin, ...) of dst: the same format, or FP16 quantized on the device.
    void uploadRows(DeviceMatrix& dst, int64_t rowBegin, const WeightMatrix& src, const std::string& what) {
        if (src.cols != dst.cols) throw Error("CUDA backend: " + what + " has the wrong width");
        const int64_t rows = src.rows;
        if (src.precision == dst.precision) {
            auto copy = [&](void* d, const void* s, size_t bytes) {
                PARLEY_CUDA_CHECK(cudaMemcpy(d, s, bytes, cudaMemcpyHostToDevice));
            };
            if (src.precision == Precision::FP16) {
                if (src.f16.size() != size_t(rows * src.cols)) throw Error("CUDA backend: " + what + " has no FP16 data");
                PARLEY_CUDA_CHECK(cudaMemcpy2D(static_cast<uint16_t*>(dst.data) + rowBegin * dst.ld, size_t(dst.ld) * 2,
                                               src.f16.data(), size_t(src.cols) * 2, size_t(src.cols) * 2, size_t(rows),
                                               cudaMemcpyHostToDevice));
                return;
            }
            if (src.groupSize != dst.groupSize) throw Error("CUDA backend: " + what + " has a different group size");
            const size_t groups = size_t(rows * src.groupsPerRow());
            if (src.scales.size() != groups) throw Error("CUDA backend: " + what + " has no scales");
            if (src.precision == Precision::INT8) {
                if (src.q8.size() != size_t(rows * src.cols)) throw Error("CUDA backend: " + what + " has no INT8 data");
                copy(static_cast<int8_t*>(dst.data) + rowBegin * dst.cols, src.q8.data(), src.q8.size());
                copy(static_cast<uint16_t*>(dst.scales) + rowBegin * src.groupsPerRow(), src.scales.data(), groups * 2);
            } else {
                if (src.q4.size() != size_t(rows * src.cols / 2) || src.mins.size() != groups)
                    throw Error("CUDA backend: " + what + " has no INT4 data");
                copy(static_cast<uint8_t*>(dst.data) + rowBegin * (dst.cols / 2), src.q4.data(), src.q4.size());
                // Repack: scale and min side by side, one 4-byte load per group in the GEMV.
                std::vector<uint16_t> sm(groups * 2);
                for (size_t i = 0; i < groups; ++i) {
                    sm[2 * i] = src.scales[i];
                    sm[2 * i + 1] = src.mins[i];
                }
                copy(static_cast<uint32_t*>(dst.scales) + rowBegin * src.groupsPerRow(), sm.data(), sm.size() * 2);
            }
            return;
        }
        if (src.precision != Precision::FP16) throw Error("CUDA backend: " + what + " cannot change between quantized formats");
        // FP16 -> INT8/INT4 on the GPU, a slab of rows at a time through a staging buffer.
        const int64_t slab = std::max<int64_t>(1, (int64_t(32) << 20) / (2 * src.cols));
        __half* staging = static_cast<__half*>(stagingBuffer(size_t(std::min(slab, rows) * src.cols * 2)));
        const LaunchContext ctx{stream_, false};
        for (int64_t r = 0; r < rows; r += slab) {
            const int64_t rc = std::min(slab, rows - r);
            PARLEY_CUDA_CHECK(cudaMemcpyAsync(staging, src.f16.data() + r * src.cols, size_t(rc * src.cols * 2),
                                              cudaMemcpyHostToDevice, stream_));
            launchQuantizeRows(ctx, staging, rc, dst, rowBegin + r);
        }
        PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    void* stagingBuffer(size_t bytes) {
        if (bytes > stagingBytes_) {
            staging_ = arena_.device(bytes, "the upload staging buffer");
            stagingBytes_ = bytes;
        }
        return staging_;
    }

    // Parts that share a format become one matrix (one launch, one pass over x).
    std::vector<MatrixPart> uploadFused(const std::vector<const WeightMatrix*>& parts, const std::string& what) {
        bool same = true;
        for (auto* p : parts) same = same && sameFormat(*p, *parts[0]);
        std::vector<MatrixPart> out;
        if (same) {
            int64_t rows = 0;
            for (auto* p : parts) rows += p->rows;
            const Precision t = targetFor(parts[0]->precision, false);
            MatrixPart mp;
            mp.m = allocMatrix(t, rows, parts[0]->cols, t == parts[0]->precision ? parts[0]->groupSize : groupFor(t), false, what);
            int64_t r = 0;
            for (auto* p : parts) {
                uploadRows(mp.m, r, *p, what);
                r += p->rows;
            }
            out.push_back(mp);
            return out;
        }
        int64_t r = 0;
        for (auto* p : parts) {
            const Precision t = targetFor(p->precision, false);
            MatrixPart mp;
            mp.m = allocMatrix(t, p->rows, p->cols, t == p->precision ? p->groupSize : groupFor(t), false, what);
            mp.rowOffset = int(r);
            uploadRows(mp.m, 0, *p, what);
            out.push_back(mp);
            r += p->rows;
        }
        return out;
    }

    DeviceMatrix uploadOne(const WeightMatrix& w, bool embeddingOrOutput, bool onHost, const std::string& what) {
        const Precision t = targetFor(w.precision, embeddingOrOutput);
        DeviceMatrix m = allocMatrix(t, w.rows, w.cols, t == w.precision ? w.groupSize : groupFor(t), onHost, what);
        uploadRows(m, 0, w, what);
        return m;
    }

    void expectShape(const WeightMatrix& w, int64_t rows, int64_t cols, const std::string& what) {
        if (w.rows != rows || w.cols != cols)
            throw Error("CUDA backend: " + what + " is " + std::to_string(w.rows) + " x " + std::to_string(w.cols) +
                        ", expected " + std::to_string(rows) + " x " + std::to_string(cols));
    }

    void uploadAll(const ModelWeights& w) {
        const int d = cfg_.nEmbd, q = cfg_.qDim(), kv = cfg_.kvDim(), ff = cfg_.nFf;
        if (int(w.layers.size()) != cfg_.nLayer) throw Error("CUDA backend: the weights have the wrong number of layers");
        tied_ = w.output.rows == 0;
        expectShape(w.tokenEmbedding, cfg_.vocabSize, d, "token embedding");
        for (int l = 0; l < cfg_.nLayer; ++l) {
            const LayerWeights& L = w.layers[l];
            const std::string at = "layer " + std::to_string(l) + " ";
            expectShape(L.wq, q, d, at + "wq");
            expectShape(L.wk, kv, d, at + "wk");
            expectShape(L.wv, kv, d, at + "wv");
            expectShape(L.wo, d, q, at + "wo");
            expectShape(L.wGate, ff, d, at + "gate");
            expectShape(L.wUp, ff, d, at + "up");
            expectShape(L.wDown, d, ff, at + "down");
            if (L.attnNorm.size() != size_t(d) || L.ffnNorm.size() != size_t(d)) throw Error("CUDA backend: " + at + "norm has the wrong size");
            Layer dl;
            dl.attnNorm = upload(L.attnNorm, at + "attention norm");
            dl.ffnNorm = upload(L.ffnNorm, at + "MLP norm");
            if (cfg_.qkvBias) {
                std::vector<float> b;
                b.insert(b.end(), L.bq.begin(), L.bq.end());
                b.insert(b.end(), L.bk.begin(), L.bk.end());
                b.insert(b.end(), L.bv.begin(), L.bv.end());
                if (b.size() != size_t(q + 2 * kv)) throw Error("CUDA backend: " + at + "QKV bias has the wrong size");
                dl.qkvBias = upload(b, at + "QKV bias");
            }
            dl.qkv = uploadFused({&L.wq, &L.wk, &L.wv}, at + "QKV");
            dl.wo = uploadOne(L.wo, false, false, at + "wo");
            dl.gateUp = uploadFused({&L.wGate, &L.wUp}, at + "gate/up");
            dl.down = uploadOne(L.wDown, false, false, at + "down");
            layers_.push_back(std::move(dl));
        }
        if (w.outputNorm.size() != size_t(d)) throw Error("CUDA backend: the output norm has the wrong size");
        outputNorm_ = upload(w.outputNorm, "output norm");
        // An untied embedding table is only looked up, a row per token: it can stay in host memory.
        const bool embOnHost = opt_.embeddingsOnHost && !tied_;
        embedding_ = uploadOne(w.tokenEmbedding, true, embOnHost, "token embedding");
        if (tied_) output_ = embedding_;
        else {
            expectShape(w.output, cfg_.vocabSize, d, "output projection");
            output_ = uploadOne(w.output, true, false, "output projection");
        }
    }

    // Random weights of the configured shape, made on the device: FP16 values drawn a slab at a
    // time and, for INT8/INT4, quantized from that slab (the same path as quantize-on-load).
    void synthesize(Precision precision, int groupSize, uint64_t seed) {
        const int d = cfg_.nEmbd, q = cfg_.qDim(), kv = cfg_.kvDim(), ff = cfg_.nFf;
        tied_ = cfg_.tiedEmbeddings;
        const LaunchContext ctx{stream_, false};
        uint64_t stream = seed * 1000003ull;
        auto fill = [&](DeviceMatrix& m) {
            const float scale = 1.f / std::sqrt(float(m.cols));
            if (m.precision == Precision::FP16) {
                launchRandomHalf(ctx, static_cast<__half*>(m.data), m.rows * m.ld, ++stream, 0, scale);
                return;
            }
            const int64_t slab = std::max<int64_t>(1, (int64_t(32) << 20) / (2 * m.cols));
            __half* staging = static_cast<__half*>(stagingBuffer(size_t(std::min(slab, m.rows) * m.cols * 2)));
            const uint64_t s = ++stream;
            for (int64_t r = 0; r < m.rows; r += slab) {
                const int64_t rc = std::min(slab, m.rows - r);
                launchRandomHalf(ctx, staging, rc * m.cols, s, uint64_t(r * m.cols), scale);
                launchQuantizeRows(ctx, staging, rc, m, r);
            }
        };
        auto make = [&](int64_t rows, int64_t cols, bool embOrOut, bool onHost, const std::string& what) {
            Precision p = precision;
            if (embOrOut && p == Precision::INT4) p = Precision::INT8;
            const int g = p == Precision::INT8 && precision == Precision::INT4 ? 32 : groupSize;
            DeviceMatrix m = allocMatrix(p, rows, cols, g, onHost, what);
            fill(m);
            return m;
        };
        auto norm = [&](int n, const std::string& what) {
            float* p = static_cast<float*>(arena_.device(size_t(n) * 4, what));
            launchRandomFloat(ctx, p, n, ++stream, 1.f, 0.1f);
            return p;
        };
        for (int l = 0; l < cfg_.nLayer; ++l) {
            const std::string at = "layer " + std::to_string(l) + " ";
            Layer dl;
            dl.attnNorm = norm(d, at + "attention norm");
            dl.ffnNorm = norm(d, at + "MLP norm");
            if (cfg_.qkvBias) {
                dl.qkvBias = static_cast<float*>(arena_.device(size_t(q + 2 * kv) * 4, at + "QKV bias"));
                launchRandomFloat(ctx, dl.qkvBias, q + 2 * kv, ++stream, 0.f, 0.1f);
            }
            dl.qkv.push_back({make(q + 2 * kv, d, false, false, at + "QKV"), 0});
            dl.wo = make(d, q, false, false, at + "wo");
            dl.gateUp.push_back({make(2 * ff, d, false, false, at + "gate/up"), 0});
            dl.down = make(d, ff, false, false, at + "down");
            layers_.push_back(std::move(dl));
        }
        outputNorm_ = norm(d, "output norm");
        embedding_ = make(cfg_.vocabSize, d, true, opt_.embeddingsOnHost && !tied_, "token embedding");
        output_ = tied_ ? embedding_ : make(cfg_.vocabSize, d, true, false, "output projection");
        PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }

    // ---- Buffers ----

    void allocateBuffers() {
        const int d = cfg_.nEmbd, q = cfg_.qDim(), kv = cfg_.kvDim(), ff = cfg_.nFf, V = cfg_.vocabSize;
        const int qkvDim = q + 2 * kv;
        auto dev = [&](size_t bytes, const char* what) { return arena_.device(bytes, what); };
        // Upload staging is no longer needed; it stays in the arena (freed with the model) but
        // is reused below as the prefill dequantization scratch where it is large enough.
        weightBytesPerToken_ = output_.bytes();
        // INT8/INT4 prefill projections need a dequantization scratch unless the sm_90a kernel
        // takes them.
        gemm_.quantizedSm90 = quantizedGemmSm90Available(prop_.major, prop_.minor);
        bool needsScratch = gemmNeedsScratch(gemm_, output_);
        bool residualSm90 = false; // an O or down projection in the sm_90a kernel (may split over K)
        for (const Layer& l : layers_) {
            for (auto& p : l.qkv) weightBytesPerToken_ += p.m.bytes(), needsScratch |= gemmNeedsScratch(gemm_, p.m);
            for (auto& p : l.gateUp) weightBytesPerToken_ += p.m.bytes(), needsScratch |= gemmNeedsScratch(gemm_, p.m);
            weightBytesPerToken_ += l.wo.bytes() + l.down.bytes();
            for (const DeviceMatrix* m : {&l.wo, &l.down}) {
                const bool scratch = gemmNeedsScratch(gemm_, *m);
                needsScratch |= scratch;
                residualSm90 |= gemm_.quantizedSm90 && m->precision != Precision::FP16 && !scratch;
            }
        }

        // Decode
        dResid_ = static_cast<float*>(dev(size_t(d) * 4, "decode buffers"));
        dQ_ = static_cast<float*>(dev(size_t(q) * 4, "decode buffers"));
        dAttn_ = static_cast<float*>(dev(size_t(q) * 4, "decode buffers"));
        dAct_ = static_cast<float*>(dev(size_t(ff) * 4, "decode buffers"));
        dGateUpTmp_ = static_cast<float*>(dev(size_t(2 * ff) * 4, "decode buffers"));
        dXLast_ = static_cast<float*>(dev(size_t(d) * 4, "decode buffers"));
        dLogits_ = static_cast<float*>(dev(size_t(V) * 4, "logits"));
        ssqCount_ = 2 * cfg_.nLayer + 1;
        dSsq_ = static_cast<float*>(dev(size_t(ssqCount_) * 4, "decode buffers"));
        dStep_ = static_cast<DeviceStep*>(dev(sizeof(DeviceStep), "decode buffers"));
        dResult_ = static_cast<DeviceResult*>(dev(sizeof(DeviceResult), "decode buffers"));
        hostStep_ = static_cast<DeviceStep*>(arena_.hostMapped(sizeof(DeviceStep), "decode step"));
        hostResult_ = static_cast<DeviceResult*>(arena_.hostMapped(sizeof(DeviceResult), "decode step"));
        *hostStep_ = DeviceStep{};
        PARLEY_CUDA_CHECK(cudaMemset(dResult_, 0, sizeof(DeviceResult)));
        int maxSplit = 1;
        for (int64_t len = 1; ; len *= 2) {
            int chunk = 0, nSplit = 0;
            attentionDecodeSplit(int(std::min<int64_t>(len, maxContext_)), cfg_.nHeadKv, cfg_.headDim, prop_.multiProcessorCount, chunk, nSplit);
            maxSplit = std::max(maxSplit, nSplit);
            if (len >= maxContext_) break;
        }
        dPartO_ = static_cast<float*>(dev(attentionDecodeWorkspaceFloats(cfg_.nHead, maxSplit, cfg_.headDim) * 4, "attention workspace"));
        dPartMl_ = dPartO_ + size_t(cfg_.nHead) * maxSplit * cfg_.headDim;
        dCounters_ = static_cast<unsigned*>(dev(size_t(cfg_.nHeadKv) * 4, "attention workspace"));
        PARLEY_CUDA_CHECK(cudaMemset(dCounters_, 0, size_t(cfg_.nHeadKv) * 4));

        // Prefill, in chunks of up to prefillRows_ tokens
        prefillRows_ = std::min(512, maxContext_);
        const size_t P = size_t(prefillRows_);
        pResid_ = static_cast<float*>(dev(P * d * 4, "prefill buffers"));
        pX_ = static_cast<__half*>(dev(P * d * 2, "prefill buffers"));
        pWide_ = static_cast<__half*>(dev(P * std::max(qkvDim, 2 * ff) * 2, "prefill buffers"));
        pQ_ = static_cast<__half*>(dev(P * q * 2, "prefill buffers"));
        pMid_ = static_cast<__half*>(dev(P * std::max(q, ff) * 2, "prefill buffers"));
        pTokens_ = static_cast<int32_t*>(dev(P * 4, "prefill buffers"));
        logitRows_ = int(std::clamp<int64_t>((int64_t(8) << 20) / (int64_t(V) * 4), 1, int64_t(P)));
        pLogits_ = static_cast<float*>(dev(size_t(logitRows_) * V * 4, "prefill logits"));
        gemm_.handle = cublas_;
        if (residualSm90) { // the residual projections' split halves
            gemm_.partialFloats = P * d;
            gemm_.partial = static_cast<float*>(dev(gemm_.partialFloats * 4, "prefill buffers"));
        }
        if (staging_) { // the upload staging buffer is done with
            arena_.free(staging_);
            staging_ = nullptr;
            stagingBytes_ = 0;
        }
        if (needsScratch) {
            const size_t scratchBytes = size_t(96) << 20; // two slabs of 48 MiB
            gemm_.scratch = static_cast<__half*>(dev(scratchBytes, "prefill dequantization scratch"));
            gemm_.scratchHalves = scratchBytes / 2;
            PARLEY_CUDA_CHECK(cudaStreamCreateWithFlags(&gemm_.side, cudaStreamNonBlocking));
            for (int b = 0; b < 2; ++b) {
                PARLEY_CUDA_CHECK(cudaEventCreateWithFlags(&gemm_.ready[b], cudaEventDisableTiming));
                PARLEY_CUDA_CHECK(cudaEventCreateWithFlags(&gemm_.free[b], cudaEventDisableTiming));
            }
        }
        const size_t workspaceBytes = size_t(32) << 20;
        void* ws = dev(workspaceBytes, "cuBLAS workspace");
        const cublasStatus_t s = cublasSetWorkspace(cublas_, ws, workspaceBytes);
        if (s != CUBLAS_STATUS_SUCCESS) throwCublasError(s, "cublasSetWorkspace");
        // Traced launches a step: per layer each QKV part, attention, O, gate/up (fused) and down;
        // then the output projection.
        const int qkvParts = layers_.empty() ? 1 : int(layers_[0].qkv.size());
        trace_.init(cfg_.nLayer * (qkvParts + 4) + 1);
        loaded_ = true;
    }

    // ---- Decode ----

    int bucketFor(int pos) const {
        int64_t b = 256;
        while (b < int64_t(pos) + 1) b *= 2;
        return int(std::min<int64_t>(b, maxContext_));
    }

    // PARLEY_CUDA_PROFILE=1: the decode step runs without a graph, with an event after each
    // stage, and the mean time of each stage is printed when the backend goes (a measuring aid).
    void mark(const char* label) {
        if (!profiling_) return;
        if (profileUsed_ == profileEvents_.size()) {
            cudaEvent_t e;
            PARLEY_CUDA_CHECK(cudaEventCreate(&e));
            profileEvents_.push_back(e);
        }
        PARLEY_CUDA_CHECK(cudaEventRecord(profileEvents_[profileUsed_], stream_));
        profileLabels_.resize(profileUsed_ + 1);
        profileLabels_[profileUsed_++] = label;
    }
    void collectProfile() {
        if (!profiling_ || profileUsed_ < 2) return;
        PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
        for (size_t i = 1; i < profileUsed_; ++i) {
            float ms = 0;
            PARLEY_CUDA_CHECK(cudaEventElapsedTime(&ms, profileEvents_[i - 1], profileEvents_[i]));
            auto& [total, count] = profile_[profileLabels_[i]];
            total += ms;
            ++count;
        }
        ++profileSteps_;
        profileUsed_ = 0;
    }
    void printProfile() {
        if (profile_.empty()) return;
        double sum = 0;
        for (auto& [label, tc] : profile_) sum += tc.first;
        std::fprintf(stderr, "decode stages over %d steps (eager, events between stages):\n", profileSteps_);
        for (auto& [label, tc] : profile_)
            std::fprintf(stderr, "  %-14s %8.2f us a call, %8.1f us a step (%4.1f%%)\n", label.c_str(),
                         1e3 * tc.first / tc.second, 1e3 * tc.first / profileSteps_, 100 * tc.first / sum);
        std::fprintf(stderr, "  %-14s %8.1f us a step\n", "total", 1e3 * sum / profileSteps_);
    }

    // resid += m x, with the sum of squares of the new resid into *ssqOut (the next RMSNorm's).
    void residualGemv(const LaunchContext& ctx, const DeviceMatrix& m, const float* x, float* ssqOut, const char* label) {
        GemvArgs a;
        a.trace = trace_.next(label, gemvTraceBlocks());
        a.x = x;
        a.logicalRows = cfg_.nEmbd;
        a.pairCount = gemvPairCount(GemvEpilogue::Residual, cfg_.nEmbd);
        a.resid = dResid_;
        a.ssqOut = ssqOut;
        launchGemv(ctx, m, GemvEpilogue::Residual, a);
    }

    // Blocks a GEMV launch has at most (one wave of the largest occupancy), for the trace.
    int gemvTraceBlocks() const { return 8 * prop_.multiProcessorCount; }

    void recordDecode(int length) {
        const LaunchContext ctx{stream_, usePdl_};
        trace_.startRecording();
        mark("start");
        const int q = cfg_.qDim(), kv = cfg_.kvDim(), ff = cfg_.nFf;
        const size_t kvLayer = size_t(maxContext_) * kv;
        launchEmbedDecode(ctx, embedding_, &dStep_->token, dResid_, dSsq_, ssqCount_, &dResult_->badToken);
        mark("embedding");
        int chunk = 0, nSplit = 0;
        attentionDecodeSplit(length, cfg_.nHeadKv, cfg_.headDim, prop_.multiProcessorCount, chunk, nSplit);
        for (int l = 0; l < cfg_.nLayer; ++l) {
            const Layer& L = layers_[l];
            // The 8-bit cache: this layer's new K, V rows (FP16) from the QKV GEMV to attention.
            __half* kNew = kCache8_ ? kvNewRows_ + size_t(l) * 2 * kv : nullptr;
            for (const MatrixPart& p : L.qkv) {
                GemvArgs a;
                a.x = dResid_;
                a.normWeight = L.attnNorm;
                a.ssq = dSsq_ + 2 * l;
                a.eps = cfg_.normEps;
                a.rowOffset = p.rowOffset;
                a.logicalRows = q + 2 * kv;
                a.pairBegin = p.rowOffset / 2;
                a.pairCount = int(p.m.rows / 2);
                a.qOut = dQ_;
                if (kCache8_) { // the new row only, for the attention kernel to quantize
                    a.kCache = kNew;
                    a.vCache = kNew + kv;
                    a.kvNewRowOnly = true;
                } else {
                    a.kCache = kCache_ + l * kvLayer;
                    a.vCache = vCache_ + l * kvLayer;
                }
                a.pos = &dStep_->pos;
                a.invFreq = invFreq_;
                a.bias = L.qkvBias;
                a.qDim = q;
                a.kvDim = kv;
                a.headDim = cfg_.headDim;
                a.neox = cfg_.ropeNeox;
                a.trace = trace_.next("qkv+rope", gemvTraceBlocks());
                launchGemv(ctx, p.m, GemvEpilogue::Qkv, a);
            }
            mark("qkv+rope");
            AttentionDecodeArgs at;
            at.q = dQ_;
            if (kCache8_) {
                at.k = kNew;
                at.v = kNew + kv;
                at.cache8 = cache8(l);
            } else {
                at.k = kCache_ + l * kvLayer;
                at.v = vCache_ + l * kvLayer;
            }
            at.pos = &dStep_->pos;
            at.out = dAttn_;
            at.partO = dPartO_;
            at.partMl = dPartMl_;
            at.counters = dCounters_;
            at.nHead = cfg_.nHead;
            at.nHeadKv = cfg_.nHeadKv;
            at.headDim = cfg_.headDim;
            at.chunk = chunk;
            at.nSplit = nSplit;
            at.trace = trace_.next("attention", cfg_.nHeadKv * nSplit);
            launchAttentionDecode(ctx, at);
            mark("attention");
            residualGemv(ctx, L.wo, dAttn_, dSsq_ + 2 * l + 1, "o+residual");
            mark("o+residual");
            if (L.gateUp.size() == 1) {
                GemvArgs a;
                a.x = dResid_;
                a.normWeight = L.ffnNorm;
                a.ssq = dSsq_ + 2 * l + 1;
                a.eps = cfg_.normEps;
                a.logicalRows = 2 * ff;
                a.pairCount = ff;
                a.nFf = ff;
                a.out = dAct_;
                a.trace = trace_.next("gate/up+silu", gemvTraceBlocks());
                launchGemv(ctx, L.gateUp[0].m, GemvEpilogue::GateUp, a);
            } else {
                for (const MatrixPart& p : L.gateUp) {
                    GemvArgs a;
                    a.x = dResid_;
                    a.normWeight = L.ffnNorm;
                    a.ssq = dSsq_ + 2 * l + 1;
                    a.eps = cfg_.normEps;
                    a.logicalRows = p.rowOffset + int(p.m.rows);
                    a.rowOffset = p.rowOffset;
                    a.pairBegin = p.rowOffset / 2;
                    a.pairCount = int((p.m.rows + 1) / 2);
                    a.out = dGateUpTmp_;
                    launchGemv(ctx, p.m, GemvEpilogue::Store, a);
                }
                launchSwiGluVector(ctx, dGateUpTmp_, ff, dAct_);
            }
            mark("gate/up+silu");
            residualGemv(ctx, L.down, dAct_, dSsq_ + 2 * l + 2, "down+residual");
            mark("down+residual");
        }
        GemvArgs a;
        a.x = dResid_;
        a.normWeight = outputNorm_;
        a.ssq = dSsq_ + 2 * cfg_.nLayer;
        a.eps = cfg_.normEps;
        a.logicalRows = cfg_.vocabSize;
        a.pairCount = gemvPairCount(GemvEpilogue::Store, cfg_.vocabSize);
        a.out = dLogits_;
        a.trace = trace_.next("output", gemvTraceBlocks());
        launchGemv(ctx, output_, GemvEpilogue::Store, a);
        mark("output");
        launchSample(ctx, dLogits_, cfg_.vocabSize, &dStep_->sample, &dResult_->token);
        mark("sampling");
    }

    int32_t decode(int32_t token, int pos, const SampleParamsDevice* sample, float* logits) {
        hostStep_->token = token;
        hostStep_->pos = pos;
        if (sample) hostStep_->sample = *sample;
        else {
            hostStep_->sample = SampleParamsDevice{};
            hostStep_->sample.temperature = 0.f; // greedy, logits untouched
        }
        // Only the header and the used part of the history cross.
        const size_t bytes = offsetof(DeviceStep, sample) + offsetof(SampleParamsDevice, history) +
                             size_t(hostStep_->sample.historyCount) * sizeof(int32_t);
        PARLEY_CUDA_CHECK(cudaMemcpyAsync(dStep_, hostStep_, bytes, cudaMemcpyHostToDevice, stream_));
        trace_.beginStep(stream_);
        const int length = bucketFor(pos);
        if (!opt_.useGraphs || profiling_) {
            recordDecode(length);
            collectProfile();
        } else {
            auto it = graphs_.find(length);
            if (it == graphs_.end()) {
                // First step at this length: run it directly (kernel attributes get set outside
                // any capture), then capture the same sequence for the steps after.
                recordDecode(length);
                cudaGraph_t graph = nullptr;
                PARLEY_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
                try {
                    recordDecode(length);
                } catch (...) {
                    cudaStreamEndCapture(stream_, &graph);
                    if (graph) cudaGraphDestroy(graph);
                    throw;
                }
                PARLEY_CUDA_CHECK(cudaStreamEndCapture(stream_, &graph));
                cudaGraphExec_t exec = nullptr;
                const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
                cudaGraphDestroy(graph);
                if (e != cudaSuccess) throwCudaError(e, "cudaGraphInstantiate (decode step)");
                graphs_[length] = exec;
            } else {
                PARLEY_CUDA_CHECK(cudaGraphLaunch(it->second, stream_));
            }
        }
        if (logits)
            PARLEY_CUDA_CHECK(cudaMemcpyAsync(logits, dLogits_, size_t(cfg_.vocabSize) * 4, cudaMemcpyDeviceToHost, stream_));
        const int32_t next = finishStep();
        trace_.endStep(stream_);
        return next;
    }

    int32_t finishStep() {
        PARLEY_CUDA_CHECK(cudaMemcpyAsync(hostResult_, dResult_, sizeof(DeviceResult), cudaMemcpyDeviceToHost, stream_));
        PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
        if (hostResult_->badToken) {
            PARLEY_CUDA_CHECK(cudaMemsetAsync(&dResult_->badToken, 0, sizeof(int32_t), stream_));
            PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream_));
            throw Error(name() + ": a token id is outside the vocabulary of " + std::to_string(cfg_.vocabSize));
        }
        return hostResult_->token;
    }

    // ---- Prefill ----

    void prefill(const int32_t* tokens, int n, int startPos, bool allLogits, float* hostLogits) {
        const LaunchContext ctx{stream_, false};
        const int d = cfg_.nEmbd, q = cfg_.qDim(), kv = cfg_.kvDim(), ff = cfg_.nFf, V = cfg_.vocabSize;
        const int qkvDim = q + 2 * kv;
        const size_t kvLayer = size_t(maxContext_) * kv;
        RopeArgs rope;
        rope.nHead = cfg_.nHead;
        rope.nHeadKv = cfg_.nHeadKv;
        rope.headDim = cfg_.headDim;
        rope.neox = cfg_.ropeNeox;
        rope.invFreq = invFreq_;
        for (int c0 = 0; c0 < n; c0 += prefillRows_) {
            const int nc = std::min(prefillRows_, n - c0), pos0 = startPos + c0;
            PARLEY_CUDA_CHECK(cudaMemcpyAsync(pTokens_, tokens + c0, size_t(nc) * 4, cudaMemcpyHostToDevice, stream_));
            launchEmbedRows(ctx, embedding_, pTokens_, nc, pResid_, &dResult_->badToken);
            // A residual projection split over its columns leaves its second half for the next
            // norm to add on its way (gemmRows' addLater): null, or [nc][d] floats.
            const float* addLater = nullptr;
            for (int l = 0; l < cfg_.nLayer; ++l) {
                const Layer& L = layers_[l];
                __half* kc = kCache_ ? kCache_ + l * kvLayer : nullptr;
                __half* vc = vCache_ ? vCache_ + l * kvLayer : nullptr;
                launchAddRmsNormRowsHalf(ctx, pResid_, d, addLater, L.attnNorm, cfg_.normEps, nc, d, pX_);
                for (const MatrixPart& p : L.qkv) gemmRows(ctx, gemm_, p.m, pX_, nc, pWide_, false, qkvDim, p.rowOffset, 0.f);
                rope.bias = L.qkvBias;
                if (kCache8_) launchRopeAndStore8(ctx, rope, pWide_, nc, pos0, pQ_, cache8(l));
                else launchRopeAndStore(ctx, rope, pWide_, nc, pos0, pQ_, kc, vc);
                AttentionPrefillArgs at;
                at.q = pQ_;
                at.k = kc;
                at.v = vc;
                at.cache8 = cache8(l);
                at.out = pMid_;
                at.n = nc;
                at.startPos = pos0;
                at.nHead = cfg_.nHead;
                at.nHeadKv = cfg_.nHeadKv;
                at.headDim = cfg_.headDim;
                launchAttentionPrefill(ctx, at);
                gemmRows(ctx, gemm_, L.wo, pMid_, nc, pResid_, true, d, 0, 1.f, &addLater);
                launchAddRmsNormRowsHalf(ctx, pResid_, d, addLater, L.ffnNorm, cfg_.normEps, nc, d, pX_);
                if (L.gateUp.size() == 1) {
                    gemmGateUpSwiGlu(ctx, gemm_, L.gateUp[0].m, pX_, nc, pWide_, pMid_);
                } else {
                    for (const MatrixPart& p : L.gateUp) gemmRows(ctx, gemm_, p.m, pX_, nc, pWide_, false, 2 * ff, p.rowOffset, 0.f);
                    launchSwiGluRows(ctx, pWide_, nc, ff, pMid_);
                }
                // (The last layer's is added here: the output norms read the residual as it is.)
                addLater = nullptr;
                gemmRows(ctx, gemm_, L.down, pMid_, nc, pResid_, true, d, 0, 1.f, l + 1 < cfg_.nLayer ? &addLater : nullptr);
            }
            if (allLogits) {
                for (int r0 = 0; r0 < nc; r0 += logitRows_) {
                    const int rc = std::min(logitRows_, nc - r0);
                    launchRmsNormRowsHalf(ctx, pResid_ + size_t(r0) * d, d, outputNorm_, cfg_.normEps, rc, d, pX_);
                    gemmRows(ctx, gemm_, output_, pX_, rc, pLogits_, true, V, 0, 0.f);
                    PARLEY_CUDA_CHECK(cudaMemcpyAsync(hostLogits + size_t(c0 + r0) * V, pLogits_, size_t(rc) * V * 4,
                                                      cudaMemcpyDeviceToHost, stream_));
                }
            }
            if (c0 + nc == n) {
                // The last token's logits, kept on the device for sampling (in FP32 through the GEMV).
                launchRmsNormRowsFloat(ctx, pResid_ + size_t(nc - 1) * d, d, outputNorm_, cfg_.normEps, 1, d, dXLast_);
                GemvArgs a;
                a.x = dXLast_;
                a.logicalRows = V;
                a.pairCount = gemvPairCount(GemvEpilogue::Store, V);
                a.out = dLogits_;
                launchGemv(ctx, output_, GemvEpilogue::Store, a);
                if (!allLogits && hostLogits)
                    PARLEY_CUDA_CHECK(cudaMemcpyAsync(hostLogits, dLogits_, size_t(V) * 4, cudaMemcpyDeviceToHost, stream_));
            }
        }
        finishStep();
    }

    ParleyCudaOptions opt_;
    cudaDeviceProp prop_;
    bool profiling_ = false;
    DecodeTrace trace_; // PARLEY_CUDA_TRACE
    std::vector<cudaEvent_t> profileEvents_;
    std::vector<std::string> profileLabels_;
    size_t profileUsed_ = 0;
    int profileSteps_ = 0;
    std::map<std::string, std::pair<double, int>> profile_;
    ModelConfig cfg_;
    int maxContext_ = 0;
    bool loaded_ = false, tied_ = false, usePdl_ = false;
    Arena arena_;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    GemmContext gemm_;
    std::map<int, cudaGraphExec_t> graphs_;
    uint64_t weightBytesPerToken_ = 0;

    std::vector<Layer> layers_;
    DeviceMatrix embedding_, output_;
    float* outputNorm_ = nullptr;
    float* invFreq_ = nullptr;
    __half* kCache_ = nullptr;  // FP16 cache [layer][maxContext][kvDim], or
    __half* vCache_ = nullptr;
    int8_t* kCache8_ = nullptr; // 8-bit cache [layer][maxContext][kvDim] (kv_cache.cuh)
    int8_t* vCache8_ = nullptr;
    float* kScale_ = nullptr;   // [layer][nHeadKv][maxContext]
    float* vScale_ = nullptr;
    __half* kvNewRows_ = nullptr; // [layer][2][kvDim]: the new token's K, V for the attention kernel
    void* staging_ = nullptr;
    size_t stagingBytes_ = 0;

    float *dResid_ = nullptr, *dQ_ = nullptr, *dAttn_ = nullptr, *dAct_ = nullptr, *dGateUpTmp_ = nullptr;
    float *dXLast_ = nullptr, *dLogits_ = nullptr, *dSsq_ = nullptr, *dPartO_ = nullptr, *dPartMl_ = nullptr;
    unsigned* dCounters_ = nullptr;
    int ssqCount_ = 0;
    DeviceStep* dStep_ = nullptr;
    DeviceResult* dResult_ = nullptr;
    DeviceStep* hostStep_ = nullptr;
    DeviceResult* hostResult_ = nullptr;

    int prefillRows_ = 0, logitRows_ = 0;
    float* pResid_ = nullptr;
    __half *pX_ = nullptr, *pWide_ = nullptr, *pQ_ = nullptr, *pMid_ = nullptr;
    int32_t* pTokens_ = nullptr;
    float* pLogits_ = nullptr;
};

void writeError(char* err, int errLen, const std::string& msg) {
    if (!err || errLen <= 0) return;
    std::strncpy(err, msg.c_str(), size_t(errLen - 1));
    err[errLen - 1] = 0;
}

} // namespace

} // namespace parley::cuda

extern "C" void* parley_cuda_create_backend(const ParleyCudaOptions* options, char* err, int errLen) {
    using namespace parley::cuda;
    try {
        ParleyCudaOptions o = options ? *options : ParleyCudaOptions{0, 1, 1, -1, 32, 32, 1, 0};
        int count = 0;
        cudaError_t e = cudaGetDeviceCount(&count);
        if (e != cudaSuccess) throwCudaError(e, "cudaGetDeviceCount");
        if (o.device < 0 || o.device >= count)
            throw parley::Error("CUDA: device " + std::to_string(o.device) + " does not exist (" + std::to_string(count) + " found)");
        PARLEY_CUDA_CHECK(cudaSetDevice(o.device));
        PARLEY_CUDA_CHECK(cudaFree(nullptr)); // creates the context now, so that a broken driver shows here
        cudaDeviceProp prop;
        PARLEY_CUDA_CHECK(cudaGetDeviceProperties(&prop, o.device));
        if (prop.major < 8)
            throw parley::Error(std::string("CUDA: ") + prop.name + " has compute capability " + std::to_string(prop.major) + "." +
                                std::to_string(prop.minor) + "; Parley needs 8.0 or newer");
        return static_cast<parley::Backend*>(new CudaBackend(o, prop));
    } catch (const std::exception& ex) {
        writeError(err, errLen, ex.what());
        return nullptr;
    }
}
