// The K/V cache types and the 8-bit format's reference. See kv_cache_format.h.
#include "engine/kv_cache_format.h"

#include <algorithm>
#include <cmath>

namespace parley {

const char* kvCacheLabel(KvCacheType type) {
    switch (type) {
    case KvCacheType::FP16: return "fp16";
    case KvCacheType::INT8: return "int8";
    }
    return "?";
}

std::optional<KvCacheType> parseKvCacheType(std::string_view text) {
    if (text == "fp16") return KvCacheType::FP16;
    if (text == "int8") return KvCacheType::INT8;
    return std::nullopt;
}

const char* kvCacheRequestLabel(KvCacheRequest request) {
    switch (request) {
    case KvCacheRequest::Auto: return "auto";
    case KvCacheRequest::FP16: return "fp16";
    case KvCacheRequest::INT8: return "int8";
    }
    return "?";
}

std::optional<KvCacheRequest> parseKvCacheRequest(std::string_view text) {
    if (text == "auto") return KvCacheRequest::Auto;
    if (text == "fp16") return KvCacheRequest::FP16;
    if (text == "int8") return KvCacheRequest::INT8;
    return std::nullopt;
}

KvCacheType kvCacheTypeOf(KvCacheRequest request) {
    return request == KvCacheRequest::INT8 ? KvCacheType::INT8 : KvCacheType::FP16;
}

bool gpuInt8KvCacheSupports(int headDim) { return headDim == 64 || headDim == 128; }

int64_t kvCacheBytesPerToken(const ModelConfig& config, KvCacheType type) {
    const int64_t kAndV = 2;
    switch (type) {
    case KvCacheType::FP16: return kAndV * config.nLayer * config.kvDim() * 2;
    case KvCacheType::INT8: return kAndV * config.nLayer * (int64_t(config.kvDim()) + int64_t(config.nHeadKv) * 4);
    }
    return 0;
}

float quantizeKvHead(const float* x, int n, int8_t* q) {
    float amax = 0.f;
    for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
    if (amax == 0.f) {
        std::fill(q, q + n, int8_t(0));
        return 0.f;
    }
    // The reciprocal once, then products: the order the format prescribes (and the GPU follows).
    const float inverse = 127.f / amax;
    for (int i = 0; i < n; ++i) q[i] = int8_t(std::clamp(std::rint(x[i] * inverse), -127.f, 127.f));
    return amax / 127.f;
}

} // namespace parley
