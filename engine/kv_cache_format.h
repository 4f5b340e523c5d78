#pragma once
// The K/V cache's element type, and the 8-bit format both backends follow.
//
// Why 8 bits: the FP16 cache of LLaMA-2 7B takes 1 GiB at 2048 positions (512 KiB a token);
// next to its 3.8 GB of INT4 weights that is what keeps the model out of a 4.8 GiB card. Eight
// bits with one scale per head vector halve it (about 264 KiB a token).
//
// The 8-bit format (kernels/kv_cache.cuh implements it on the GPU; the CPU backend emulates it,
// engine/cpu_backend.cpp). For each layer, position and KV head, the K vector (after the rotary
// embedding) and the V vector, each of headDim values, are stored separately:
//   x_i   = the value rounded to FP16 (what the FP16 cache would hold), as float
//   amax  = max_i |x_i|
//   scale = amax / 127.f                                   (float; 0 when amax == 0)
//   q_i   = int8(clamp(rintf(x_i * (127.f / amax)), -127, 127))   (all 0 when amax == 0)
// and attention reads the value back as float(q_i) * scale.
// This is symmetric absmax quantization per vector, as in LLM.int8() (Dettmers et al. 2022) and
// llama.cpp's q8_0, but with one scale per head vector instead of per block of 32: a head vector
// is what one attention dot product reads, so one scale a vector costs 4 bytes per 64 or 128
// values and one multiply per dot product. -128 is never used, so the range is symmetric and
// the largest-magnitude value maps exactly to ±127.
// The arithmetic is written out (127.f / amax first, then the product; rintf, round half to
// even) so that an IEEE implementation on either side gives the same bits.
#include "engine/model_config.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace parley {

enum class KvCacheType { FP16, INT8 };

// "fp16", "int8": the spelling of the command-line flags and settings.
const char* kvCacheLabel(KvCacheType type);
// "fp16" or "int8"; anything else is empty.
std::optional<KvCacheType> parseKvCacheType(std::string_view text);

// What a user asks for: a type, or Auto — the precision planner (engine/precision_planner.h)
// takes the FP16 cache unless only the 8-bit one lets the model, or a higher weight precision,
// fit the GPU (8 bits cost the default model +0.25 % perplexity; INT8 -> INT4 weights cost far
// more). Wherever no planner runs (the CPU; an explicit precision on the command line), Auto is FP16.
enum class KvCacheRequest { Auto, FP16, INT8 };
// "auto", "fp16", "int8".
const char* kvCacheRequestLabel(KvCacheRequest request);
std::optional<KvCacheRequest> parseKvCacheRequest(std::string_view text);
// The type an explicit request names; Auto without a planner: FP16.
KvCacheType kvCacheTypeOf(KvCacheRequest request);
// Whether the GPU's 8-bit cache takes this head size (64 and 128: kernels/attention_decode.h).
bool gpuInt8KvCacheSupports(int headDim);

// Bytes of K and V cache per token of context: FP16 2 * nLayer * kvDim * 2; INT8
// 2 * nLayer * (kvDim + nHeadKv * 4), the 4 bytes being each head vector's float scale.
int64_t kvCacheBytesPerToken(const ModelConfig& config, KvCacheType type);

// The reference of the 8-bit format for one head vector: x[n] are values already rounded to
// FP16; writes q[n] and returns the scale (0 for an all-zero vector).
float quantizeKvHead(const float* x, int n, int8_t* q);

} // namespace parley
