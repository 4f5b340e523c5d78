// Split-sequence decode attention. See attention_decode.h.
#include "kernels/attention_decode.h"
#include "kernels/decode_trace.cuh"

#include <algorithm>
#include <type_traits>

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

// After each block of a head has written its partial (max, sum and weighted V of its chunk):
// the last one to finish combines them. `shared` holds at least [G][nSplit] float2; `isLast` is
// a __shared__ flag of the block.
__device__ __forceinline__ void combinePartials(const AttentionDecodeArgs& a, int kvh, int G, int hd, int active,
                                                float* shared, bool& isLast) {
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) isLast = atomicAdd(&a.counters[kvh], 1u) == unsigned(active - 1);
    __syncthreads();
    if (!isLast) {
        traceMark(a.trace, kTraceEnd);
        return;
    }
    __threadfence();
    // The combine (Milakov & Gimelshein 2018, "Online normalizer calculation for softmax"):
    // out = sum_s exp(m_s - M) o_s / sum_s exp(m_s - M) l_s with M the largest m_s. One round
    // trip to L2: every (m, l) into shared memory, and at the same time each thread's first
    // kCombineHeld partials of its first output element into registers; then each thread finds
    // M and the weights itself from shared memory (no block-wide reductions).
    constexpr int kCombineHeld = 32;
    float2* ml = reinterpret_cast<float2*>(shared); // [G][nSplit]
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
    traceMark(a.trace, kTraceEnd);
}

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
    traceMark(a.trace, kTraceStart);
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
    traceMark(a.trace, kTracePastWait);
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

    combinePartials(a, kvh, G, hd, active, attnShared, isLast);
}

// Head sizes 64 and 128: K and V rows go straight from global memory into registers, a row per
// warp at a time across the lanes (HD / 32 elements a lane: one 8- or 4-byte load), so that a
// block needs no shared memory for them and every block of a long context is resident at once
// (the shared-memory kernel above needs the whole chunk in shared memory: at 4,096 positions
// its blocks ran in three waves). Warp w takes rows w, w + 4, w + 8, ... of the block's chunk,
// kRowsAStep of them a step, and keeps two steps in registers that take turns, as the GEMV does:
// while one is used the other's loads are in flight. The first two steps are loaded before the
// wait for the kernel before (programmatic dependent launch), all but the new token's row, which
// that kernel writes and which is loaded after. Each warp carries its own softmax online
// (Milakov & Gimelshein 2018); the block's four warps are merged in shared memory into the
// block's partial, and the partials of a head by combinePartials.
constexpr int kRowsAStep = 4;

// With the 8-bit cache (Q8) a lane's elements are HD / 32 bytes and each row has a K and a V
// scale (one load each, the same address across the warp); the new token's row is left out of
// the loop: after it, one warp quantizes the FP16 row the QKV GEMV wrote, stores it into the
// cache, and attends to it as the other rows (no other block reads that position).
template <int HD, bool Q8> struct AttnRowsVec;
template <> struct AttnRowsVec<128, false> { using T = uint2; };         // 4 halves a lane
template <> struct AttnRowsVec<64, false> { using T = unsigned; };       // 2 halves a lane
template <> struct AttnRowsVec<128, true> { using T = unsigned; };       // 4 int8 a lane
template <> struct AttnRowsVec<64, true> { using T = unsigned short; };  // 2 int8 a lane

