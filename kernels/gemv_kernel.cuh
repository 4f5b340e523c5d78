#pragma once
// The GEMV kernel shared by the three weight formats (included by gemv_fp16.cu, gemv_int8.cu,
// gemv_int4.cu, each of which supplies a Format policy):
//   Format::kElems            weights in one 16-byte chunk (8 FP16, 16 INT8, 32 INT4)
//   Format::kNeedsChunkSums   whether dot() wants the sum of x over the chunk (INT4's minimum)
//   Format::kUnroll           16-byte loads per row in flight per lane
//   Format::kMinBlocks        blocks an SM should hold (caps registers, for latency hiding)
//   Format::dot(chunk, x parts, c, nChunks, scales row, chunkSum)
// Layout of x in shared memory: the chunk's elements are split into kElems/4 parts of 4; part p
// of chunk c is the float4 at [p * nChunks + c]. Lanes read consecutive chunks, so each warp-wide
// float4 read is contiguous and free of bank conflicts.
#include "kernels/gemv.h"
#include "kernels/rope.cuh"

namespace parley::cuda {

constexpr int kGemvWarps = 8;   // warps per block, one pair of rows each

struct GemvKernelArgs {
    const uint8_t* w;
    const void* scales;
    int64_t rowBytes;
    int cols, nChunks, groupSize, groupsPerRow; // nChunks covers the stored row (FP16: ld)
    int chunkShift; // log2(chunks per scale group): group of chunk c = c >> chunkShift
    GemvArgs a;
};

__device__ __forceinline__ uint4 loadStreaming(const uint4* p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

template <int kElems>
__device__ __forceinline__ int gemvSharedIndex(int e, int nChunks) {
    const int c = e / kElems, r = e % kElems;
    return ((r >> 2) * nChunks + c) * 4 + (r & 3);
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

template <class Format, GemvEpilogue E>
__global__ void __launch_bounds__(kGemvWarps * 32, Format::kMinBlocks) gemvKernel(GemvKernelArgs k) {
    extern __shared__ __align__(16) float gemvShared[];
    constexpr int kElems = Format::kElems;
    constexpr int kUnroll = Format::kUnroll;
    const GemvArgs& a = k.a;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int nChunks = k.nChunks;
    float* xs = gemvShared;                           // [nChunks * kElems] in the part layout
    float* chunkSums = gemvShared + nChunks * kElems; // [nChunks] (INT4)
    __shared__ float blockPartial[kGemvWarps];

    // The grid is at most one wave: each block loads x once and its warps then walk pairs
    // blockIdx.x * warps + warp, + gridDim.x * warps, ... so the prologue is paid once a block.
    const int pairStride = gridDim.x * kGemvWarps;
    int localPair = blockIdx.x * kGemvWarps + warp;

    // Weights do not depend on the kernel before: start pulling the head of this warp's first
    // rows into L2 while that kernel drains (PDL), then wait for its outputs.
    if (localPair < a.pairCount) {
        int r0, r1, fi;
        gemvPairRows<E>(a, a.pairBegin + localPair, r0, r1, fi);
        const int64_t lines = (k.rowBytes < 4096 ? k.rowBytes : 4096) / 128;
        if (lane < lines) {
            prefetchL2(k.w + (r0 - a.rowOffset) * k.rowBytes + lane * 128);
            if (r1 >= 0) prefetchL2(k.w + (r1 - a.rowOffset) * k.rowBytes + lane * 128);
        }
    }
    pdlWait();
    pdlLaunchDependents();

    // x into shared memory, normalised when the projection follows an RMSNorm; four elements
    // at a time (they always share one part of one chunk), zeros past cols.
    float scale = 1.f;
    if (a.normWeight) scale = rsqrtf(*a.ssq / float(k.cols) + a.eps);
    const int stored = nChunks * kElems;
    if ((k.cols & 3) == 0) {
        const float4* x4 = reinterpret_cast<const float4*>(a.x);
        const float4* n4 = reinterpret_cast<const float4*>(a.normWeight);
        for (int i = threadIdx.x; i < stored / 4; i += blockDim.x) {
            float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
            if (4 * i < k.cols) {
                v = x4[i];
                if (a.normWeight) {
                    const float4 w = n4[i];
                    v = make_float4(v.x * scale * w.x, v.y * scale * w.y, v.z * scale * w.z, v.w * scale * w.w);
                }
            }
            *reinterpret_cast<float4*>(xs + gemvSharedIndex<kElems>(4 * i, nChunks)) = v;
        }
    } else {
        for (int e = threadIdx.x; e < stored; e += blockDim.x) {
            float v = 0.f;
            if (e < k.cols) {
                v = a.x[e];
                if (a.normWeight) v = v * scale * a.normWeight[e];
            }
            xs[gemvSharedIndex<kElems>(e, nChunks)] = v;
        }
    }
    __syncthreads();
    if constexpr (Format::kNeedsChunkSums) {
        const float4* xs4 = reinterpret_cast<const float4*>(xs);
        for (int c = threadIdx.x; c < nChunks; c += blockDim.x) {
            float s = 0.f;
#pragma unroll
            for (int p = 0; p < kElems / 4; ++p) {
                const float4 v = xs4[p * nChunks + c];
                s += (v.x + v.y) + (v.z + v.w);
            }
            chunkSums[c] = s;
        }
        __syncthreads();
    }

    const float4* xs4 = reinterpret_cast<const float4*>(xs);
    float ssqPart = 0.f;
    for (; localPair < a.pairCount; localPair += pairStride) {
        int r0 = 0, r1 = -1, freqIndex = -1;
        gemvPairRows<E>(a, a.pairBegin + localPair, r0, r1, freqIndex);
        const int64_t m0 = r0 - a.rowOffset, m1 = r1 - a.rowOffset;
        const bool two = r1 >= 0;
        const uint4* w0 = reinterpret_cast<const uint4*>(k.w + m0 * k.rowBytes);
        const uint4* w1 = reinterpret_cast<const uint4*>(k.w + (two ? m1 : m0) * k.rowBytes);
        const void* sc0 = Format::scaleRow(k, m0);
        const void* sc1 = Format::scaleRow(k, two ? m1 : m0);
        float acc0 = 0.f, acc1 = 0.f;
        int c = lane;
        for (; c + 32 * (kUnroll - 1) < nChunks; c += 32 * kUnroll) {
            uint4 v0[kUnroll], v1[kUnroll];
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) v0[u] = loadStreaming(w0 + c + 32 * u);
            if (two) {
#pragma unroll
                for (int u = 0; u < kUnroll; ++u) v1[u] = loadStreaming(w1 + c + 32 * u);
            }
#pragma unroll
            for (int u = 0; u < kUnroll; ++u) {
                const int cc = c + 32 * u;
                const float cs = Format::kNeedsChunkSums ? chunkSums[cc] : 0.f;
                acc0 += Format::dot(k, v0[u], xs4, cc, nChunks, sc0, cs);
                if (two) acc1 += Format::dot(k, v1[u], xs4, cc, nChunks, sc1, cs);
            }
        }
        for (; c < nChunks; c += 32) {
            const float cs = Format::kNeedsChunkSums ? chunkSums[c] : 0.f;
            acc0 += Format::dot(k, loadStreaming(w0 + c), xs4, c, nChunks, sc0, cs);
            if (two) acc1 += Format::dot(k, loadStreaming(w1 + c), xs4, c, nChunks, sc1, cs);
        }
        acc0 = warpSum(acc0);
        acc1 = warpSum(acc1);
        if (lane != 0) continue;

        if constexpr (E == GemvEpilogue::Store) {
            a.out[r0] = acc0;
            if (two) a.out[r1] = acc1;
        } else if constexpr (E == GemvEpilogue::Residual) {
            const float v0 = a.resid[r0] + acc0;
            a.resid[r0] = v0;
            ssqPart += v0 * v0;
            if (two) {
                const float v1 = a.resid[r1] + acc1;
                a.resid[r1] = v1;
                ssqPart += v1 * v1;
            }
        } else if constexpr (E == GemvEpilogue::GateUp) {
            // SwiGLU (Shazeer 2020): silu(gate) * up, silu(g) = g / (1 + exp(-g)).
            a.out[r0] = acc0 / (1.f + __expf(-acc0)) * acc1;
        } else { // Qkv
            float v0 = acc0, v1 = acc1;
            if (a.bias) {
                v0 += a.bias[r0];
                v1 += a.bias[r1];
            }
            const int pos = *a.pos;
            if (freqIndex >= 0) ropeRotate(v0, v1, float(pos) * a.invFreq[freqIndex]);
            if (r0 < a.qDim) {
                a.qOut[r0] = v0;
                a.qOut[r1] = v1;
            } else if (r0 < a.qDim + a.kvDim) {
                __half* kRow = a.kCache + int64_t(pos) * a.kvDim;
                kRow[r0 - a.qDim] = __float2half_rn(v0);
                kRow[r1 - a.qDim] = __float2half_rn(v1);
            } else {
                __half* vRow = a.vCache + int64_t(pos) * a.kvDim;
                vRow[r0 - a.qDim - a.kvDim] = __float2half_rn(v0);
                vRow[r1 - a.qDim - a.kvDim] = __float2half_rn(v1);
            }
        }
    }
    if constexpr (E == GemvEpilogue::Residual) {
        if (lane == 0) blockPartial[warp] = ssqPart;
        __syncthreads();
        if (threadIdx.x == 0) {
            float s = 0.f;
#pragma unroll
            for (int i = 0; i < kGemvWarps; ++i) s += blockPartial[i];
            atomicAdd(a.ssqOut, s);
        }
    }
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
    k.groupSize = m.groupSize;
    k.groupsPerRow = int(m.groupsPerRow());
    k.chunkShift = chunkShift;
    k.a = a;
    const size_t shared = size_t(stored) * 4 + (Format::kNeedsChunkSums ? size_t(k.nChunks) * 4 : 0);
    if (a.pairCount <= 0) return;
    auto run = [&](auto kernel) {
        if (shared > 48 * 1024)
            PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
        int device = 0, sms = 0, perSm = 0;
        PARLEY_CUDA_CHECK(cudaGetDevice(&device));
        PARLEY_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
        PARLEY_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&perSm, kernel, kGemvWarps * 32, shared));
        const int64_t needed = ceilDiv(a.pairCount, kGemvWarps);
        const dim3 grid(unsigned(std::max<int64_t>(1, std::min<int64_t>(needed, int64_t(std::max(perSm, 1)) * sms))));
        launchKernel(ctx, kernel, grid, dim3(kGemvWarps * 32), shared, "GEMV launch", k);
    };
    switch (e) {
    case GemvEpilogue::Store: run(gemvKernel<Format, GemvEpilogue::Store>); break;
    case GemvEpilogue::Residual: run(gemvKernel<Format, GemvEpilogue::Residual>); break;
    case GemvEpilogue::GateUp: run(gemvKernel<Format, GemvEpilogue::GateUp>); break;
    case GemvEpilogue::Qkv: run(gemvKernel<Format, GemvEpilogue::Qkv>); break;
    }
}

} // namespace parley::cuda
