#pragma once
// Which backend runs a model, at which precision, and why (issue 4: the status bar shows the
// device and the reason). Runs on the worker thread before the weights are read, because the
// precision decides how they are read. With the CUDA backend's loader and the precision planner
// in the engine (engine/backend_registry.h, engine/precision_planner.h; DESIGN.md §3): "auto" or
// "gpuN" probes the GPU, plans the highest precision that fits its free memory, and falls back to
// the CPU ("auto" only) with the reason. Without them, the CPU backend at the file's own precision.
#include "app/settings.h"
#include "engine/weights.h"

#include <QString>

#include <map>
#include <memory>
#include <optional>
#include <string>

namespace parley {
class Backend;
class Model;
}

namespace parley::app {

struct BackendChoice {
    std::unique_ptr<parley::Backend> backend;   // created, not yet loaded
    std::optional<parley::Precision> precision; // for ModelOptions; empty: the file's own
    QString reason;                             // "INT4 — needs 0.2 GB, 70.1 GB free; GPU 0 (NVIDIA H100)"
};

// Throws parley::Error where the settings ask for a device this build or machine does not have.
// `header`: the model opened with metadataOnly (its config and tensor types).
BackendChoice chooseBackend(const ModelSettings& settings, const parley::Model& header, int contextLength);

// The precision most of a file's matrices are stored in, from ModelInfo::tensorTypes
// ("Q4_1" -> INT4, "Q8_0"/"Q6_K" -> INT8, float types -> FP16). F32 tensors (norms) are not
// counted unless there is nothing else.
parley::Precision filePrecision(const std::map<std::string, int64_t>& tensorTypes);

} // namespace parley::app
