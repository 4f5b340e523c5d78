// VRAM probe (DESIGN.md §3: free memory per device, name, compute capability) and the copy
// bandwidth that parley-bench takes as the decode roofline's denominator.
#include "kernels/cuda_api.h"
#include "kernels/cuda_common.cuh"

#include <algorithm>
#include <cstring>
#include <vector>

namespace {

void writeError(char* err, int errLen, const std::string& msg) {
    if (!err || errLen <= 0) return;
    std::strncpy(err, msg.c_str(), size_t(errLen - 1));
    err[errLen - 1] = 0;
}

} // namespace

extern "C" int parley_cuda_abi_version(void) { return PARLEY_CUDA_ABI_VERSION; }

extern "C" int parley_cuda_probe(ParleyCudaDevice* devices, int maxDevices, int* count, char* err, int errLen) {
    try {
        int n = 0;
        cudaError_t e = cudaGetDeviceCount(&n);
        if (e != cudaSuccess) parley::cuda::throwCudaError(e, "cudaGetDeviceCount");
        if (n == 0) throw parley::Error("CUDA: no device found");
        int current = 0;
        cudaGetDevice(&current);
        *count = n;
        for (int i = 0; i < n && i < maxDevices; ++i) {
            cudaDeviceProp prop;
            PARLEY_CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
            PARLEY_CUDA_CHECK(cudaSetDevice(i));
            size_t freeBytes = 0, totalBytes = 0;
            PARLEY_CUDA_CHECK(cudaMemGetInfo(&freeBytes, &totalBytes));
            ParleyCudaDevice& d = devices[i];
            d.index = i;
            std::strncpy(d.name, prop.name, sizeof(d.name) - 1);
            d.name[sizeof(d.name) - 1] = 0;
            d.computeMajor = prop.major;
            d.computeMinor = prop.minor;
            d.freeBytes = freeBytes;
            d.totalBytes = totalBytes;
            d.multiprocessors = prop.multiProcessorCount;
        }
        cudaSetDevice(current);
        return 0;
    } catch (const std::exception& ex) {
        writeError(err, errLen, ex.what());
        return 1;
    }
}

extern "C" int parley_cuda_copy_bandwidth(int device, uint64_t bytes, int repeats, double* gbPerSecond, char* err,
                                          int errLen) {
    void *a = nullptr, *b = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    try {
        PARLEY_CUDA_CHECK(cudaSetDevice(device));
        PARLEY_CUDA_CHECK(cudaMalloc(&a, bytes));
        PARLEY_CUDA_CHECK(cudaMalloc(&b, bytes));
        PARLEY_CUDA_CHECK(cudaMemset(a, 0x5a, bytes)); // contents do not matter to a copy; never timed on fresh pages
        PARLEY_CUDA_CHECK(cudaMemset(b, 0xa5, bytes));
        PARLEY_CUDA_CHECK(cudaEventCreate(&start));
        PARLEY_CUDA_CHECK(cudaEventCreate(&stop));
        for (int i = 0; i < 3; ++i) PARLEY_CUDA_CHECK(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice));
        std::vector<float> ms;
        for (int i = 0; i < std::max(1, repeats); ++i) {
            PARLEY_CUDA_CHECK(cudaEventRecord(start));
            PARLEY_CUDA_CHECK(cudaMemcpyAsync(i % 2 ? a : b, i % 2 ? b : a, bytes, cudaMemcpyDeviceToDevice));
            PARLEY_CUDA_CHECK(cudaEventRecord(stop));
            PARLEY_CUDA_CHECK(cudaEventSynchronize(stop));
            float t = 0;
            PARLEY_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
            ms.push_back(t);
        }
        std::sort(ms.begin(), ms.end());
        *gbPerSecond = 2.0 * double(bytes) / (double(ms[ms.size() / 2]) * 1e-3) / 1e9;
        cudaEventDestroy(start);
        cudaEventDestroy(stop);
        cudaFree(a);
        cudaFree(b);
        return 0;
    } catch (const std::exception& ex) {
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (a) cudaFree(a);
        if (b) cudaFree(b);
        writeError(err, errLen, ex.what());
        return 1;
    }
}
