#include "app/settings.h"

#include <QSettings>

namespace parley::app {

Settings::Settings(const QString& filePath) : settings_(std::make_unique<QSettings>(filePath, QSettings::IniFormat)) {}
Settings::~Settings() { settings_->sync(); }

QString Settings::systemPrompt() const { return settings_->value("chat/systemPrompt").toString(); }
void Settings::setSystemPrompt(const QString& prompt) { settings_->setValue("chat/systemPrompt", prompt); }

SamplingSettings Settings::sampling() const {
    SamplingSettings d;
    SamplingSettings s;
    s.temperature = settings_->value("sampling/temperature", d.temperature).toDouble();
    s.topK = settings_->value("sampling/topK", d.topK).toInt();
    s.topP = settings_->value("sampling/topP", d.topP).toDouble();
    s.minP = settings_->value("sampling/minP", d.minP).toDouble();
    s.repeatPenalty = settings_->value("sampling/repeatPenalty", d.repeatPenalty).toDouble();
    s.maxNewTokens = settings_->value("sampling/maxNewTokens", d.maxNewTokens).toInt();
    s.seed = settings_->value("sampling/seed", d.seed).toLongLong();
    return s.clamped();
}

void Settings::setSampling(const SamplingSettings& in) {
    const SamplingSettings s = in.clamped();
    settings_->setValue("sampling/temperature", s.temperature);
    settings_->setValue("sampling/topK", s.topK);
    settings_->setValue("sampling/topP", s.topP);
    settings_->setValue("sampling/minP", s.minP);
    settings_->setValue("sampling/repeatPenalty", s.repeatPenalty);
    settings_->setValue("sampling/maxNewTokens", s.maxNewTokens);
    settings_->setValue("sampling/seed", s.seed);
}

ModelSettings Settings::model() const {
    ModelSettings d;
    ModelSettings m;
    m.precision = settings_->value("model/precision", d.precision).toString();
    if (!QStringList{"auto", "fp16", "int8", "int4"}.contains(m.precision)) m.precision = d.precision;
    m.backend = settings_->value("model/backend", d.backend).toString();
    if (m.backend != "auto" && m.backend != "cpu" && !m.backend.startsWith("gpu")) m.backend = d.backend;
    m.contextLength = qBound(128, settings_->value("model/contextLength", d.contextLength).toInt(), 1 << 20);
    m.cpuThreads = qBound(0, settings_->value("model/cpuThreads", d.cpuThreads).toInt(), 1024);
    m.kvCache = settings_->value("model/kvCache", d.kvCache).toString();
    if (m.kvCache != "auto" && m.kvCache != "fp16" && m.kvCache != "int8") m.kvCache = d.kvCache;
    return m;
}

void Settings::setModel(const ModelSettings& m) {
    settings_->setValue("model/precision", m.precision);
    settings_->setValue("model/backend", m.backend);
    settings_->setValue("model/contextLength", m.contextLength);
    settings_->setValue("model/cpuThreads", m.cpuThreads);
    settings_->setValue("model/kvCache", m.kvCache);
}

QString Settings::lastModelPath() const { return settings_->value("model/lastPath").toString(); }
void Settings::setLastModelPath(const QString& path) { settings_->setValue("model/lastPath", path); }
QByteArray Settings::windowGeometry() const { return settings_->value("window/geometry").toByteArray(); }
void Settings::setWindowGeometry(const QByteArray& g) { settings_->setValue("window/geometry", g); }
QByteArray Settings::splitterState() const { return settings_->value("window/splitter").toByteArray(); }
void Settings::setSplitterState(const QByteArray& s) { settings_->setValue("window/splitter", s); }

ConversationSettings Settings::newConversationDefaults() const {
    ConversationSettings c;
    c.systemPrompt = systemPrompt();
    c.sampling = sampling();
    return c;
}

void Settings::sync() { settings_->sync(); }
QString Settings::filePath() const { return settings_->fileName(); }

} // namespace parley::app
