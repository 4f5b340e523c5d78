#include "app/paths.h"

#include <QDir>
#include <QStandardPaths>

namespace parley::app {

namespace {
QString fromEnvironment(const char* variable) {
    return QDir::cleanPath(qEnvironmentVariable(variable));
}
} // namespace

QString dataDir() {
    if (qEnvironmentVariableIsSet("PARLEY_DATA_DIR")) return fromEnvironment("PARLEY_DATA_DIR");
    return QStandardPaths::writableLocation(QStandardPaths::GenericDataLocation) + "/Parley";
}

QString modelsDir() {
    if (qEnvironmentVariableIsSet("PARLEY_MODELS_DIR")) return fromEnvironment("PARLEY_MODELS_DIR");
    return dataDir() + "/models";
}

QString configDir() {
    if (qEnvironmentVariableIsSet("PARLEY_CONFIG_DIR")) return fromEnvironment("PARLEY_CONFIG_DIR");
    return QStandardPaths::writableLocation(QStandardPaths::GenericConfigLocation) + "/Parley";
}

QString databasePath() { return dataDir() + "/parley.db"; }
QString settingsFilePath() { return configDir() + "/parley.conf"; }

} // namespace parley::app
