#pragma once
// The sampling settings a conversation remembers (DESIGN.md §4), as the app stores them: JSON in
// the database, keys in QSettings. Converted to the engine's SamplingParams on the worker thread.
#include <QJsonObject>
#include <QString>

namespace parley::app {

struct SamplingSettings {
    double temperature = 0.7;   // 0: greedy
    int topK = 40;              // 0: off
    double topP = 0.95;         // 1: off
    double minP = 0.05;         // 0: off
    double repeatPenalty = 1.1; // 1: off
    int maxNewTokens = 512;
    qint64 seed = -1;           // -1: a fresh random seed for every reply

    QJsonObject toJson() const;
    // Missing or mistyped keys keep their defaults; values are clamped to their valid ranges.
    static SamplingSettings fromJson(const QJsonObject& json);
    SamplingSettings clamped() const;
    bool operator==(const SamplingSettings&) const = default;
};

// What one conversation remembers besides its messages.
struct ConversationSettings {
    QString modelPath;    // the model it was last used with
    QString systemPrompt; // empty: none (the model's template may insert its own default)
    SamplingSettings sampling;
    bool operator==(const ConversationSettings&) const = default;
};

} // namespace parley::app