// The 8-bit cache's new row, by one warp after its loop: quantize the FP16 K and V row the QKV
// GEMV wrote (each a head vector: the warp's largest magnitude sets its scale), store it at pos,
// and fold it into the warp's online softmax with the values as stored. (Before the loop, while
// the first two steps are in flight, was no faster at 512 positions and 1 % slower at 4,096 on an
// H100: it spills under the 64-register bound below.)
template <int HD, int GMAX>
__device__ __forceinline__ void attendNewRow8(const AttentionDecodeArgs& a, int kvh, int pos, int G,
                                              const float (&q)[GMAX][HD / 32], float (&m)[GMAX], float (&l)[GMAX],
                                              float (&acc)[GMAX][HD / 32]) {
    constexpr int EPL = HD / 32;
    using Vec8 = typename AttnRowsVec<HD, true>::T;
    const int lane = threadIdx.x & 31, kvDim = a.nHeadKv * HD;
    float kf[EPL], vf[EPL], kMax = 0.f, vMax = 0.f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
        kf[e] = __half2float(__ldcg(a.k + kvh * HD + lane * EPL + e));
        vf[e] = __half2float(__ldcg(a.v + kvh * HD + lane * EPL + e));
        kMax = fmaxf(kMax, fabsf(kf[e]));
        vMax = fmaxf(vMax, fabsf(vf[e]));
    }
    kMax = warpMax(kMax);
    vMax = warpMax(vMax);
    const float kScale = kvScaleFor(kMax), vScale = kvScaleFor(vMax);
    Vec8 kq, vq;
    int8_t* kb = reinterpret_cast<int8_t*>(&kq);
    int8_t* vb = reinterpret_cast<int8_t*>(&vq);
#pragma unroll
    for (int e = 0; e < EPL; ++e) {
        kb[e] = kvQuantize(kf[e], kMax);
        vb[e] = kvQuantize(vf[e], vMax);
        kf[e] = float(kb[e]) * kScale;
        vf[e] = float(vb[e]) * vScale;
    }
    *reinterpret_cast<Vec8*>(a.cache8.k + int64_t(pos) * kvDim + kvh * HD + lane * EPL) = kq;
    *reinterpret_cast<Vec8*>(a.cache8.v + int64_t(pos) * kvDim + kvh * HD + lane * EPL) = vq;
    if (lane == 0) {
        a.cache8.kScale[kvh * a.cache8.scaleStride + pos] = kScale;
        a.cache8.vScale[kvh * a.cache8.scaleStride + pos] = vScale;
    }
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        if (g >= G) break;
        float t = 0.f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) t = fmaf(kf[e], q[g][e], t);
        t = warpSum(t);
        const float mNew = fmaxf(m[g], t), shrink = __expf(m[g] - mNew), p = __expf(t - mNew);
        l[g] = l[g] * shrink + p;
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[g][e] = fmaf(p, vf[e], acc[g][e] * shrink);
        m[g] = mNew;
    }
}

