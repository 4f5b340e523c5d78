#include "app/generation_settings.h"

#include <algorithm>

namespace parley::app {

QJsonObject SamplingSettings::toJson() const {
    return QJsonObject{{"temperature", temperature}, {"top_k", topK},           {"top_p", topP},
                       {"min_p", minP},              {"repeat_penalty", repeatPenalty},
                       {"max_new_tokens", maxNewTokens}, {"seed", double(seed)}};
}

SamplingSettings SamplingSettings::fromJson(const QJsonObject& json) {
    SamplingSettings s;
    auto number = [&](const char* key, double fallback) {
        const QJsonValue v = json.value(QLatin1String(key));
        return v.isDouble() ? v.toDouble() : fallback;
    };
    s.temperature = number("temperature", s.temperature);
    s.topK = int(number("top_k", s.topK));
    s.topP = number("top_p", s.topP);
    s.minP = number("min_p", s.minP);
    s.repeatPenalty = number("repeat_penalty", s.repeatPenalty);
    s.maxNewTokens = int(number("max_new_tokens", s.maxNewTokens));
    s.seed = qint64(number("seed", double(s.seed)));
    return s.clamped();
}

SamplingSettings SamplingSettings::clamped() const {
    SamplingSettings s = *this;
    s.temperature = std::clamp(s.temperature, 0.0, 5.0);
    s.topK = std::clamp(s.topK, 0, 100000);
    s.topP = std::clamp(s.topP, 0.0, 1.0);
    s.minP = std::clamp(s.minP, 0.0, 1.0);
    s.repeatPenalty = std::clamp(s.repeatPenalty, 0.5, 5.0);
    s.maxNewTokens = std::clamp(s.maxNewTokens, 1, 1 << 20);
    if (s.seed < -1) s.seed = -1;
    return s;
}

} // namespace parley::app
