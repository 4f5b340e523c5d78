#pragma once
// The user's settings (issue 4: settings dialog), kept with QSettings in an INI file under
// $XDG_CONFIG_HOME/Parley. New conversations start from these defaults; each conversation then
// keeps its own copy of the system prompt and sampling settings (ConversationStore).
#include "app/generation_settings.h"

#include <QByteArray>
#include <QString>

#include <memory>

class QSettings;

namespace parley::app {

struct ModelSettings {
    QString precision = "auto"; // "auto", "fp16", "int8", "int4"
    QString backend = "auto";   // "auto", "cpu", "gpu0", "gpu1", ...
    int contextLength = 2048;   // tokens; capped by the model's trained context
    int cpuThreads = 0;         // 0: one per core
    QString kvCache = "auto";   // K/V cache: "auto", "fp16", "int8" (engine/kv_cache_format.h)
    bool operator==(const ModelSettings&) const = default;
};

class Settings {
public:
    explicit Settings(const QString& filePath); // settingsFilePath() in the app, a temporary file in tests
    ~Settings();

    QString systemPrompt() const;
    void setSystemPrompt(const QString& prompt);
    SamplingSettings sampling() const;
    void setSampling(const SamplingSettings& sampling);
    ModelSettings model() const;
    void setModel(const ModelSettings& model);
    QString lastModelPath() const;
    void setLastModelPath(const QString& path);
    QByteArray windowGeometry() const;
    void setWindowGeometry(const QByteArray& geometry);
    QByteArray splitterState() const;
    void setSplitterState(const QByteArray& state);

    ConversationSettings newConversationDefaults() const; // system prompt + sampling, no model
    void sync();
    QString filePath() const;

private:
    std::unique_ptr<QSettings> settings_;
};

} // namespace parley::app
