#pragma once
// For the GPU tests: finds libparley_cuda.so through the backend registry and a GPU through the
// probe; otherwise says why, so the test can QSKIP with that message.
#include "engine/backend_registry.h"

#include <dlfcn.h>

#include <string>

namespace parley::test {

// Empty when the CUDA backend can run here; else the reason it cannot.
inline std::string cudaUnavailableReason() {
    std::string why;
    if (!cudaLibraryAvailable(&why)) return "CUDA backend library not loadable: " + why;
    if (probeGpus(&why).empty()) return "no usable GPU: " + why;
    return {};
}

// A symbol of the loaded CUDA library (the kernel-test entry points of kernels/cuda_api.h).
template <typename Fn> Fn cudaSymbol(const char* name) {
    void* h = dlopen(cudaLibraryPath().c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
    return h ? reinterpret_cast<Fn>(dlsym(h, name)) : nullptr;
}

} // namespace parley::test
