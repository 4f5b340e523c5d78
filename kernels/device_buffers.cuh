#pragma once
// Host-side helpers of the C entry points that run a kernel on their own (the single-kernel tests
// of kernel_tests.cu, the GEMV bench of gemv_bench.cu): device allocations that are all freed
// when their owner goes, whatever throws, and the entry points' error convention (0, or 1 with
// the message copied out).
#include "kernels/cuda_common.cuh"

#include <cstring>
#include <functional>
#include <vector>

namespace parley::cuda {

class DeviceBuffers {
public:
    DeviceBuffers() = default;
    DeviceBuffers(const DeviceBuffers&) = delete;
    DeviceBuffers& operator=(const DeviceBuffers&) = delete;
    ~DeviceBuffers() {
        for (void* p : ptrs_) cudaFree(p);
    }
    // `poison`: all bits set (NaN in float and half), so that an output the kernel misses shows.
    template <typename T> T* alloc(size_t count, bool poison = false) {
        void* p = nullptr;
        PARLEY_CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(count * sizeof(T), 16)));
        ptrs_.push_back(p);
        if (poison) PARLEY_CUDA_CHECK(cudaMemset(p, 0xff, count * sizeof(T)));
        return static_cast<T*>(p);
    }
    template <typename T> T* upload(const T* host, size_t count) {
        T* d = alloc<T>(count);
        if (count) PARLEY_CUDA_CHECK(cudaMemcpy(d, host, count * sizeof(T), cudaMemcpyHostToDevice));
        return d;
    }
    __half* uploadAsHalf(const float* host, size_t count) {
        std::vector<__half> h(count);
        for (size_t i = 0; i < count; ++i) h[i] = __float2half_rn(host[i]);
        return upload(h.data(), count);
    }

private:
    std::vector<void*> ptrs_;
};

// Runs body and waits for the device; 0, or 1 with the error's message in err.
inline int reportErrors(char* err, int errLen, const std::function<void()>& body) {
    try {
        body();
        PARLEY_CUDA_CHECK(cudaDeviceSynchronize());
        return 0;
    } catch (const std::exception& ex) {
        if (err && errLen > 0) {
            std::strncpy(err, ex.what(), size_t(errLen - 1));
            err[errLen - 1] = 0;
        }
        return 1;
    }
}

} // namespace parley::cuda
