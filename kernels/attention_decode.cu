// Split-sequence decode attention. See attention_decode.h.
#include "kernels/attention_decode.h"

#include <algorithm>

namespace parley::cuda {

namespace {

constexpr int kAttnThreads = 128;

// Asynchronous copy of B bytes (4, 8 or 16) from global to shared memory (cp.async, sm_80+),
// bypassing registers, so that a block can start all of its K and V rows at once.
template <int B>
__device__ __forceinline__ void copyAsync(void* shared, const void* global) {
    const unsigned s = unsigned(__cvta_generic_to_shared(shared));
    if constexpr (B == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(global) : "memory");
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(s), "l"(global), "n"(B) : "memory");
}
__device__ __forceinline__ void copyAsyncCommit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
__device__ __forceinline__ void copyAsyncWaitAll() { asm volatile("cp.async.wait_all;" ::: "memory"); }

// Halves of a K/V row in shared memory: the head's hd halves plus 8 of padding, so that the
// rows that eight consecutive threads read 16 bytes of start in different banks.
__host__ __device__ constexpr int attnRowHalves(int hd) { return hd + 8; }

// W: halves per cp.async (8 where the head size allows: 16 bytes). HD: the head size when
// known at compile time (64, 128), 0 for any other.
//
// The block copies its chunk's K and V rows into shared memory with cp.async. Rows before the
// new token were written by earlier steps, so their copies start before the kernel waits for
// the one before it (programmatic dependent launch: that kernel writes q and the new token's K
// and V, and those are copied after the wait). The new token's position comes from the host's
// copy before the graph starts, so it may be read before the wait too. Then, with no per-head
// register arrays: scores a row per warp (lanes across the head's elements), the softmax of a
// head per warp, and the weighted V an output element per thread over all rows.
template <int W, int HD>
__global__ void __launch_bounds__(kAttnThreads) attentionDecodeKernel(AttentionDecodeArgs a) {
    extern __shared__ __align__(16) float attnShared[];
    __shared__ bool isLast;
    const int kvh = blockIdx.x, split = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nWarps = blockDim.x >> 5;
    const int G = a.nHead / a.nHeadKv, hd = HD > 0 ? HD : a.headDim, kvDim = a.nHeadKv * hd;
    const int pos = *a.pos, length = pos + 1;
    const int active = (length + a.chunk - 1) / a.chunk;
    if (split >= active) return;
    const int p0 = split * a.chunk, len = min(a.chunk, length - p0);
    const int rowHalves = attnRowHalves(hd), segs = hd / W;

    float* qs = attnShared;                 // [G][hd], scaled by 1/sqrt(hd)
    float* scores = qs + G * hd;            // [G][chunk]
    __half* ks = reinterpret_cast<__half*>(scores + G * a.chunk); // [chunk][rowHalves]
    __half* vs = ks + a.chunk * rowHalves;                        // [chunk][rowHalves]

    const __half* kBase = a.k + int64_t(p0) * kvDim + kvh * hd;
    const __half* vBase = a.v + int64_t(p0) * kvDim + kvh * hd;
    auto copyRows = [&](int rowBegin, int rowEnd) {
        for (int i = rowBegin * segs + threadIdx.x; i < rowEnd * segs; i += blockDim.x) {
            const int j = i / segs, c = (i % segs) * W;
            copyAsync<2 * W>(ks + j * rowHalves + c, kBase + int64_t(j) * kvDim + c);
            copyAsync<2 * W>(vs + j * rowHalves + c, vBase + int64_t(j) * kvDim + c);
        }
    };
    const bool newRowHere = p0 + len - 1 == pos;
    copyRows(0, newRowHere ? len - 1 : len);
    copyAsyncCommit();

    pdlWait();
    pdlLaunchDependents();
    if (newRowHere) copyRows(len - 1, len);
    copyAsyncCommit();
    const float scale = rsqrtf(float(hd));
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) qs[i] = a.q[kvh * G * hd + i] * scale;
    copyAsyncWaitAll();
    __syncthreads();

