// Error reporting shared by the CUDA backend. See cuda_common.cuh.
#include "kernels/cuda_common.cuh"

#include <cstdlib>

namespace parley::cuda {

int sharedCarveoutPercent() {
    static const int value = [] {
        const char* s = std::getenv("PARLEY_CUDA_CARVEOUT");
        return s && *s ? std::atoi(s) : -1;
    }();
    return value;
}

int currentMultiprocessors() {
    int device = 0, sms = 0;
    PARLEY_CUDA_CHECK(cudaGetDevice(&device));
    PARLEY_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
}

void throwCudaError(cudaError_t e, const char* what) {
    std::string msg = std::string("CUDA: ") + what + " failed: " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError(); // an allocation failure is not sticky: clear it so the caller can go on
        size_t freeBytes = 0, totalBytes = 0;
        cudaMemGetInfo(&freeBytes, &totalBytes);
        msg = "out of GPU memory (" + std::to_string(freeBytes >> 20) + " MiB free of " +
              std::to_string(totalBytes >> 20) + " MiB): " + msg;
    }
    throw Error(msg);
}

} // namespace parley::cuda