// GMAX: the most query heads a KV head has that this instance serves (registers are sized by it).
// With one query head a KV head and heads of 128 (LLaMA-2 7B and 13B: the most blocks) eight
// blocks an SM must fit, 64 registers a thread: the 8-bit instance took 80 and ran its 1,056
// blocks at 4,096 positions in two waves (H200, 7B shape: 342 against 364 tok/s with the FP16
// cache). (Heads of 64 at that bound would spill; so would the 8-bit instance for sm_80–sm_89,
// where it is not measured: the bound is for sm_90 only.)
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
constexpr int kMhaRowsMinBlocks = 8;
#else
constexpr int kMhaRowsMinBlocks = 1;
#endif
template <int HD, int GMAX, bool Q8>
__global__ void __launch_bounds__(kAttnThreads, GMAX == 1 && HD == 128 ? kMhaRowsMinBlocks : 1)
    attentionDecodeRowsKernel(AttentionDecodeArgs a) {
    constexpr int EPL = HD / 32; // elements a lane
    constexpr int R = kRowsAStep;
    constexpr int kWarps = kAttnThreads / 32;
    using Vec = typename AttnRowsVec<HD, Q8>::T;
    using Elem = std::conditional_t<Q8, int8_t, __half>;
    extern __shared__ __align__(16) float attnShared[];
    __shared__ bool isLast;
    const int kvh = blockIdx.x, split = blockIdx.y;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    traceMark(a.trace, kTraceStart);
    const int G = a.nHead / a.nHeadKv, kvDim = a.nHeadKv * HD;
    const int pos = *a.pos, length = pos + 1;
    const int active = (length + a.chunk - 1) / a.chunk;
    if (split >= active) return;
    const int p0 = split * a.chunk, len = min(a.chunk, length - p0);
    const int newRow = pos - p0; // the new token's row in this chunk when newRow < len

    // Row j of the chunk, this lane's elements.
    const Elem* kRows;
    const Elem* vRows;
    if constexpr (Q8) {
        kRows = a.cache8.k;
        vRows = a.cache8.v;
    } else {
        kRows = a.k;
        vRows = a.v;
    }
    const Elem* kLane = kRows + int64_t(p0) * kvDim + kvh * HD + lane * EPL;
    const Elem* vLane = vRows + int64_t(p0) * kvDim + kvh * HD + lane * EPL;
    const float* kScales = Q8 ? a.cache8.kScale + kvh * a.cache8.scaleStride + p0 : nullptr;
    const float* vScales = Q8 ? a.cache8.vScale + kvh * a.cache8.scaleStride + p0 : nullptr;
    struct Step {
        Vec k[R], v[R];
        float kScale[R], vScale[R]; // Q8
    };
    // Rows the loop attends to: the 8-bit cache's new row comes after it.
    auto inLoop = [&](int j) { return j < len && !(Q8 && j == newRow); };
    // Step s holds the warp's rows j = warp + kWarps * (s * R + r), r < R.
    auto load = [&](Step& st, int s, bool beforeWait) {
#pragma unroll
        for (int r = 0; r < R; ++r) {
            const int j = warp + kWarps * (s * R + r);
            const bool in = inLoop(j) && !(beforeWait && j == newRow);
            st.k[r] = in ? __ldg(reinterpret_cast<const Vec*>(kLane + int64_t(j) * kvDim)) : Vec{};
            st.v[r] = in ? __ldg(reinterpret_cast<const Vec*>(vLane + int64_t(j) * kvDim)) : Vec{};
            if constexpr (Q8) {
                st.kScale[r] = in ? __ldg(kScales + j) : 0.f;
                st.vScale[r] = in ? __ldg(vScales + j) : 0.f;
            }
        }
    };
    const int rowsHere = len > warp ? (len - warp + kWarps - 1) / kWarps : 0;
    const int steps = (rowsHere + R - 1) / R;
    Step stA, stB;
    load(stA, 0, true);
    load(stB, 1, true);

    pdlWait();
    pdlLaunchDependents();
    traceMark(a.trace, kTracePastWait);
    // The new token's row, when it is in one of the two steps loaded before the wait.
    if (!Q8 && newRow < len && newRow % kWarps == warp && newRow / kWarps < 2 * R) {
        const int slot = newRow / kWarps;
        const Vec kNew = __ldcg(reinterpret_cast<const Vec*>(kLane + int64_t(newRow) * kvDim));
        const Vec vNew = __ldcg(reinterpret_cast<const Vec*>(vLane + int64_t(newRow) * kvDim));
#pragma unroll
        for (int r = 0; r < R; ++r) {
            if (slot == r) {
                stA.k[r] = kNew;
                stA.v[r] = vNew;
            }
            if (slot == R + r) {
                stB.k[r] = kNew;
                stB.v[r] = vNew;
            }
        }
    }
    // q of the group's heads, this lane's elements, scaled by 1/sqrt(HD).
    const float scale = rsqrtf(float(HD));
    float q[GMAX][EPL];
#pragma unroll
    for (int g = 0; g < GMAX; ++g)
#pragma unroll
        for (int e = 0; e < EPL; ++e) q[g][e] = g < G ? a.q[(kvh * G + g) * HD + lane * EPL + e] * scale : 0.f;

    float m[GMAX], l[GMAX], acc[GMAX][EPL];
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        m[g] = -INFINITY;
        l[g] = 0.f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[g][e] = 0.f;
    }
    auto toFloats = [](const Vec& v, float (&f)[EPL]) {
        if constexpr (Q8) {
            if constexpr (EPL == 4) int8x4ToFloats(v, f);
            else int8x2ToFloats(v, f);
        } else {
            const __half2* h = reinterpret_cast<const __half2*>(&v);
#pragma unroll
            for (int e = 0; e < EPL / 2; ++e) {
                const float2 x = __half22float2(h[e]);
                f[2 * e] = x.x;
                f[2 * e + 1] = x.y;
            }
        }
    };
    auto use = [&](const Step& st, int s) {
#pragma unroll
        for (int g = 0; g < GMAX; ++g) {
            if (g >= G) break;
            float sc[R];
#pragma unroll
            for (int r = 0; r < R; ++r) {
                float kf[EPL];
                toFloats(st.k[r], kf);
                float t = 0.f;
#pragma unroll
                for (int e = 0; e < EPL; ++e) t = fmaf(kf[e], q[g][e], t);
                sc[r] = t;
            }
#pragma unroll
            for (int o = 16; o > 0; o >>= 1)
#pragma unroll
                for (int r = 0; r < R; ++r) sc[r] += __shfl_xor_sync(0xffffffffu, sc[r], o);
            if constexpr (Q8) {
#pragma unroll
                for (int r = 0; r < R; ++r) sc[r] *= st.kScale[r];
            }
            float mNew = m[g];
#pragma unroll
            for (int r = 0; r < R; ++r)
                if (inLoop(warp + kWarps * (s * R + r))) mNew = fmaxf(mNew, sc[r]);
            // (With the 8-bit cache a step may hold only the new row, which comes later.)
            if (Q8 && mNew == -INFINITY) continue;
            const float shrink = __expf(m[g] - mNew); // 0 while m is still -inf
            l[g] *= shrink;
#pragma unroll
            for (int e = 0; e < EPL; ++e) acc[g][e] *= shrink;
#pragma unroll
            for (int r = 0; r < R; ++r) {
                if (!inLoop(warp + kWarps * (s * R + r))) continue;
                const float p = __expf(sc[r] - mNew);
                l[g] += p;
                const float pv = Q8 ? p * st.vScale[r] : p;
                float vf[EPL];
                toFloats(st.v[r], vf);
#pragma unroll
                for (int e = 0; e < EPL; ++e) acc[g][e] = fmaf(pv, vf[e], acc[g][e]);
            }
            m[g] = mNew;
        }
    };
    for (int s = 0; s < steps; s += 2) {
        use(stA, s);
        if (s + 2 < steps) load(stA, s + 2, false);
        if (s + 1 >= steps) break;
        use(stB, s + 1);
        if (s + 3 < steps) load(stB, s + 3, false);
    }
    if constexpr (Q8) {
        if (newRow < len && newRow % kWarps == warp) attendNewRow8<HD, GMAX>(a, kvh, pos, G, q, m, l, acc);
    }

    // The four warps' softmax states into the block's partial.
    float* wm = attnShared;                     // [kWarps][G]
    float* wl = wm + kWarps * GMAX;    // [kWarps][G]
    float* wo = wl + kWarps * GMAX;    // [kWarps][G][HD]
    if (lane == 0) {
#pragma unroll
        for (int g = 0; g < GMAX; ++g)
            if (g < G) {
                wm[warp * GMAX + g] = m[g];
                wl[warp * GMAX + g] = l[g];
            }
    }
