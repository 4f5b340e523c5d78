#include "app/backend_choice.h"

#include "engine/backend.h"
#include "engine/error.h"

namespace parley::app {

BackendChoice chooseBackend(const ModelSettings& settings) {
    BackendChoice choice;
    const bool wantsGpu = settings.backend.startsWith("gpu");
#if defined(PARLEY_HAVE_CUDA)
    // The CUDA backend's factory is declared by kernels/ (issue 3); wired here once it lands.
#endif
    if (wantsGpu)
        throw parley::Error(("the backend '" + settings.backend + "' is not available: this Parley was built without CUDA")
                                .toStdString());
    choice.backend = parley::makeCpuBackend(settings.cpuThreads);
    choice.reason = settings.backend == "cpu" ? "CPU chosen in Settings" : "no GPU backend in this build";
    return choice;
}

} // namespace parley::app
