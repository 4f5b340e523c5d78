#pragma once
// Shared-memory barriers (mbarrier) and the one-dimensional bulk copy (TMA, cp.async.bulk) that
// completes one, as thin inline-PTX wrappers (PTX ISA 8.x, "mbarrier" and "cp.async.bulk"). For
// code compiled for sm_90 and later; the sm_90a prefill GEMM (sm90a_ptx.cuh) and the decode
// GEMV use them.
#include <cstdint>

namespace parley::cuda {

__device__ __forceinline__ uint32_t sharedAddress(const void* p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void barrierInit(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void barrierArrive(uint32_t bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void barrierExpectBytes(uint32_t bar, int bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
// Waits for the completion of the barrier's phase of the given parity.
__device__ __forceinline__ void barrierWait(uint32_t bar, int parity) {
    uint32_t done = 0;
    do {
        asm volatile("{\n"
                     ".reg .pred p;\n"
                     "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n"
                     "}\n"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!done);
}
// Makes the initialisation of the block's barriers visible to the async proxy (TMA); the block
// must still synchronise before other threads use them.
__device__ __forceinline__ void fenceBarrierInit() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
// `bytes` (a multiple of 16) from global memory at `src` (16-byte aligned) into shared memory at
// `dst` (16-byte aligned), completing `bar` with that many bytes.
__device__ __forceinline__ void bulkCopyToShared(uint32_t dst, const void* src, int bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];"
                 ::"r"(dst), "l"(src), "r"(bytes), "r"(bar) : "memory");
}

} // namespace parley::cuda
