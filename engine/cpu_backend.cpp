// The CPU backend: the LLaMA forward pass (Touvron et al. 2023; Meta's reference model.py) for
// a batch of tokens at once, FP32 activations, weights in the engine's FP16/INT8/INT4 formats
// multiplied through parley::matmul, and an FP16 K/V cache (optionally rounded through the
// 8-bit K/V format, engine/kv_cache_format.h, to attend over what the GPU's 8-bit cache holds).
//
// Prefill runs all prompt tokens through each layer together: every projection is one
// matrix-matrix product over [n][features] activations, so each weight row is read once per
// layer, not once per token. Decode is the same code with n = 1.
//
// One forward pass, top to bottom:
//   x = embedding rows of the tokens
//   for each layer:
//     h = RMSNorm(x) * attnNorm
//     q, k, v = h Wq^T (+bq), h Wk^T (+bk), h Wv^T (+bv)
//     rotate q and k by their positions (RoPE, Su et al. 2021)
//     append k, v to the cache (as FP16; with the 8-bit K/V option each head vector rounded
//     through that format)
//     each query head attends causally over the cached keys of its KV group (GQA, Ainslie et al. 2023)
//     x += attention output Wo^T
//     h = RMSNorm(x) * ffnNorm
//     x += (SiLU(h Wgate^T) * (h Wup^T)) Wdown^T        (SwiGLU, Shazeer 2020)
//   logits = RMSNorm(x) * outputNorm, times the output projection (or the tied embedding)
#include "engine/backend.h"
#include "engine/cpu_matmul.h"
#include "engine/error.h"
#include "engine/kv_cache_format.h"
#include "engine/model.h"
#include "engine/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#if defined(__F16C__) && defined(__AVX2__)
#include <immintrin.h>
#endif

namespace parley {
namespace {

// ---- Small kernels on FP32 vectors -----------------------------------------------------------

// out = x / sqrt(mean(x^2) + eps) * weight (Zhang & Sennrich 2019).
void rmsNorm(float* out, const float* x, const float* weight, int n, float eps) {
    double sumSquares = 0;
    for (int i = 0; i < n; ++i) sumSquares += static_cast<double>(x[i]) * x[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(sumSquares / n + eps));
    for (int i = 0; i < n; ++i) out[i] = x[i] * scale * weight[i];
}

// Rotates pairs of one head by angle pos * invFreq[i]. NeoX pairs are (i, i + d/2) (Hugging
// Face's rotate_half); otherwise adjacent (2i, 2i + 1), as GGUF llama files need.
void rotate(float* head, const float* cosines, const float* sines, int headDim, bool neox) {
    const int half = headDim / 2;
    for (int i = 0; i < half; ++i) {
        const int a = neox ? i : 2 * i;
        const int b = neox ? i + half : 2 * i + 1;
        const float x0 = head[a], x1 = head[b];
        head[a] = x0 * cosines[i] - x1 * sines[i];
        head[b] = x0 * sines[i] + x1 * cosines[i];
    }
}

// The K/V cache is FP16: converting with F16C where the CPU has it.
inline void toHalf(const float* src, uint16_t* dst, int n) {
    int i = 0;
#if defined(__F16C__) && defined(__AVX2__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < n; ++i) dst[i] = floatToHalf(src[i]);
}

// The 8-bit K/V option on the CPU: each of the nHeads head vectors of `head` halfs, just written
// to the FP16 cache, is replaced by the value the 8-bit cache would give back, half(q_i * scale)
// (engine/kv_cache_format.h). Storage stays FP16: the CPU saves no memory, it only rounds as the
// GPU does, so that both backends attend over the same values (the GPU tests compare their
// logits at 1e-2) and the CPU shows what the option does to a model's answers. Keeping halves
// costs one more rounding than the GPU's float(q_i) * scale: |q_i * scale| <= amax, so at most
// amax * 2^-11, a sixteenth of the format's own step (scale = amax / 127).
void roundThroughInt8(uint16_t* cache, int nHeads, int headDim) {
    std::vector<float> x(static_cast<size_t>(headDim));
    std::vector<int8_t> q(static_cast<size_t>(headDim));
    for (int hd = 0; hd < nHeads; ++hd) {
        uint16_t* head = cache + size_t(hd) * headDim;
        for (int i = 0; i < headDim; ++i) x[i] = halfToFloat(head[i]);
        const float scale = quantizeKvHead(x.data(), headDim, q.data());
        for (int i = 0; i < headDim; ++i) x[i] = float(q[i]) * scale;
        toHalf(x.data(), head, headDim);
    }
}

// sum_i q[i] * k[i] with k in FP16.
inline float dotHalf(const float* q, const uint16_t* k, int n) {
    int i = 0;
    float sum = 0;
#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 kv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k + i)));
        acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv, acc);
    }
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    sum = _mm_cvtss_f32(s);
#endif
    for (; i < n; ++i) sum += q[i] * halfToFloat(k[i]);
    return sum;
}

