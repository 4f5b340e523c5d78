#pragma once
// The GEMV kernel shared by the three weight formats (included by gemv_fp16.cu, gemv_int8.cu,
// gemv_int4.cu, each of which supplies a Format policy):
//   Format::kElems           weights in one 16-byte chunk (8 FP16, 16 INT8, 32 INT4)
//   Format::XType            how x is kept in shared memory: float (FP16 weights) or int16_t
//                            (INT8/INT4: each chunk of x rounded to int16 with its own step, and
//                            multiplied with dp4a, four byte products an instruction, summed
//                            exactly in int32; the chunk's sum is scaled back in float)
//   Format::kNeedsChunkSums  whether dot() wants the chunk's sum of int16 x (INT4's minimum)
//   Format::packPart(q[8])   8 consecutive int16 elements of x -> one 16-byte part, split into
//                            low and high bytes in the order dot() pairs them with the weights
//   Format::loadScale(scale row, c) the raw scale (and minimum) of chunk c, loaded with the
//                            weights so that its latency hides behind theirs
//   Format::dot(chunk, x parts, raw scale, chunk sum)
// x in shared memory: chunk c's part p (16 bytes) is at [p * nChunks + c], so the 32 lanes of a
// warp, which read consecutive chunks, read 512 contiguous bytes: no bank conflicts.
//
// Streaming: each warp walks its row pairs chunk-step by chunk-step (kGemvUnroll chunks a lane
// per row per step: 4, a whole 4096-wide INT4 row pair, 4 KiB a warp). Two steps live in
// registers, A and B, which take turns: while the warp multiplies one, the other's loads are in
// flight, and as soon as one is multiplied its registers are loaded with the step after the
// other's. (A single "next" buffer copied into "current" after each step makes that copy wait
// for the loads, so that the warp issues nothing while it waits.) Both first steps are issued
// before the kernel waits for the one before it (programmatic dependent launch): weights never
// depend on it. Measured on an H100 against 2 chunks a step with three blocks an SM: 4 chunks
// and two blocks are faster in every precision (docs/benchmarks.md); one block of 16 warps an SM
// is faster again than two of 8 (each SM reads x and works it into shared memory once, not
// twice, and a 4,096-wide x in one pass of the block's threads).
//
// A fused norm's weights are read from shared memory: on sm_90, one bulk copy (TMA) brings them
// there at the kernel's start, before the first weight load. They depend on nothing before, and
// by then they have usually left L2 (a layer streams ~100 MB through it): read after the wait, as
// x is, they queued in DRAM behind the block's weight loads (docs/benchmarks.md).
#include <cfloat>
#include <type_traits>

#include "kernels/decode_trace.cuh"
#include "kernels/gemv.h"
#include "kernels/mbarrier.cuh"
#include "kernels/rope.cuh"
#include "kernels/swiglu.h"

