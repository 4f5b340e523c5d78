// Split-sequence decode attention. See attention_decode.h.
#include "kernels/attention_decode.h"

#include <algorithm>

namespace parley::cuda {

namespace {

constexpr int kAttnThreads = 128;

// W consecutive halves (16, 8 or 4 bytes) as floats.
template <int W>
__device__ __forceinline__ void loadHalves(const __half* p, float* out) {
    if constexpr (W == 8) {
        const uint4 raw = *reinterpret_cast<const uint4*>(p);
        const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const float2 f = __half22float2(h[i]);
            out[2 * i] = f.x;
            out[2 * i + 1] = f.y;
        }
    } else if constexpr (W == 4) {
        const uint2 raw = *reinterpret_cast<const uint2*>(p);
        const __half2* h = reinterpret_cast<const __half2*>(&raw);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const float2 f = __half22float2(h[i]);
            out[2 * i] = f.x;
            out[2 * i + 1] = f.y;
        }
    } else {
        const float2 f = __half22float2(*reinterpret_cast<const __half2*>(p));
        out[0] = f.x;
        out[1] = f.y;
    }
}

// W: halves per load (8 where the head size allows, the 16-byte width). HD: the head size when
// known at compile time (64, 128: every load of a K row is issued before the first is used),
// 0 for any other.
template <int W, int HD>
__global__ void __launch_bounds__(kAttnThreads) attentionDecodeKernel(AttentionDecodeArgs a) {
    extern __shared__ __align__(16) float attnShared[];
    __shared__ float scratch[32];
    __shared__ bool isLast;
    const int kvh = blockIdx.x, split = blockIdx.y;
    const int G = a.nHead / a.nHeadKv, hd = HD > 0 ? HD : a.headDim, kvDim = a.nHeadKv * hd;
    pdlWait();
    pdlLaunchDependents();
    const int length = *a.pos + 1;
    const int active = (length + a.chunk - 1) / a.chunk;
    if (split >= active) return;
    const int p0 = split * a.chunk, len = min(a.chunk, length - p0);

    float* qs = attnShared;                 // [G][hd], scaled by 1/sqrt(hd)
    float* scores = qs + G * hd;            // [G][chunk]
    float* o = scores + G * a.chunk;        // [G][hd]
    const float scale = rsqrtf(float(hd));
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        qs[i] = a.q[kvh * G * hd + i] * scale;
        o[i] = 0.f;
    }
    __syncthreads();

    // Scores: one position a thread, its K row read W halves at a time.
    const __half* kBase = a.k + int64_t(p0) * kvDim + kvh * hd;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        const __half* kRow = kBase + int64_t(j) * kvDim;
        float s[kAttnMaxGroup];
