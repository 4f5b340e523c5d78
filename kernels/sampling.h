#pragma once
// Picks the next token on the GPU so that only its id crosses to the host: repetition penalty
// (CTRL, Keskar et al. 2019), then temperature, top-k, top-p and min-p, then an inverse-CDF draw
// with a uniform number from the host's seeded generator. Temperature <= 0 or top-k 1 is greedy
// (the lowest index among equal maxima). One block; the thresholds of top-k and top-p are found
// by bisection over the logit values (each step one block-wide count or sum), so nothing is sorted.
#include "kernels/cuda_common.cuh"

namespace parley::cuda {

constexpr int kMaxSampleHistory = 256;

struct SampleParamsDevice {
    float temperature = 0.f;
    int topK = 0;
    float topP = 1.f;
    float minP = 0.f;
    float repeatPenalty = 1.f;
    float uniform = 0.f;
    int historyCount = 0;                   // distinct recent tokens to penalise
    int32_t history[kMaxSampleHistory] = {};
};

// logits: device [vocab], changed in place by the repetition penalty; params: device.
void launchSample(const LaunchContext& ctx, float* logits, int vocab, const SampleParamsDevice* params, int32_t* token);

} // namespace parley::cuda
