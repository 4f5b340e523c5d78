#pragma once
// Shared helpers of the CUDA backend: error checks that become parley::Error, warp reductions,
// programmatic dependent launch (PDL, sm_90+) and a launcher that applies it.
#include "engine/error.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

namespace parley::cuda {

// Throws a one-line Error naming the CUDA call and the error. Out-of-memory gets its own words
// so that the caller can act on it (choose a lower precision or a shorter context).
[[noreturn]] void throwCudaError(cudaError_t e, const char* what);

#define PARLEY_CUDA_CHECK(call)                                                 \
    do {                                                                        \
        cudaError_t parley_cuda_e_ = (call);                                    \
        if (parley_cuda_e_ != cudaSuccess) ::parley::cuda::throwCudaError(parley_cuda_e_, #call); \
    } while (0)

// After a kernel launch: launch-configuration errors show up here.
#define PARLEY_CUDA_LAUNCHED(what)                                              \
    do {                                                                        \
        cudaError_t parley_cuda_e_ = cudaGetLastError();                        \
        if (parley_cuda_e_ != cudaSuccess) ::parley::cuda::throwCudaError(parley_cuda_e_, what); \
    } while (0)

__device__ __forceinline__ float warpSum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warpMax(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Block-wide sum for blockDim.x a multiple of 32 (<= 1024); every thread gets the result.
// scratch: 32 floats of shared memory.
__device__ __forceinline__ float blockSum(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warpSum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < warps ? scratch[lane] : 0.f;
    return warpSum(t);
}

__device__ __forceinline__ float blockMax(float v, float* scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warpMax(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < warps ? scratch[lane] : -INFINITY;
    return warpMax(t);
}

// Programmatic dependent launch (CUDA programming guide, "Programmatic Dependent Launch and
// Synchronization"): a kernel launched with the PDL attribute may start while the kernel before
// it drains; it must wait before touching anything that kernel writes. Work that depends only
// on weights (L2 prefetch) goes before the wait. Without the attribute both are no-ops.
__device__ __forceinline__ void pdlWait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void pdlLaunchDependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// How kernels are launched: on which stream, and whether with the PDL attribute.
struct LaunchContext {
    cudaStream_t stream = nullptr;
    bool pdl = false;
};

// PARLEY_CUDA_CARVEOUT=N (percent of L1 given to shared memory) applies one carveout to every
// kernel, for measuring whether carveout changes between kernels cost time. -1: unset.
int sharedCarveoutPercent();

template <typename... KernelArgs, typename... Args>
void launchKernel(const LaunchContext& ctx, void (*kernel)(KernelArgs...), dim3 grid, dim3 block,
                  size_t sharedBytes, const char* what, Args&&... args) {
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.dynamicSmemBytes = sharedBytes;
    cfg.stream = ctx.stream;
    cudaLaunchAttribute attr[1];
    if (ctx.pdl) {
        attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[0].val.programmaticStreamSerializationAllowed = 1;
        cfg.attrs = attr;
        cfg.numAttrs = 1;
    }
    if (const int carveout = sharedCarveoutPercent(); carveout >= 0)
        cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, carveout);
    cudaError_t e = cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
    if (e != cudaSuccess) throwCudaError(e, what);
}

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// The current device's multiprocessors (launches size their grids by it).
int currentMultiprocessors();

} // namespace parley::cuda
