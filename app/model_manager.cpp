#include "app/model_manager.h"

#include <QDir>
#include <QFileInfo>

namespace parley::app {

ModelManager::ModelManager(QString modelsDir) : modelsDir_(std::move(modelsDir)) {}

QString ModelManager::defaultModelFileName() { return "SmolLM2-135M-Instruct.Q4_1.gguf"; }

QStringList ModelManager::installedModels() const {
    QStringList out;
    QDir dir(modelsDir_);
    for (const QFileInfo& f : dir.entryInfoList(QDir::Files | QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name))
        if (looksLikeModel(f.absoluteFilePath())) out << f.absoluteFilePath();
    return out;
}

QString ModelManager::startupModel(const QString& preferred) const {
    if (!preferred.isEmpty() && looksLikeModel(preferred)) return QFileInfo(preferred).absoluteFilePath();
    const QString fallback = modelsDir_ + "/" + defaultModelFileName();
    if (QFileInfo(fallback).isFile()) return fallback;
    const QStringList all = installedModels();
    return all.isEmpty() ? QString() : all.first();
}

bool ModelManager::looksLikeModel(const QString& path) {
    const QFileInfo f(path);
    if (f.isFile()) return f.suffix().compare("gguf", Qt::CaseInsensitive) == 0;
    if (f.isDir()) return QFileInfo(f.absoluteFilePath() + "/config.json").isFile();
    return false;
}

QString ModelManager::displayName(const QString& path) {
    const QFileInfo f(path);
    return f.isDir() ? f.fileName() : f.completeBaseName();
}

} // namespace parley::app