#pragma unroll
    for (int g = 0; g < GMAX; ++g) {
        if (g >= G) break;
#pragma unroll
        for (int e = 0; e < EPL; ++e) wo[(warp * G + g) * HD + lane * EPL + e] = acc[g][e];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < G * HD; i += blockDim.x) {
        const int g = i / HD, d = i % HD, h = kvh * G + g;
        float mb = -INFINITY;
        for (int w = 0; w < kWarps; ++w) mb = fmaxf(mb, wm[w * GMAX + g]);
        float o = 0.f, lb = 0.f;
        for (int w = 0; w < kWarps; ++w) {
            const float f = __expf(wm[w * GMAX + g] - mb); // 0 for a warp with no rows
            o = fmaf(f, wo[(w * G + g) * HD + d], o);
            lb = fmaf(f, wl[w * GMAX + g], lb);
        }
        a.partO[(int64_t(h) * a.nSplit + split) * HD + d] = o;
        if (d == 0) {
            a.partMl[(int64_t(h) * a.nSplit + split) * 2] = mb;
            a.partMl[(int64_t(h) * a.nSplit + split) * 2 + 1] = lb;
        }
    }
    __syncthreads(); // (the combine reuses the shared memory)
    combinePartials(a, kvh, G, HD, active, attnShared, isLast);
}

// Shared memory of the register kernel: the warps' states, then (for the combine) [G][nSplit].
size_t attentionDecodeRowsShared(int G, int headDim, int nSplit) {
    const int kWarps = kAttnThreads / 32;
    return std::max(size_t(kWarps) * (2 * kAttnMaxGroup + size_t(G) * headDim) * sizeof(float),
                    size_t(G) * nSplit * sizeof(float2));
}

