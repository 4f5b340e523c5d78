#pragma once
// Where Parley keeps its files, as XDG says (DESIGN.md §4): data (models, database) under
// $XDG_DATA_HOME/Parley (~/.local/share/Parley), settings under $XDG_CONFIG_HOME/Parley.
// PARLEY_DATA_DIR, PARLEY_MODELS_DIR and PARLEY_CONFIG_DIR override them (tests, portable use).
#include <QString>

namespace parley::app {

QString dataDir();
QString modelsDir();
QString configDir();
QString databasePath();     // dataDir()/parley.db
QString settingsFilePath(); // configDir()/parley.conf

} // namespace parley::app
