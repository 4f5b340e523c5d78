// Precision planner. See precision_planner.h; the byte counts follow the CUDA backend's layouts
// (kernels/device_matrix.h) and its buffers (kernels/cuda_backend.cu).
#include "engine/precision_planner.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace parley {

namespace {

uint64_t matrixBytes(int64_t rows, int64_t cols, Precision p, int int8Group, int int4Group) {
    const uint64_t n = uint64_t(rows) * uint64_t(cols);
    switch (p) {
    case Precision::FP16: return 2 * n;
    case Precision::INT8: return n + 2 * (n / uint64_t(std::max(1, int8Group)));
    case Precision::INT4: return n / 2 + 4 * (n / uint64_t(std::max(1, int4Group)));
    }
    return 0;
}

} // namespace

const char* precisionLabel(Precision p) {
    switch (p) {
    case Precision::FP16: return "FP16";
    case Precision::INT8: return "INT8";
    case Precision::INT4: return "INT4";
    }
    return "?";
}

std::string formatGigabytes(uint64_t bytes) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.1f GB", double(bytes) / 1e9);
    return buf;
}

GpuMemoryEstimate estimateGpuMemory(const PrecisionPlanInput& in, Precision p) {
    return estimateGpuMemory(in, p, kvCacheTypeOf(in.kvCache));
}

GpuMemoryEstimate estimateGpuMemory(const PrecisionPlanInput& in, Precision p, KvCacheType kvType) {
    const ModelConfig& c = in.config;
    const int64_t d = c.nEmbd, q = c.qDim(), kv = c.kvDim(), ff = c.nFf, V = c.vocabSize, L = c.nLayer;
    const int g8 = in.int8GroupSize, g4 = in.int4GroupSize;
    GpuMemoryEstimate e;
    const uint64_t perLayer = matrixBytes(q + 2 * kv, d, p, g8, g4) + matrixBytes(d, q, p, g8, g4) +
                              matrixBytes(2 * ff, d, p, g8, g4) + matrixBytes(d, ff, p, g8, g4) +
                              uint64_t(2 * d) * 4 + (c.qkvBias ? uint64_t(q + 2 * kv) * 4 : 0);
    const Precision outP = p == Precision::INT4 ? Precision::INT8 : p;
    const uint64_t output = matrixBytes(V, d, outP, g8, g4);
    e.weightBytes = uint64_t(L) * perLayer + output + uint64_t(d) * 4;
    if (!c.tiedEmbeddings && in.untiedEmbeddingOnGpu) e.weightBytes += output;
    e.kvCacheBytes = uint64_t(kvCacheBytesPerToken(c, kvType)) * uint64_t(std::max(0, in.contextLength));
    // Prefill chunk buffers (up to 512 tokens), logits rows, cuBLAS workspace, for quantized
    // weights the dequantization scratch (two slabs of 48 MiB), and the decode attention's
    // partial results (chunks of at least 32 positions: kernels/attention_decode.cu; counted at
    // the smallest chunk, an upper bound).
    const uint64_t P = uint64_t(std::min(512, std::max(1, in.contextLength)));
    const uint64_t splits = uint64_t(std::max(1, in.contextLength) + 31) / 32;
    e.workspaceBytes = P * uint64_t(d * 4 + d * 2 + std::max(q + 2 * kv, 2 * ff) * 2 + q * 2 + std::max(q, ff) * 2 + 4) +
                       (uint64_t(8) << 20) + uint64_t(V) * 4 + (uint64_t(32) << 20) +
                       (p != Precision::FP16 ? (uint64_t(96) << 20) : 0) +
                       uint64_t(c.nHead) * splits * uint64_t(c.headDim + 2) * 4;
    e.reserveBytes = in.reserveBytes;
    return e;
}

PrecisionPlan planPrecision(const PrecisionPlanInput& in) {
    PrecisionPlan plan;
    plan.freeBytes = in.freeBytes;
    // Precision enumerators run FP16 < INT8 < INT4 from most to fewest bits: "not above the file"
    // means an enumerator value at least the file's.
    auto atMostFile = [&](Precision p) { return int(p) >= int(in.filePrecision); };
    // The caches to try at each precision, in order: the one asked for; with Auto the FP16 cache
    // and then, where the GPU takes the head size, the 8-bit one (a far smaller loss than the next
    // weight precision down: docs/engine.md).
    std::vector<KvCacheType> caches;
    if (in.kvCache == KvCacheRequest::Auto) {
        caches.push_back(KvCacheType::FP16);
        if (gpuInt8KvCacheSupports(in.config.headDim)) caches.push_back(KvCacheType::INT8);
    } else {
        caches.push_back(kvCacheTypeOf(in.kvCache));
    }
    // A sentence that counted the 8-bit cache says so; one that chose it over FP16 says why.
    auto kvCounted = [&] { return std::string(plan.kvCache == KvCacheType::INT8 ? ", with an 8-bit K/V cache" : ""); };
    auto kvChosen = [&](Precision p) {
        if (plan.kvCache != KvCacheType::INT8 || in.kvCache != KvCacheRequest::Auto) return kvCounted();
        return kvCounted() + " (with FP16 it would need " +
               formatGigabytes(estimateGpuMemory(in, p, KvCacheType::FP16).total()) + ")";
    };
    auto choose = [&](Precision p, KvCacheType kv, const GpuMemoryEstimate& e) {
        plan.precision = p;
        plan.kvCache = kv;
        plan.memory = e;
        plan.fits = e.total() <= in.freeBytes;
    };
    // At precision p: the first cache that fits, else the smallest (for the numbers).
    auto tryPrecision = [&](Precision p) {
        for (KvCacheType kv : caches) {
            const GpuMemoryEstimate e = estimateGpuMemory(in, p, kv);
            choose(p, kv, e);
            if (plan.fits) return true;
        }
        return false;
    };
    if (in.requested) {
        Precision p = *in.requested;
        std::string note;
        if (!atMostFile(p)) {
            note = std::string(" (the file holds ") + precisionLabel(in.filePrecision) + ")";
            p = in.filePrecision;
        }
        tryPrecision(p);
        const std::string numbers = formatGigabytes(plan.memory.total()) + ", " + formatGigabytes(in.freeBytes) + " free";
        plan.reason = plan.fits ? std::string(precisionLabel(p)) + " — needs " + numbers + kvChosen(p) + note
                                : std::string(precisionLabel(p)) + " does not fit — needs " + numbers + kvCounted() + note;
        return plan;
    }
    for (Precision p : {Precision::FP16, Precision::INT8, Precision::INT4}) {
        if (!atMostFile(p) || !tryPrecision(p)) continue;
        plan.reason = std::string(precisionLabel(p)) + " — needs " + formatGigabytes(plan.memory.total()) + ", " +
                      formatGigabytes(in.freeBytes) + " free" + kvChosen(p);
        return plan;
    }
    tryPrecision(Precision::INT4);
    plan.reason = "Does not fit — INT4 needs " + formatGigabytes(plan.memory.total()) + ", " +
                  formatGigabytes(in.freeBytes) + " free" + kvCounted();
    return plan;
}

} // namespace parley