// The register kernel serves heads of 64 and 128 once chunks reach 128 positions: below that
// the shared-memory kernel was as fast or faster (H100, 7B shape, 32-row chunks at ~576
// positions: FP16 205.7 against 203.7 tok/s; 13B shape, 64-row chunks: INT4 206.9 against
// 195.5); above, its blocks ran in waves (7B at ~4,100 positions, 128-row chunks: FP16 167.8
// against 179.9, INT4 296.0 against 305.9).
bool attentionDecodeInRegisters(int headDim, int chunk) { return (headDim == 64 || headDim == 128) && chunk >= 128; }

} // namespace

void attentionDecodeSplit(int length, int nHeadKv, int headDim, int multiprocessors, int& chunk, int& nSplit) {
    // About eight blocks an SM (the register kernel's MHA instance holds eight), spread over the
    // KV heads; chunks of whole 32 positions. The shared-memory kernel holds a chunk's K and V
    // rows: at most 128 rows of a head of 128 (68 KiB), fewer for wider heads; heads of 64 and
    // 128 have no such bound, since their longer chunks go to the register kernel.
    const int wantSplits = std::max(1, (8 * multiprocessors + nHeadKv - 1) / nHeadKv);
    const int maxChunk = attentionDecodeInRegisters(headDim, 128) ? std::max(32, (length + 31) / 32 * 32)
                                                                 : std::max(32, 128 * 128 / std::max(headDim, 128) / 32 * 32);
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
    auto run = [&](auto kernel, size_t shared) {
        if (shared > 48 * 1024)
            PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
        launchKernel(ctx, kernel, dim3(a.nHeadKv, a.nSplit), dim3(kAttnThreads), shared, "decode attention launch", a);
    };
    const bool int8 = a.cache8.k != nullptr;
    if (int8 && !attentionDecodeSupportsInt8(a.headDim))
        throw Error("decode attention: the 8-bit K/V cache needs a head size of 64 or 128 (this model: " +
                    std::to_string(a.headDim) + ")");
    if (int8 || attentionDecodeInRegisters(a.headDim, a.chunk)) {
        const size_t shared = attentionDecodeRowsShared(G, a.headDim, a.nSplit);
        auto byGroup = [&](auto hd, auto q8) {
            constexpr int HD = decltype(hd)::value;
            constexpr bool Q8 = decltype(q8)::value;
            if (G == 1) run(attentionDecodeRowsKernel<HD, 1, Q8>, shared);
            else if (G <= 4) run(attentionDecodeRowsKernel<HD, 4, Q8>, shared);
            else run(attentionDecodeRowsKernel<HD, kAttnMaxGroup, Q8>, shared);
        };
        using I128 = std::integral_constant<int, 128>;
        using I64 = std::integral_constant<int, 64>;
        if (a.headDim == 128) int8 ? byGroup(I128{}, std::true_type{}) : byGroup(I128{}, std::false_type{});
        else int8 ? byGroup(I64{}, std::true_type{}) : byGroup(I64{}, std::false_type{});
        return;
    }
    // q and scores, then K and V rows; the combine reuses the start for [G][nSplit] (m, l) pairs.
    const size_t shared = std::max(size_t(G * a.headDim + G * a.chunk) * sizeof(float) +
                                       size_t(2 * a.chunk) * attnRowHalves(a.headDim) * sizeof(__half),
                                   size_t(G) * a.nSplit * sizeof(float2));
    // cp.async copies 4, 8 or 16 bytes: the narrowest width a head of an odd number of pairs
    // allows is 2 halves.
    if (a.headDim == 128) run(attentionDecodeKernel<8, 128>, shared);
    else if (a.headDim == 64) run(attentionDecodeKernel<8, 64>, shared);
    else if (a.headDim % 8 == 0) run(attentionDecodeKernel<8, 0>, shared);
    else if (a.headDim % 4 == 0) run(attentionDecodeKernel<4, 0>, shared);
    else run(attentionDecodeKernel<2, 0>, shared);
}

} // namespace parley::cuda