// out[i] += a * v[i] with v in FP16.
inline void addScaledHalf(float* out, float a, const uint16_t* v, int n) {
    int i = 0;
#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
    const __m256 av = _mm256_set1_ps(a);
    for (; i + 8 <= n; i += 8) {
        __m256 vv = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + i)));
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(av, vv, _mm256_loadu_ps(out + i)));
    }
#endif
    for (; i < n; ++i) out[i] += a * halfToFloat(v[i]);
}

#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
// The horizontal sum exactly as dotHalf reduces its accumulator (so both give the same bits).
inline float reduceLikeDotHalf(__m256 acc) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
    s = _mm_hadd_ps(s, s);
    s = _mm_hadd_ps(s, s);
    return _mm_cvtss_f32(s);
}
#endif

// One query head's attention over `positions` cached rows (row stride `stride` halfs):
// scores = q·k * scale, softmax, out = the weighted sum of the value rows. The same arithmetic,
// in the same order, as dotHalf and addScaledHalf row by row — so the results are bit for bit
// those of the simple loop — but with AVX2 four key rows are in flight at once and the output
// stays in registers across all rows (64 lanes at a time) instead of a load and store per row.
inline void attendHead(const float* q, const uint16_t* keys, const uint16_t* values, size_t stride, int positions,
                       int D, float scale, float* scores, float* out) {
    int t = 0;
#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
    if (D % 8 == 0) {
        for (; t + 4 <= positions; t += 4) {
            const uint16_t* k0 = keys + size_t(t) * stride;
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            for (int i = 0; i < D; i += 8) {
                const __m256 qv = _mm256_loadu_ps(q + i);
                auto row = [&](int r) {
                    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(k0 + size_t(r) * stride + i)));
                };
                a0 = _mm256_fmadd_ps(qv, row(0), a0);
                a1 = _mm256_fmadd_ps(qv, row(1), a1);
                a2 = _mm256_fmadd_ps(qv, row(2), a2);
                a3 = _mm256_fmadd_ps(qv, row(3), a3);
            }
            scores[t] = reduceLikeDotHalf(a0) * scale;
            scores[t + 1] = reduceLikeDotHalf(a1) * scale;
            scores[t + 2] = reduceLikeDotHalf(a2) * scale;
            scores[t + 3] = reduceLikeDotHalf(a3) * scale;
        }
    }
#endif
    for (; t < positions; ++t) scores[t] = dotHalf(q, keys + size_t(t) * stride, D) * scale;

    float maxScore = -INFINITY;
    for (t = 0; t < positions; ++t) maxScore = std::max(maxScore, scores[t]);
    float total = 0;
    for (t = 0; t < positions; ++t) {
        scores[t] = std::exp(scores[t] - maxScore);
        total += scores[t];
    }

#if defined(__F16C__) && defined(__AVX2__) && defined(__FMA__)
    if (D % 64 == 0) {
        for (int base = 0; base < D; base += 64) {
            __m256 acc[8];
            for (int j = 0; j < 8; ++j) acc[j] = _mm256_setzero_ps();
            for (t = 0; t < positions; ++t) {
                const uint16_t* row = values + size_t(t) * stride + base;
                const __m256 w = _mm256_set1_ps(scores[t] / total);
                for (int j = 0; j < 8; ++j)
                    acc[j] = _mm256_fmadd_ps(w, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 8 * j))), acc[j]);
            }
            for (int j = 0; j < 8; ++j) _mm256_storeu_ps(out + base + 8 * j, acc[j]);
        }
        return;
    }
#endif
    std::fill(out, out + D, 0.0f);
    for (t = 0; t < positions; ++t) addScaledHalf(out, scores[t] / total, values + size_t(t) * stride, D);
}

const char* simdName() {
#if defined(__AVX512F__)
    return "AVX-512";
#elif defined(__AVX2__)
    return "AVX2";
#elif defined(__ARM_NEON)
    return "NEON";
#else
    return "scalar";
#endif
}

// ---- The backend -----------------------------------------------------------------------------

class CpuBackend : public Backend {
public:
    CpuBackend(int threads, KvCacheType kvCache) : pool_(threads), kvCache_(kvCache) {}