    // Scores: four rows per warp at a time (their sums reduce together), the head's elements
    // across the lanes.
    for (int j0 = 4 * warp; j0 < len; j0 += 4 * nWarps) {
        const __half* kRow = ks + j0 * rowHalves;
        const int rows = min(4, len - j0);
        for (int g = 0; g < G; ++g) {
            const float* qv = qs + g * hd;
            float t[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
            for (int d = lane; d < hd; d += 32) {
                const float qd = qv[d];
#pragma unroll
                for (int r = 0; r < 4; ++r)
                    if (r < rows) t[r] = fmaf(__half2float(kRow[r * rowHalves + d]), qd, t[r]);
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1)
#pragma unroll
                for (int r = 0; r < 4; ++r) t[r] += __shfl_xor_sync(0xffffffffu, t[r], o);
#pragma unroll
            for (int r = 0; r < 4; ++r)
                if (lane == r && r < rows) scores[g * a.chunk + j0 + r] = t[r];
        }
    }
    __syncthreads();

    // Softmax numerators over the chunk, a head per warp; its max and sum go to the combine.
    for (int g = warp; g < G; g += nWarps) {
        float* sg = scores + g * a.chunk;
        float m = -INFINITY;
        for (int j = lane; j < len; j += 32) m = fmaxf(m, sg[j]);
        m = warpMax(m);
        float l = 0.f;
        for (int j = lane; j < len; j += 32) {
            const float e = __expf(sg[j] - m);
            sg[j] = e;
            l += e;
        }
        l = warpSum(l);
        if (lane == 0) {
            const int h = kvh * G + g;
            a.partMl[(int64_t(h) * a.nSplit + split) * 2] = m;
            a.partMl[(int64_t(h) * a.nSplit + split) * 2 + 1] = l;
        }
    }
    __syncthreads();

    // Weighted V: an output element (head g, element d) per thread over the chunk's rows, four
    // rows' loads at a time; the partial goes straight to the workspace.
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        const int g = i / hd, d = i % hd, h = kvh * G + g;
        const float* e = scores + g * a.chunk;
        const __half* vCol = vs + d;
        float acc = 0.f;
        int j = 0;
        for (; j + 4 <= len; j += 4) {
            const float v0 = __half2float(vCol[j * rowHalves]), v1 = __half2float(vCol[(j + 1) * rowHalves]);
            const float v2 = __half2float(vCol[(j + 2) * rowHalves]), v3 = __half2float(vCol[(j + 3) * rowHalves]);
            acc = fmaf(e[j], v0, acc);
            acc = fmaf(e[j + 1], v1, acc);
            acc = fmaf(e[j + 2], v2, acc);
            acc = fmaf(e[j + 3], v3, acc);
        }
        for (; j < len; ++j) acc = fmaf(e[j], __half2float(vCol[j * rowHalves]), acc);
        a.partO[(int64_t(h) * a.nSplit + split) * hd + d] = acc;
    }

    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) isLast = atomicAdd(&a.counters[kvh], 1u) == unsigned(active - 1);
    __syncthreads();
    if (!isLast) return;
    __threadfence();
    // The combine (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"):
    // out = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s with M the largest m_s. One round
    // trip to L2: every (m, l) into shared memory, and at the same time each thread's first
    // kCombineHeld partials of its first output element into registers; then each thread finds
    // M and the weights itself from shared memory (no block-wide reductions).
    constexpr int kCombineHeld = 32;
    float2* ml = reinterpret_cast<float2*>(attnShared); // [G][nSplit] (q and scores are no longer needed)
    const int i0 = threadIdx.x;
    float held[kCombineHeld];
    if (i0 < G * hd) {
        const float* part = a.partO + int64_t(kvh * G + i0 / hd) * a.nSplit * hd + i0 % hd;
#pragma unroll
        for (int sp = 0; sp < kCombineHeld; ++sp) held[sp] = sp < active ? __ldcg(part + int64_t(sp) * hd) : 0.f;
    }
    for (int i = threadIdx.x; i < G * active; i += blockDim.x) {
        const int g = i / active, sp = i % active, h = kvh * G + g;
        ml[g * a.nSplit + sp] = __ldcg(reinterpret_cast<const float2*>(a.partMl) + int64_t(h) * a.nSplit + sp);
    }
    __syncthreads();
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        const int g = i / hd, d = i % hd, h = kvh * G + g;
        const float2* mlg = ml + g * a.nSplit;
        float m = -INFINITY;
        for (int sp = 0; sp < active; ++sp) m = fmaxf(m, mlg[sp].x);
        const float* part = a.partO + int64_t(h) * a.nSplit * hd + d;
        float num = 0.f, den = 0.f;
        int sp = 0;
        if (i == i0) {
#pragma unroll
            for (int j = 0; j < kCombineHeld; ++j)
                if (j < active) {
                    const float e = __expf(mlg[j].x - m);
                    num += e * held[j];
                    den += e * mlg[j].y;
                }
            sp = kCombineHeld;
        }
        for (; sp < active; ++sp) {
            const float e = __expf(mlg[sp].x - m);
            num += e * __ldcg(part + int64_t(sp) * hd);
            den += e * mlg[sp].y;
        }
        a.out[h * hd + d] = num / den;
    }
    if (threadIdx.x == 0) a.counters[kvh] = 0;
}

} // namespace

