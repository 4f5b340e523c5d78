// Token sampling in the order sampler.h gives: repetition penalty (Keskar et al. 2019, CTRL),
// then greedy at temperature 0, else temperature, top-k, top-p (nucleus, Holtzman et al. 2020),
// min-p (Nguyen et al. 2024), and one draw from a seeded 64-bit Mersenne Twister.
#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

namespace parley {

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

int32_t Sampler::sample(std::span<float> logits, std::span<const int32_t> history) {
    const int32_t vocab = static_cast<int32_t>(logits.size());
    if (vocab == 0) return -1;

    if (params_.repeatPenalty != 1.0f && params_.repeatLastN != 0 && !history.empty()) {
        size_t lookBack = params_.repeatLastN < 0 ? history.size() : std::min<size_t>(history.size(), params_.repeatLastN);
        std::unordered_set<int32_t> seen;
        for (size_t i = history.size() - lookBack; i < history.size(); ++i) {
            int32_t t = history[i];
            if (t < 0 || t >= vocab || !seen.insert(t).second) continue; // each token penalized once
            float& l = logits[t];
            l = l > 0 ? l / params_.repeatPenalty : l * params_.repeatPenalty;
        }
    }

    if (params_.temperature <= 0) {
        // Greedy: the first of the largest logits.
        int32_t best = 0;
        for (int32_t i = 1; i < vocab; ++i)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    candidates_.clear();
    candidates_.reserve(vocab);
    for (int32_t i = 0; i < vocab; ++i)
        if (!std::isnan(logits[i])) candidates_.emplace_back(logits[i] / params_.temperature, i);
    if (candidates_.empty()) return 0;
    // Largest first; ties by the smaller id so the order does not depend on the sort.
    auto larger = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    };
    size_t keep = candidates_.size();
    if (params_.topK > 0 && static_cast<size_t>(params_.topK) < keep) {
        keep = params_.topK;
        std::partial_sort(candidates_.begin(), candidates_.begin() + keep, candidates_.end(), larger);
        candidates_.resize(keep);
    } else {
        std::sort(candidates_.begin(), candidates_.end(), larger);
    }

    // Softmax over what is left (the largest logit first, so exp never overflows).
    const float maxLogit = candidates_[0].first;
    std::vector<double> probs(keep);
    double total = 0;
    for (size_t i = 0; i < keep; ++i) total += probs[i] = std::exp(static_cast<double>(candidates_[i].first - maxLogit));
    for (double& p : probs) p /= total;

    // Top-p: the smallest prefix whose probability reaches topP.
    if (params_.topP < 1.0f) {
        double cumulative = 0;
        size_t i = 0;
        while (i < keep) {
            cumulative += probs[i++];
            if (cumulative >= params_.topP) break;
        }
        keep = std::max<size_t>(i, 1);
    }
    // Min-p: tokens at least minP times as likely as the most likely one.
    if (params_.minP > 0.0f) {
        const double threshold = params_.minP * probs[0];
        size_t i = 1;
        while (i < keep && probs[i] >= threshold) ++i;
        keep = i;
    }

    double kept = 0;
    for (size_t i = 0; i < keep; ++i) kept += probs[i];
    // A uniform draw in [0, 1) from the top 53 bits: the same numbers on every standard library.
    const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * kept;
    double cumulative = 0;
    for (size_t i = 0; i < keep; ++i) {
        cumulative += probs[i];
        if (u < cumulative) return candidates_[i].second;
    }
    return candidates_[keep - 1].second;
}

} // namespace parley