    // "cpu (2 threads, AVX2)"; "cpu (2 threads, AVX2, 8-bit K/V)" with the 8-bit K/V option.
    std::string name() const override {
        return "cpu (" + std::to_string(pool_.size()) + " threads, " + simdName() +
               (kvCache_ == KvCacheType::INT8 ? ", 8-bit K/V)" : ")");
    }

    // The CPU's memory is where the model's weights already are: the backend reads them in
    // place, so the Model must outlive the backend (or the next load).
    void load(const ModelConfig& config, const ModelWeights& weights, int maxContext) override {
        if (maxContext < 1) throw Error("cpu backend: the context length must be at least 1");
        if (static_cast<int>(weights.layers.size()) != config.nLayer || !weights.tokenEmbedding.rows)
            throw Error("cpu backend: the model's weights are not loaded");
        config_ = config;
        weights_ = nullptr;
        maxContext_ = 0;
        keyCache_.clear();
        valueCache_.clear();
        const size_t cacheValues = size_t(config.nLayer) * maxContext * config.kvDim();
        try {
            keyCache_.assign(cacheValues, 0);
            valueCache_.assign(cacheValues, 0);
        } catch (const std::bad_alloc&) {
            keyCache_ = {};
            valueCache_ = {};
            throw Error("cpu backend: not enough memory for a K/V cache of " + std::to_string(maxContext) + " tokens (" +
                        std::to_string(2 * cacheValues * 2 >> 20) + " MiB)");
        }
        invFreq_ = ropeInverseFrequencies(config);
        weights_ = &weights;
        maxContext_ = maxContext;
    }

    int maxContext() const override { return maxContext_; }

    void forward(const int32_t* tokens, int n, int startPos, bool allLogits, float* logits) override;

private:
    uint16_t* keysAt(int layer, int pos) { return keyCache_.data() + (size_t(layer) * maxContext_ + pos) * config_.kvDim(); }
    uint16_t* valuesAt(int layer, int pos) { return valueCache_.data() + (size_t(layer) * maxContext_ + pos) * config_.kvDim(); }

    ThreadPool pool_;
    KvCacheType kvCache_; // INT8: K/V rounded through the 8-bit format as written (FP16 storage)
    ModelConfig config_;
    const ModelWeights* weights_ = nullptr;
    int maxContext_ = 0;
    std::vector<double> invFreq_;      // [headDim/2] rotary inverse frequencies, scaling applied
    std::vector<uint16_t> keyCache_;   // [layer][pos][kvDim] FP16, keys after rotation
    std::vector<uint16_t> valueCache_; // [layer][pos][kvDim] FP16
};