void attentionDecodeSplit(int length, int nHeadKv, int headDim, int multiprocessors, int& chunk, int& nSplit) {
    const int wantSplits = std::max(1, (8 * multiprocessors + nHeadKv - 1) / nHeadKv);
    // A block holds its chunk's K and V rows in shared memory: at most 128 rows of a head of
    // 128 (68 KiB), fewer for wider heads.
    const int maxChunk = std::max(32, 128 * 128 / std::max(headDim, 128) / 32 * 32);
    chunk = (length + wantSplits - 1) / wantSplits;
    chunk = std::clamp((chunk + 31) / 32 * 32, 32, maxChunk);
    nSplit = (length + chunk - 1) / chunk;
}

size_t attentionDecodeWorkspaceFloats(int nHead, int nSplit, int headDim) {
    return size_t(nHead) * nSplit * (headDim + 2);
}

void launchAttentionDecode(const LaunchContext& ctx, const AttentionDecodeArgs& a) {
    const int G = a.nHead / a.nHeadKv;
    if (G > kAttnMaxGroup || a.nHead % a.nHeadKv || a.headDim % 2 || a.headDim > 256)
        throw Error("decode attention: unsupported head layout (" + std::to_string(a.nHead) + " heads, " +
                    std::to_string(a.nHeadKv) + " KV heads, head size " + std::to_string(a.headDim) + ")");
    // q and scores, then K and V rows; the combine reuses the start for [G][nSplit] (m, l) pairs.
    const size_t shared = std::max(size_t(G * a.headDim + G * a.chunk) * sizeof(float) +
                                       size_t(2 * a.chunk) * attnRowHalves(a.headDim) * sizeof(__half),
                                   size_t(G) * a.nSplit * sizeof(float2));
    auto run = [&](auto kernel) {
        if (shared > 48 * 1024)
            PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
        launchKernel(ctx, kernel, dim3(a.nHeadKv, a.nSplit), dim3(kAttnThreads), shared, "decode attention launch", a);
    };
    // cp.async copies 4, 8 or 16 bytes: the narrowest width a head of an odd number of pairs
    // allows is 2 halves.
    if (a.headDim == 128) run(attentionDecodeKernel<8, 128>);
    else if (a.headDim == 64) run(attentionDecodeKernel<8, 64>);
    else if (a.headDim % 8 == 0) run(attentionDecodeKernel<8, 0>);
    else if (a.headDim % 4 == 0) run(attentionDecodeKernel<4, 0>);
    else run(attentionDecodeKernel<2, 0>);
}

} // namespace parley::cuda
