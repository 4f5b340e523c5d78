#pragma once
// Picks the next token from logits: repetition penalty, then temperature, top-k, top-p and min-p,
// then a draw from a seeded generator (same seed, same text). Temperature 0 is greedy.
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace parley {

struct SamplingParams {
    float temperature = 0.7f;   // 0: greedy
    int topK = 40;              // 0: off
    float topP = 0.95f;         // 1: off
    float minP = 0.05f;         // 0: off; keep tokens with p >= minP * p(max)
    float repeatPenalty = 1.1f; // 1: off; as in CTRL (Keskar et al. 2019): divide positive logits, multiply negative
    int repeatLastN = 64;       // how many recent tokens the penalty looks at
    uint64_t seed = 0;
};

class Sampler {
public:
    explicit Sampler(const SamplingParams& params);
    // logits is modified. history: the tokens so far (prompt and generated), newest last.
    int32_t sample(std::span<float> logits, std::span<const int32_t> history);

private:
    SamplingParams params_;
    std::mt19937_64 rng_;
    std::vector<std::pair<float, int32_t>> candidates_;
};

} // namespace parley