void CpuBackend::forward(const int32_t* tokens, int n, int startPos, bool allLogits, float* logits) {
    if (!weights_) throw Error("cpu backend: forward before load");
    if (n < 1 || startPos < 0) throw Error("cpu backend: forward needs at least one token at a non-negative position");
    if (int64_t(startPos) + n > maxContext_)
        throw Error("cpu backend: positions " + std::to_string(startPos) + ".." + std::to_string(startPos + n - 1) +
                    " pass the context length " + std::to_string(maxContext_));
    const ModelConfig& c = config_;
    const ModelWeights& w = *weights_;
    for (int i = 0; i < n; ++i)
        if (tokens[i] < 0 || tokens[i] >= c.vocabSize)
            throw Error("cpu backend: token id " + std::to_string(tokens[i]) + " is outside the vocabulary");

    const int E = c.nEmbd, Q = c.qDim(), KV = c.kvDim(), F = c.nFf, D = c.headDim, half = D / 2;
    const int group = c.nHead / c.nHeadKv; // query heads per KV head
    const float attentionScale = 1.0f / std::sqrt(static_cast<float>(D));

    std::vector<float> x(size_t(n) * E);        // [n][E] the residual stream
    std::vector<float> h(size_t(n) * E);        // [n][E] normed input of a block
    std::vector<float> q(size_t(n) * Q);        // [n][nHead][D]
    std::vector<float> k(size_t(n) * KV);       // [n][nHeadKv][D]
    std::vector<float> v(size_t(n) * KV);       // [n][nHeadKv][D]
    std::vector<float> attended(size_t(n) * Q); // [n][nHead][D] attention output before Wo
    std::vector<float> projected(size_t(n) * E); // [n][E] a block's output before the residual add
    std::vector<float> gate(size_t(n) * F);     // [n][F]
    std::vector<float> up(size_t(n) * F);       // [n][F]
    std::vector<float> cosines(size_t(n) * half); // [n][D/2] per token, shared by heads and layers
    std::vector<float> sines(size_t(n) * half);   // [n][D/2]

    for (int i = 0; i < n; ++i) {
        w.tokenEmbedding.dequantizeRow(tokens[i], &x[size_t(i) * E]);
        // Angles in double: positions times frequencies lose too many bits in float at long contexts.
        for (int j = 0; j < half; ++j) {
            const double angle = double(startPos + i) * invFreq_[j];
            cosines[size_t(i) * half + j] = static_cast<float>(std::cos(angle));
            sines[size_t(i) * half + j] = static_cast<float>(std::sin(angle));
        }
    }

    for (int l = 0; l < c.nLayer; ++l) {
        const LayerWeights& L = w.layers[l];

        // Attention block.
        for (int i = 0; i < n; ++i) rmsNorm(&h[size_t(i) * E], &x[size_t(i) * E], L.attnNorm.data(), E, c.normEps);
        matmul(L.wq, h.data(), n, q.data(), pool_);
        matmul(L.wk, h.data(), n, k.data(), pool_);
        matmul(L.wv, h.data(), n, v.data(), pool_);
        for (int i = 0; i < n; ++i) {
            if (c.qkvBias) {
                for (int j = 0; j < Q; ++j) q[size_t(i) * Q + j] += L.bq[j];
                for (int j = 0; j < KV; ++j) k[size_t(i) * KV + j] += L.bk[j];
                for (int j = 0; j < KV; ++j) v[size_t(i) * KV + j] += L.bv[j];
            }
            const float* cs = &cosines[size_t(i) * half];
            const float* sn = &sines[size_t(i) * half];
            for (int hd = 0; hd < c.nHead; ++hd) rotate(&q[size_t(i) * Q + hd * D], cs, sn, D, c.ropeNeox);
            for (int hd = 0; hd < c.nHeadKv; ++hd) rotate(&k[size_t(i) * KV + hd * D], cs, sn, D, c.ropeNeox);
            toHalf(&k[size_t(i) * KV], keysAt(l, startPos + i), KV);
            toHalf(&v[size_t(i) * KV], valuesAt(l, startPos + i), KV);
            if (kvCache_ == KvCacheType::INT8) {
                roundThroughInt8(keysAt(l, startPos + i), c.nHeadKv, D);
                roundThroughInt8(valuesAt(l, startPos + i), c.nHeadKv, D);
            }
        }

        // Causal attention: token i (position startPos + i) sees positions 0 .. startPos + i.
        // Work items are (token, head) pairs, split over the threads.
        pool_.parallelFor(int64_t(n) * c.nHead, 1, [&](int64_t begin, int64_t end) {
            std::vector<float> scores(size_t(startPos) + n); // [positions] one query's weights
            for (int64_t item = begin; item < end; ++item) {
                const int i = static_cast<int>(item / c.nHead), hd = static_cast<int>(item % c.nHead);
                const int kvHead = hd / group;
                const int positions = startPos + i + 1;
                attendHead(&q[size_t(i) * Q + hd * D], keysAt(l, 0) + kvHead * D, valuesAt(l, 0) + kvHead * D,
                           size_t(KV), positions, D, attentionScale, scores.data(), &attended[size_t(i) * Q + hd * D]);
            }
        });
        matmul(L.wo, attended.data(), n, projected.data(), pool_);
        for (size_t j = 0; j < x.size(); ++j) x[j] += projected[j];

        // MLP block.
        for (int i = 0; i < n; ++i) rmsNorm(&h[size_t(i) * E], &x[size_t(i) * E], L.ffnNorm.data(), E, c.normEps);
        matmul(L.wGate, h.data(), n, gate.data(), pool_);
        matmul(L.wUp, h.data(), n, up.data(), pool_);
        for (size_t j = 0; j < gate.size(); ++j) gate[j] = gate[j] / (1.0f + std::exp(-gate[j])) * up[j]; // SiLU(g) * u
        matmul(L.wDown, gate.data(), n, projected.data(), pool_);
        for (size_t j = 0; j < x.size(); ++j) x[j] += projected[j];
    }

    // Logits of every token, or of the last one only.
    const int first = allLogits ? 0 : n - 1;
    const int rows = n - first;
    for (int i = first; i < n; ++i)
        rmsNorm(&h[size_t(i - first) * E], &x[size_t(i) * E], w.outputNorm.data(), E, c.normEps);
    matmul(w.outputProjection(), h.data(), rows, logits, pool_);
}

} // namespace

std::unique_ptr<Backend> makeCpuBackend(int threads, KvCacheType kvCache) {
    return std::make_unique<CpuBackend>(threads, kvCache);
}

} // namespace parley
