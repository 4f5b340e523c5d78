#pragma once
// Model files on this machine (DESIGN.md §4, the basics): the models folder, the default model
// the set-up script installs, and what a dropped or chosen path may be. The engine validates a
// file when the worker loads it; this only finds candidates.
#include <QString>
#include <QStringList>

namespace parley::app {

class ModelManager {
public:
    explicit ModelManager(QString modelsDir);

    static QString defaultModelFileName(); // SmolLM2-135M-Instruct.Q4_1.gguf
    const QString& modelsDir() const { return modelsDir_; }
    // The installed models: *.gguf files and Hugging Face folders (config.json) in the models folder.
    QStringList installedModels() const;
    // The model to load at start: `preferred` when it still exists, else the default model,
    // else the first installed one; empty when there is none.
    QString startupModel(const QString& preferred = {}) const;
    // Whether a path looks like something Model::open reads (a .gguf file or a folder with a
    // config.json); used to accept drops before the engine looks inside.
    static bool looksLikeModel(const QString& path);
    // A short name for a model path ("SmolLM2-135M-Instruct.Q4_1").
    static QString displayName(const QString& path);

private:
    QString modelsDir_;
};

} // namespace parley::app