namespace parley::cuda {

// Warps a block (one pair of rows at a time each): 16, one block an SM (the registers two steps
// of loads need: 128 a thread). A matrix too small to give every SM a block of 16 warps (a small
// model's) takes blocks of 8, two an SM, so that it is spread over twice as many SMs.
constexpr int kGemvWarps = 16;
constexpr int kGemvWarpsSmall = 8;
constexpr int kGemvThreadsPerSm = kGemvWarps * 32;
constexpr int kGemvUnroll = 4;  // 16-byte chunks a lane loads per row per step

struct GemvKernelArgs {
    const uint8_t* w;
    const void* scales;
    int64_t rowBytes;
    int cols, nChunks, groupsPerRow; // nChunks covers the stored row (FP16: ld)
    int chunkShift; // log2(chunks per scale group): group of chunk c = c >> chunkShift
    GemvArgs a;
};

// Dynamic shared memory of a GEMV over `stored` elements: x; for the integer formats each
// chunk's (sum, step), an even number of them; then, where a norm is fused, the norm's weights
// (at a 16-byte boundary, as the bulk copy wants).
template <class Format>
size_t gemvSharedBytes(int64_t stored, int64_t cols, bool norm) {
    const int64_t chunks = stored / Format::kElems;
    const bool intX = sizeof(typename Format::XType) == 2;
    return size_t(stored) * sizeof(typename Format::XType) + (intX ? size_t((chunks + 1) & ~int64_t(1)) * sizeof(float2) : 0) +
           (norm ? size_t((cols + 3) & ~int64_t(3)) * sizeof(float) : 0);
}

__device__ __forceinline__ uint4 loadStreaming(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

// Logical rows of pair p for epilogue E; r1 < 0 when the pair has one row.
template <GemvEpilogue E>
__device__ __forceinline__ void gemvPairRows(const GemvArgs& a, int p, int& r0, int& r1, int& freqIndex) {
    freqIndex = -1;
    if constexpr (E == GemvEpilogue::GateUp) {
        r0 = p;
        r1 = a.nFf + p;
    } else if constexpr (E == GemvEpilogue::Qkv) {
        const int half = a.headDim / 2;
        const int nQ = a.qDim / 2, nK = a.kvDim / 2;
        if (p < nQ + nK) {
            const int base = p < nQ ? 0 : a.qDim;
            const int pp = p < nQ ? p : p - nQ;
            const int head = pp / half, i = pp % half;
            freqIndex = i;
            if (a.neox) {
                r0 = base + head * a.headDim + i;
                r1 = r0 + half;
            } else {
                r0 = base + head * a.headDim + 2 * i;
                r1 = r0 + 1;
            }
        } else {
            r0 = a.qDim + a.kvDim + 2 * (p - nQ - nK);
            r1 = r0 + 1;
        }
    } else {
        r0 = 2 * p;
        r1 = 2 * p + 1 < a.logicalRows ? 2 * p + 1 : -1;
    }
}

// One pair's rows, and for the Residual epilogue the residual's two values (loaded with the
// pair, so that no load waits at the end of the pair). The residual may be read before the
// kernel waits for the one before it: the last kernel to write it is at least two launches
// back, and every kernel waits for its predecessor before it lets its successor start. (Where
// the rows live is worked out again at each step's loads: kept per pair, the pointers of the
// two pairs in flight spill registers.)
struct GemvPair {
    int r0, r1, freqIndex; // r1 < 0 when the pair has one row
    float in0, in1;
};

template <class Format, GemvEpilogue E>
__device__ __forceinline__ GemvPair gemvPairAt(const GemvKernelArgs& k, int pair) {
    GemvPair p;
    gemvPairRows<E>(k.a, k.a.pairBegin + pair, p.r0, p.r1, p.freqIndex);
    p.in0 = p.in1 = 0.f;
    if constexpr (E == GemvEpilogue::Residual) {
        p.in0 = __ldcg(k.a.resid + p.r0);
        if (p.r1 >= 0) p.in1 = __ldcg(k.a.resid + p.r1);
    }
    return p;
}

// One step's chunks of both rows and their scales (zeros past the row's end).
template <class Format, int U>
struct GemvStep {
    uint4 w0[U], w1[U];
    uint32_t s0[U], s1[U];
};

template <class Format, int U>
__device__ __forceinline__ void gemvLoadStep(const GemvKernelArgs& k, const GemvPair& p, int firstChunk,
                                             GemvStep<Format, U>& st) {
    const int64_t m0 = p.r0 - k.a.rowOffset, m1 = p.r1 >= 0 ? p.r1 - k.a.rowOffset : m0;
    const uint4* w0 = reinterpret_cast<const uint4*>(k.w + m0 * k.rowBytes);
    const uint4* w1 = reinterpret_cast<const uint4*>(k.w + m1 * k.rowBytes);
    const void* sc0 = Format::scaleRow(k, m0);
    const void* sc1 = Format::scaleRow(k, m1);
#pragma unroll
    for (int u = 0; u < U; ++u) {
        const int c = firstChunk + 32 * u;
        const bool in = c < k.nChunks, two = in && p.r1 >= 0;
        st.w0[u] = in ? loadStreaming(w0 + c) : make_uint4(0, 0, 0, 0);
        st.w1[u] = two ? loadStreaming(w1 + c) : make_uint4(0, 0, 0, 0);
        st.s0[u] = in ? Format::loadScale(k, sc0, c) : 0u;
        st.s1[u] = two ? Format::loadScale(k, sc1, c) : 0u;
    }
}

// dp4a: the dot product of four bytes of a with four bytes of b, plus c (PTX ISA, "dp4a"); each
// operand's bytes read as signed or unsigned as named (weights first, then x).
__device__ __forceinline__ int dp4aUU(uint32_t a, uint32_t b, int c) {
    int d;
    asm("dp4a.u32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ int dp4aUS(uint32_t a, uint32_t b, int c) {
    int d;
    asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ int dp4aSU(uint32_t a, uint32_t b, int c) {
    int d;
    asm("dp4a.s32.u32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}
__device__ __forceinline__ int dp4aSS(uint32_t a, uint32_t b, int c) {
    int d;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
    return d;
}

// Four int16 values' low bytes (read as unsigned by dp4a) or high bytes (read as signed), packed
// into one word, value i in byte i; each value is 256 * high + low exactly.
__device__ __forceinline__ uint32_t lowBytes(int a, int b, int c, int d) {
    return (uint32_t(a) & 0xFFu) | (uint32_t(b) & 0xFFu) << 8 | (uint32_t(c) & 0xFFu) << 16 | uint32_t(d) << 24;
}
__device__ __forceinline__ uint32_t highBytes(int a, int b, int c, int d) {
    return lowBytes(a >> 8, b >> 8, c >> 8, d >> 8);
}

// x (normalised when a norm is fused) into shared memory in the part layout. A thread takes a
// group of 8 consecutive elements at a time; x is read from global memory once. The integer
// formats round each chunk of x to int16 with its own step, max |x| / 32767 over the chunk (as
// the CPU backend does per block of 32, engine/cpu_matmul.h), found from the lanes that hold
// the chunk's groups (no pass over the whole of x, no block-wide reduction), and store for each
// chunk its step and, when the format wants it, the sum of its int16 values (chunkInfo[c] =
// (sum, step)). A chunk holding a NaN or an infinity gets a NaN step, so the rows it touches
// come out NaN rather than quietly wrong.
template <class Format>
__device__ __forceinline__ void gemvLoadX(const GemvKernelArgs& k, const float* x, const float* normWeight, uint4* xs,
                                          float2* chunkInfo) {
    using X = typename Format::XType;
    constexpr int kElems = Format::kElems;
    constexpr int kGroupsPerChunk = kElems / 8;
    const GemvArgs& a = k.a;
    const int nChunks = k.nChunks, nGroups = nChunks * kGroupsPerChunk;
    // The norm's scale, once per block (its load is issued with the first loads of x).
    const float normScale = normWeight ? rsqrtf(*a.ssq / float(k.cols) + a.eps) : 1.f;
    const bool vec = (k.cols & 7) == 0;
    // Group g's 8 elements of x (zeros past the end), then normalised where a norm is fused.
    auto load8 = [&](int g, float (&v)[8]) {
        const int e0 = g * 8;
        if (vec && e0 < k.cols) {
            const float4 p = *reinterpret_cast<const float4*>(x + e0);
            const float4 q = *reinterpret_cast<const float4*>(x + e0 + 4);
            v[0] = p.x; v[1] = p.y; v[2] = p.z; v[3] = p.w;
            v[4] = q.x; v[5] = q.y; v[6] = q.z; v[7] = q.w;
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] = e0 + i < k.cols ? x[e0 + i] : 0.f;
        }
    };
    auto normalise8 = [&](int g, float (&v)[8]) {
        if (!normWeight) return;
        const int e0 = g * 8;
        if (vec && e0 < k.cols) {
            const float4 p = *reinterpret_cast<const float4*>(normWeight + e0);
            const float4 q = *reinterpret_cast<const float4*>(normWeight + e0 + 4);
            const float w[8] = {p.x, p.y, p.z, p.w, q.x, q.y, q.z, q.w};
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] *= normScale * w[i];
        } else {
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] = e0 + i < k.cols ? v[i] * normScale * normWeight[e0 + i] : 0.f;
        }
    };

    if constexpr (sizeof(X) == 4) {
        float4* xf = reinterpret_cast<float4*>(xs);
        for (int c = threadIdx.x; c < nChunks; c += blockDim.x) { // (one group a chunk)
            float v[8];
            load8(c, v);
            normalise8(c, v);
            xf[c] = make_float4(v[0], v[1], v[2], v[3]);
            xf[nChunks + c] = make_float4(v[4], v[5], v[6], v[7]);
        }
    } else {
        // Uniform trip counts: the lanes of one chunk shuffle their maxima and sums together. The
        // next pass's x is loaded before this one is worked, so that a wide x (11,008 columns:
        // three passes) costs about one round trip, not one a pass.
        float next[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        if (int(threadIdx.x) < nGroups) load8(threadIdx.x, next);
        for (int base = 0; base < nGroups; base += blockDim.x) {
            const int gi = base + threadIdx.x;
            const bool in = gi < nGroups;
            float v[8];
#pragma unroll
            for (int i = 0; i < 8; ++i) v[i] = next[i];
            if (gi + int(blockDim.x) < nGroups) load8(gi + blockDim.x, next);
            else
#pragma unroll
                for (int i = 0; i < 8; ++i) next[i] = 0.f;
            if (in) normalise8(gi, v);
            float m = 0.f;
            bool finite = true;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                m = fmaxf(m, fabsf(v[i]));
                finite = finite && fabsf(v[i]) <= FLT_MAX;
            }
#pragma unroll
            for (int o = 1; o < kGroupsPerChunk; o <<= 1) {
                m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
                finite = __shfl_xor_sync(0xffffffffu, int(finite), o) && finite;
            }
            const float xMul = finite && m > 0.f ? 32767.f / m : 0.f;
            const float step = finite ? m / 32767.f : NAN;
            int q[8];
            int sum = 0;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                q[i] = max(-32767, min(32767, __float2int_rn(v[i] * xMul)));
                sum += q[i];
            }
            const int c = gi / kGroupsPerChunk, p = gi % kGroupsPerChunk;
            if (in) xs[p * nChunks + c] = Format::packPart(q);
            if constexpr (Format::kNeedsChunkSums) {
#pragma unroll
                for (int o = 1; o < kGroupsPerChunk; o <<= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            }
            if (in && p == 0) chunkInfo[c] = make_float2(float(sum), step);
        }
    }
    __syncthreads();
}

template <class Format, GemvEpilogue E, int Warps>
__global__ void __launch_bounds__(Warps * 32, kGemvThreadsPerSm / (Warps * 32)) gemvKernel(GemvKernelArgs k) {
    constexpr int U = kGemvUnroll;
    extern __shared__ __align__(16) uint4 gemvShared[];
    using X = typename Format::XType;
    constexpr int kElems = Format::kElems;
    constexpr int kParts = kElems * int(sizeof(X)) / 16;
    const GemvArgs& a = k.a;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nChunks = k.nChunks;
    constexpr bool kIntX = sizeof(X) == 2;
    uint4* xs = gemvShared;                                               // [kParts][nChunks]
    float2* chunkInfo = reinterpret_cast<float2*>(gemvShared + kParts * nChunks); // [nChunks] (int16 x)
    __shared__ float scratch[32];
    traceMark(a.trace, kTraceStart);

    // The norm's weights, first (see the top of this file).
    const float* normWeight = a.normWeight;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    float* normShared = reinterpret_cast<float*>(chunkInfo + (kIntX ? (nChunks + 1) & ~1 : 0)); // [cols]
    __shared__ __align__(8) uint64_t normArrived;
    const bool normEarly = normWeight && (reinterpret_cast<uintptr_t>(normWeight) & 15) == 0 && (k.cols & 3) == 0;
    if (normEarly) {
        const uint32_t bar = sharedAddress(&normArrived);
        if (threadIdx.x == 0) {
            barrierInit(bar, 1);
            fenceBarrierInit();
            barrierExpectBytes(bar, k.cols * 4);
            bulkCopyToShared(sharedAddress(normShared), normWeight, k.cols * 4, bar);
        }
        __syncthreads(); // (the barrier's initialisation, before any thread waits on it)
    }
#endif

    // The grid is at most one wave: each block loads x once and its warps then walk pairs
    // blockIdx.x * warps + warp, + gridDim.x * warps, ...; a warp's steps in order are
    // (pair, step) = (i, 0), (i, 1), ..., (i + stride, 0), ...
    const int pairStride = gridDim.x * Warps;
    const int stepsPerRow = (nChunks + 32 * U - 1) / (32 * U);
    auto stepAfter = [&](int& index, int& step) {
        if (++step == stepsPerRow) {
            step = 0;
            index += pairStride;
        }
    };
    // Buffer X takes (indexX, stepX): its pair (the other buffer's when they share one) and its
    // step's loads, when there is such a pair.
    auto load = [&](GemvPair& pairX, int indexX, int stepX, GemvStep<Format, U>& bufX, const GemvPair& pairY,
                    int indexY) {
        if (indexX >= a.pairCount) return;
        pairX = indexX == indexY ? pairY : gemvPairAt<Format, E>(k, indexX);
        gemvLoadStep<Format, U>(k, pairX, stepX * 32 * U + lane, bufX);
    };
    int indexA = blockIdx.x * Warps + warp, stepA = 0;
    int indexB = indexA, stepB = 0;
    stepAfter(indexB, stepB);
    GemvPair pairA{}, pairB{};
    GemvStep<Format, U> bufA, bufB;
    load(pairA, indexA, stepA, bufA, pairB, -1);
    load(pairB, indexB, stepB, bufB, pairA, indexA);
    // (The position is written by the host before the decode graph starts.)
    const int pos = E == GemvEpilogue::Qkv ? *a.pos : 0;
    pdlWait();
    pdlLaunchDependents();
    traceMark(a.trace, kTracePastWait);
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (normEarly) {
        barrierWait(sharedAddress(&normArrived), 0);
        normWeight = normShared;
    }
#endif
    gemvLoadX<Format>(k, a.x, normWeight, xs, chunkInfo);

    float acc0 = 0.f, acc1 = 0.f, ssqPart = 0.f;
    // Multiplies one step into the pair's sums; after a pair's last step, its epilogue.
    auto multiply = [&](const GemvPair& pair, int step, const GemvStep<Format, U>& cur) {
        const int first = step * 32 * U + lane;
#pragma unroll
        for (int u = 0; u < U; ++u) {
            const int c = first + 32 * u;
            if (c < nChunks) {
                typename Format::XChunk xc;
#pragma unroll
                for (int p = 0; p < kParts; ++p) xc.part[p] = xs[p * nChunks + c];
                float cs = 0.f, step = 1.f; // (the chunk's sum of int16 x and its step)
                if constexpr (kIntX) {
                    const float2 info = chunkInfo[c];
                    cs = info.x;
                    step = info.y;
                }
                acc0 = fmaf(Format::dot(cur.w0[u], xc, cur.s0[u], cs), step, acc0);
                if (pair.r1 >= 0) acc1 = fmaf(Format::dot(cur.w1[u], xc, cur.s1[u], cs), step, acc1);
            }
        }
        if (step != stepsPerRow - 1) return;
        acc0 = warpSum(acc0);
        acc1 = warpSum(acc1);
        if (lane == 0) {
            const int r0 = pair.r0, r1 = pair.r1;
            const bool two = r1 >= 0;
            if constexpr (E == GemvEpilogue::Store) {
                a.out[r0] = acc0;
                if (two) a.out[r1] = acc1;
            } else if constexpr (E == GemvEpilogue::Residual) {
                const float o0 = pair.in0 + acc0;
                a.resid[r0] = o0;
                ssqPart += o0 * o0;
                if (two) {
                    const float o1 = pair.in1 + acc1;
                    a.resid[r1] = o1;
                    ssqPart += o1 * o1;
                }
            } else if constexpr (E == GemvEpilogue::GateUp) {
                a.out[r0] = silu(acc0) * acc1; // SwiGLU (Shazeer 2020)
            } else { // Qkv
                float o0 = acc0, o1 = acc1;
                if (a.bias) {
                    o0 += a.bias[r0];
                    o1 += a.bias[r1];
                }
                if (pair.freqIndex >= 0) ropeRotate(o0, o1, float(pos) * a.invFreq[pair.freqIndex]);
                if (r0 < a.qDim) {
                    a.qOut[r0] = o0;
                    a.qOut[r1] = o1;
                } else if (r0 < a.qDim + a.kvDim) {
                    __half* kRow = a.kCache + (a.kvNewRowOnly ? 0 : int64_t(pos) * a.kvDim);
                    kRow[r0 - a.qDim] = __float2half_rn(o0);
                    kRow[r1 - a.qDim] = __float2half_rn(o1);
                } else {
                    __half* vRow = a.vCache + (a.kvNewRowOnly ? 0 : int64_t(pos) * a.kvDim);
                    vRow[r0 - a.qDim - a.kvDim] = __float2half_rn(o0);
                    vRow[r1 - a.qDim - a.kvDim] = __float2half_rn(o1);
                }
            }
        }
        acc0 = acc1 = 0.f;
    };

    // A and B take turns: buffer X is multiplied, then loaded with the step after buffer Y's.
    auto turn = [&](GemvPair& pairX, int& indexX, int& stepX, GemvStep<Format, U>& bufX, const GemvPair& pairY,
                    int indexY, int stepY) {
        multiply(pairX, stepX, bufX);
        indexX = indexY;
        stepX = stepY;
        stepAfter(indexX, stepX);
        load(pairX, indexX, stepX, bufX, pairY, indexY);
    };
    while (indexA < a.pairCount) {
        turn(pairA, indexA, stepA, bufA, pairB, indexB, stepB);
        if (indexB >= a.pairCount) break;
        turn(pairB, indexB, stepB, bufB, pairA, indexA, stepA);
    }
    if constexpr (E == GemvEpilogue::Residual) {
        const float s = blockSum(lane == 0 ? ssqPart : 0.f, scratch);
        if (threadIdx.x == 0) atomicAdd(a.ssqOut, s);
    }
    traceMark(a.trace, kTraceEnd);
}


// Host side: sizes the launch and raises the shared-memory limit once per kernel.
template <class Format>
void launchGemvFormat(const LaunchContext& ctx, const DeviceMatrix& m, GemvEpilogue e, const GemvArgs& a) {
    constexpr int kElems = Format::kElems;
    const int64_t stored = m.precision == Precision::FP16 ? m.ld : m.cols;
    if (stored % kElems)
        throw Error("GEMV: a row of " + std::to_string(stored) + " weights is not a whole number of " +
                    std::to_string(kElems) + "-weight chunks");
    int chunkShift = 0;
    if (m.precision != Precision::FP16) {
        const int chunksPerGroup = m.groupSize / kElems;
        if (m.groupSize % kElems || chunksPerGroup <= 0 || (chunksPerGroup & (chunksPerGroup - 1)))
            throw Error("GEMV: group size " + std::to_string(m.groupSize) + " is not a power-of-two multiple of " +
                        std::to_string(kElems));
        while ((1 << chunkShift) < chunksPerGroup) ++chunkShift;
    }
    GemvKernelArgs k;
    k.w = static_cast<const uint8_t*>(m.data);
    k.scales = m.scales;
    k.rowBytes = m.rowBytes();
    k.cols = int(m.cols);
    k.nChunks = int(stored / kElems);
    k.groupsPerRow = int(m.groupsPerRow());
    k.chunkShift = chunkShift;
    k.a = a;
    const size_t shared = gemvSharedBytes<Format>(stored, m.cols, a.normWeight != nullptr);
    if (a.pairCount <= 0) return;
    const int sms = currentMultiprocessors();
    auto run = [&](auto kernel, int warps) {
        if (shared > 48 * 1024)
            PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
        int perSm = 0;
        PARLEY_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, warps * 32, shared));
        const int64_t needed = ceilDiv(a.pairCount, warps);
        const dim3 grid(unsigned(std::max<int64_t>(1, std::min<int64_t>(needed, int64_t(std::max(perSm, 1)) * sms))));
        launchKernel(ctx, kernel, grid, dim3(warps * 32), shared, "GEMV launch", k);
    };
    auto runEpilogue = [&](auto epilogue) {
        constexpr GemvEpilogue E = decltype(epilogue)::value;
        if (2 * ceilDiv(a.pairCount, kGemvWarps) <= sms) run(gemvKernel<Format, E, kGemvWarpsSmall>, kGemvWarpsSmall);
        else run(gemvKernel<Format, E, kGemvWarps>, kGemvWarps);
    };
    switch (e) {
    case GemvEpilogue::Store: runEpilogue(std::integral_constant<GemvEpilogue, GemvEpilogue::Store>{}); break;
    case GemvEpilogue::Residual: runEpilogue(std::integral_constant<GemvEpilogue, GemvEpilogue::Residual>{}); break;
    case GemvEpilogue::GateUp: runEpilogue(std::integral_constant<GemvEpilogue, GemvEpilogue::GateUp>{}); break;
    case GemvEpilogue::Qkv: runEpilogue(std::integral_constant<GemvEpilogue, GemvEpilogue::Qkv>{}); break;
    }
}

} // namespace parley::cuda
