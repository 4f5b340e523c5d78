#pragma once
// Which backend runs a model, and why (issue 4: the status bar shows the device and the reason).
// Runs on the worker thread. The CUDA backend is used where the build has one and the settings
// allow it; otherwise the CPU backend.
#include "app/settings.h"

#include <QString>

#include <memory>

namespace parley {
class Backend;
struct ModelConfig;
struct ModelWeights;
} // namespace parley

namespace parley::app {

struct BackendChoice {
    std::unique_ptr<parley::Backend> backend;
    QString reason;
};

// Creates the backend (not yet loaded). Throws parley::Error where the settings ask for a device
// this build or machine does not have.
BackendChoice chooseBackend(const ModelSettings& settings);

} // namespace parley::app
