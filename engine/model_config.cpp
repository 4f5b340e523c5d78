#include "engine/model_config.h"

#include <cmath>

namespace parley {

std::vector<double> ropeInverseFrequencies(const ModelConfig& c) {
    const int half = c.headDim / 2;
    std::vector<double> inv(half);
    for (int i = 0; i < half; ++i) inv[i] = std::pow(static_cast<double>(c.ropeTheta), -2.0 * i / c.headDim);

    if (!c.ropeFreqFactors.empty()) {
        for (int i = 0; i < half; ++i) inv[i] /= c.ropeFreqFactors[i];
    } else if (c.ropeScaling == RopeScalingType::Linear) {
        // Position interpolation (Chen et al. 2023): positions divided by the factor.
        for (double& f : inv) f /= c.ropeFactor;
    } else if (c.ropeScaling == RopeScalingType::Llama3) {
        // Meta's apply_scaling (llama-models, Llama 3.1 reference model): wavelengths shorter
        // than original/highFreqFactor keep their frequency, longer than original/lowFreqFactor
        // are divided by factor, and the band between is interpolated.
        const double pi = 3.14159265358979323846;
        const double lowWavelen = c.ropeOriginalContext / c.ropeLowFreqFactor;
        const double highWavelen = c.ropeOriginalContext / c.ropeHighFreqFactor;
        for (double& f : inv) {
            double wavelen = 2 * pi / f;
            if (wavelen < highWavelen) continue;
            if (wavelen > lowWavelen) {
                f /= c.ropeFactor;
            } else {
                double smooth = (c.ropeOriginalContext / wavelen - c.ropeLowFreqFactor) /
                                (c.ropeHighFreqFactor - c.ropeLowFreqFactor);
                f = (1 - smooth) * f / c.ropeFactor + smooth * f;
            }
        }
    }
    return inv;
}

} // namespace parley