#pragma unroll
        for (int g = 0; g < kAttnMaxGroup; ++g) s[g] = 0.f;
        if constexpr (HD > 0) {
            uint4 raw[HD / 8];
#pragma unroll
            for (int c = 0; c < HD / 8; ++c) raw[c] = reinterpret_cast<const uint4*>(kRow)[c];
#pragma unroll
            for (int c = 0; c < HD / 8; ++c) {
                float kf[8];
                loadHalves<8>(reinterpret_cast<const __half*>(&raw[c]), kf);
#pragma unroll
                for (int g = 0; g < kAttnMaxGroup; ++g) {
                    if (g < G) {
                        const float4* qv = reinterpret_cast<const float4*>(qs + g * HD + c * 8);
                        const float4 qa = qv[0], qb = qv[1];
                        s[g] += kf[0] * qa.x + kf[1] * qa.y + kf[2] * qa.z + kf[3] * qa.w + kf[4] * qb.x +
                                kf[5] * qb.y + kf[6] * qb.z + kf[7] * qb.w;
                    }
                }
            }
        } else {
            for (int d0 = 0; d0 < hd; d0 += W) {
                float kf[W];
                loadHalves<W>(kRow + d0, kf);
#pragma unroll
                for (int g = 0; g < kAttnMaxGroup; ++g) {
                    if (g < G) {
                        const float* qv = qs + g * hd + d0;
                        float t = 0.f;
#pragma unroll
                        for (int i = 0; i < W; ++i) t = fmaf(kf[i], qv[i], t);
                        s[g] += t;
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < kAttnMaxGroup; ++g)
            if (g < G) scores[g * a.chunk + j] = s[g];
    }
    __syncthreads();

    // Softmax numerators over the chunk, per head; keep max and sum for the combine.
    float headMax[kAttnMaxGroup], headSum[kAttnMaxGroup];
#pragma unroll
    for (int g = 0; g < kAttnMaxGroup; ++g) {
        headMax[g] = -INFINITY;
        headSum[g] = 0.f;
        if (g < G) {
            float m = -INFINITY;
            for (int j = threadIdx.x; j < len; j += blockDim.x) m = fmaxf(m, scores[g * a.chunk + j]);
            m = blockMax(m, scratch);
            float l = 0.f;
            for (int j = threadIdx.x; j < len; j += blockDim.x) {
                const float e = __expf(scores[g * a.chunk + j] - m);
                scores[g * a.chunk + j] = e;
                l += e;
            }
            l = blockSum(l, scratch);
            headMax[g] = m;
            headSum[g] = l;
        }
    }
    __syncthreads();

    // Weighted V: threads split a row into W-half segments, rows spread over the rest.
    const int segs = hd / W, rowsAtOnce = blockDim.x / segs;
    const int seg = threadIdx.x % segs, sub = threadIdx.x / segs;
    if (sub < rowsAtOnce) {
        float acc[kAttnMaxGroup][W];
#pragma unroll
        for (int g = 0; g < kAttnMaxGroup; ++g)
#pragma unroll
            for (int i = 0; i < W; ++i) acc[g][i] = 0.f;
        const __half* vBase = a.v + int64_t(p0) * kvDim + kvh * hd + seg * W;
        // Four rows' loads in flight before the first is used.
        constexpr int kBatch = 4;
        for (int j0 = sub; j0 < len; j0 += kBatch * rowsAtOnce) {
            float vf[kBatch][W];
#pragma unroll
            for (int b = 0; b < kBatch; ++b) {
                const int j = j0 + b * rowsAtOnce;
                if (j < len) loadHalves<W>(vBase + int64_t(j) * kvDim, vf[b]);
            }
#pragma unroll
            for (int b = 0; b < kBatch; ++b) {
                const int j = j0 + b * rowsAtOnce;
                if (j >= len) break;
#pragma unroll
                for (int g = 0; g < kAttnMaxGroup; ++g) {
                    if (g < G) {
                        const float e = scores[g * a.chunk + j];
#pragma unroll
                        for (int i = 0; i < W; ++i) acc[g][i] = fmaf(e, vf[b][i], acc[g][i]);
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < kAttnMaxGroup; ++g)
            if (g < G)
#pragma unroll
                for (int i = 0; i < W; ++i) atomicAdd(&o[g * hd + seg * W + i], acc[g][i]);
    }
    __syncthreads();

    // This block's partial, then the last block of this KV head combines them all.
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        const int g = i / hd, d = i % hd, h = kvh * G + g;
        a.partO[(int64_t(h) * a.nSplit + split) * hd + d] = o[i];
    }
    if (threadIdx.x == 0) {
#pragma unroll
        for (int g = 0; g < kAttnMaxGroup; ++g) {
            if (g < G) {
                const int h = kvh * G + g;
                a.partMl[(int64_t(h) * a.nSplit + split) * 2] = headMax[g];
                a.partMl[(int64_t(h) * a.nSplit + split) * 2 + 1] = headSum[g];
            }
        }
    }
    __threadfence();
    __syncthreads();
    if (threadIdx.x == 0) isLast = atomicAdd(&a.counters[kvh], 1u) == unsigned(active - 1);
    __syncthreads();
    if (!isLast) return;
    __threadfence();
    for (int i = threadIdx.x; i < G * hd; i += blockDim.x) {
        const int g = i / hd, d = i % hd, h = kvh * G + g;
        const float* ml = a.partMl + int64_t(h) * a.nSplit * 2;
        float m = -INFINITY;
        for (int s = 0; s < active; ++s) m = fmaxf(m, __ldcg(ml + 2 * s));
        float num = 0.f, den = 0.f;
        for (int s = 0; s < active; ++s) {
            const float w = __expf(__ldcg(ml + 2 * s) - m);
            num += w * __ldcg(a.partO + (int64_t(h) * a.nSplit + s) * hd + d);
            den += w * __ldcg(ml + 2 * s + 1);
        }
        a.out[h * hd + d] = num / den;
    }
    if (threadIdx.x == 0) a.counters[kvh] = 0;
}

} // namespace

void attentionDecodeSplit(int length, int nHeadKv, int multiprocessors, int& chunk, int& nSplit) {
    const int wantSplits = std::max(1, (4 * multiprocessors + nHeadKv - 1) / nHeadKv);
    chunk = (length + wantSplits - 1) / wantSplits;
    chunk = std::clamp((chunk + 31) / 32 * 32, 32, 512);
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
    const size_t shared = size_t(2 * G * a.headDim + G * a.chunk) * sizeof(float);
    auto run = [&](auto kernel) {
        if (shared > 48 * 1024)
            PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
        launchKernel(ctx, kernel, dim3(a.nHeadKv, a.nSplit), dim3(kAttnThreads), shared, "decode attention launch", a);
    };
    if (a.headDim == 128) run(attentionDecodeKernel<8, 128>);
    else if (a.headDim == 64) run(attentionDecodeKernel<8, 64>);
    else if (a.headDim % 8 == 0) run(attentionDecodeKernel<8, 0>);
    else if (a.headDim % 4 == 0) run(attentionDecodeKernel<4, 0>);
    else run(attentionDecodeKernel<2, 0>);
}

} // namespace parley::cuda
