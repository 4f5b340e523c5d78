#pragma once
// Device side of PARLEY_CUDA_TRACE (decode_trace.h): a traced kernel's thread 0 of each block
// writes the GPU's global nanosecond timer when the block starts, when it is past the wait for
// the kernel before it (programmatic dependent launch), and when it ends. Compiled in only when
// the build asks for it (cmake -DPARLEY_CUDA_TRACE=ON), so that the kernels of a normal build
// carry no trace code at all; then a null slot array (tracing off at run time) writes nothing.
#include <cstdint>

namespace parley::cuda {

__device__ __forceinline__ uint64_t globalTimerNs() {
    uint64_t t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

enum TraceMark { kTraceStart = 0, kTracePastWait = 1, kTraceEnd = 2 };

// slots: [blocks][3] for this launch.
__device__ __forceinline__ void traceMark(uint64_t* slots, TraceMark m) {
#ifdef PARLEY_KERNEL_TRACE
    if (slots && threadIdx.x == 0) {
        const unsigned block = blockIdx.x + gridDim.x * blockIdx.y;
        slots[block * 3 + m] = globalTimerNs();
    }
#else
    (void)slots;
    (void)m;
#endif
}

} // namespace parley::cuda
