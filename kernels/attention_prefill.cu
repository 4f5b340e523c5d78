// Tensor-core causal attention for prefill. See attention_prefill.h.
#include "kernels/attention_prefill.h"

#include <mma.h>

namespace parley::cuda {

namespace {

using namespace nvcuda;

constexpr int kQueries = 64; // per block, 16 per warp
constexpr int kKeys = 32;    // per step
constexpr int kThreads = 128;

template <int HD>
struct PrefillLayout {
    static constexpr int ldq = HD + 8;     // halves; rows padded so rows do not share banks
    static constexpr int lds = kKeys + 4;  // floats
    static constexpr int ldp = kKeys + 8;  // halves
    static constexpr int ldo = HD + 4;     // floats
    static constexpr size_t qBytes = size_t(kQueries) * ldq * 2;
    static constexpr size_t kBytes = size_t(kKeys) * ldq * 2;
    static constexpr size_t sBytes = size_t(kQueries) * lds * 4;
    static constexpr size_t pBytes = size_t(kQueries) * ldp * 2;
    static constexpr size_t oBytes = size_t(kQueries) * ldo * 4;
    static constexpr size_t total = qBytes + 2 * kBytes + sBytes + pBytes + oBytes + 3 * kQueries * 4;
};

// Q8: K and V come from the 8-bit cache (kv_cache.cuh) and are turned into FP16 as their tile is
// copied into shared memory.
template <int HD, bool Q8>
__global__ void __launch_bounds__(kThreads) attentionPrefillKernel(AttentionPrefillArgs a) {
    using L = PrefillLayout<HD>;
    extern __shared__ __align__(128) unsigned char smem[];
    __half* Qs = reinterpret_cast<__half*>(smem);                        // [64][ldq]
    __half* Ks = reinterpret_cast<__half*>(smem + L::qBytes);            // [32][ldq]
    __half* Vs = reinterpret_cast<__half*>(smem + L::qBytes + L::kBytes);
    float* S = reinterpret_cast<float*>(smem + L::qBytes + 2 * L::kBytes);               // [64][lds]
    __half* P = reinterpret_cast<__half*>(smem + L::qBytes + 2 * L::kBytes + L::sBytes); // [64][ldp]
    float* O = reinterpret_cast<float*>(smem + L::qBytes + 2 * L::kBytes + L::sBytes + L::pBytes); // [64][ldo]
    float* rowM = O + kQueries * L::ldo;
    float* rowL = rowM + kQueries;
    float* rowAlpha = rowL + kQueries;

    pdlWait();
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int q0 = blockIdx.x * kQueries, h = blockIdx.y;
    const int kvh = h / (a.nHead / a.nHeadKv);
    const int qDim = a.nHead * HD, kvDim = a.nHeadKv * HD;
    const float scale = rsqrtf(float(HD));
    constexpr int vecPerRow = HD / 8;

    for (int i = threadIdx.x; i < kQueries * vecPerRow; i += kThreads) {
        const int r = i / vecPerRow, c = i % vecPerRow;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (q0 + r < a.n) v = *reinterpret_cast<const uint4*>(a.q + int64_t(q0 + r) * qDim + h * HD + c * 8);
        *reinterpret_cast<uint4*>(Qs + r * L::ldq + c * 8) = v;
    }
    for (int i = threadIdx.x; i < kQueries * L::ldo; i += kThreads) O[i] = 0.f;
    for (int i = threadIdx.x; i < kQueries; i += kThreads) {
        rowM[i] = -INFINITY;
        rowL[i] = 0.f;
    }
    const int kEnd = a.startPos + min(q0 + kQueries, a.n);

    for (int kt = 0; kt < kEnd; kt += kKeys) {
        __syncthreads();
        for (int i = threadIdx.x; i < kKeys * vecPerRow; i += kThreads) {
            const int r = i / vecPerRow, c = i % vecPerRow;
            uint4 kv = make_uint4(0, 0, 0, 0), vv = kv;
            if (kt + r < kEnd) {
                const int64_t off = int64_t(kt + r) * kvDim + kvh * HD + c * 8;
                if constexpr (Q8) {
                    const int64_t at = kvh * a.cache8.scaleStride + kt + r;
                    kv = int8x8ToHalves(*reinterpret_cast<const uint2*>(a.cache8.k + off), a.cache8.kScale[at]);
                    vv = int8x8ToHalves(*reinterpret_cast<const uint2*>(a.cache8.v + off), a.cache8.vScale[at]);
                } else {
                    kv = *reinterpret_cast<const uint4*>(a.k + off);
                    vv = *reinterpret_cast<const uint4*>(a.v + off);
                }
            }
            *reinterpret_cast<uint4*>(Ks + r * L::ldq + c * 8) = kv;
            *reinterpret_cast<uint4*>(Vs + r * L::ldq + c * 8) = vv;
        }
        __syncthreads();

        // S (16 x 32 per warp) = Q K^T
#pragma unroll
        for (int j = 0; j < kKeys / 16; ++j) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> s;
            wmma::fill_fragment(s, 0.f);
#pragma unroll
            for (int kk = 0; kk < HD / 16; ++kk) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> qa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> kb;
                wmma::load_matrix_sync(qa, Qs + warp * 16 * L::ldq + kk * 16, L::ldq);
                wmma::load_matrix_sync(kb, Ks + j * 16 * L::ldq + kk * 16, L::ldq);
                wmma::mma_sync(s, qa, kb, s);
            }
            wmma::store_matrix_sync(S + warp * 16 * L::lds + j * 16, s, L::lds, wmma::mem_row_major);
        }
        __syncwarp();

        // Online softmax, one row at a time, a key per lane.
        for (int r = 0; r < 16; ++r) {
            const int row = warp * 16 + r;
            const int qpos = a.startPos + q0 + row;
            const int kpos = kt + lane;
            float s = S[row * L::lds + lane] * scale;
            if (q0 + row >= a.n || kpos > qpos) s = -INFINITY;
            const float mOld = rowM[row];
            const float mNew = fmaxf(mOld, warpMax(s));
            float p = 0.f, alpha = 1.f;
            if (mNew != -INFINITY) {
                p = __expf(s - mNew);
                alpha = __expf(mOld - mNew);
            }
            const float l = warpSum(p);
            P[row * L::ldp + lane] = __float2half_rn(p);
            __syncwarp();
            if (lane == 0) {
                rowM[row] = mNew;
                rowL[row] = rowL[row] * alpha + l;
                rowAlpha[row] = alpha;
            }
        }
        __syncwarp();
        for (int r = 0; r < 16; ++r) {
            const int row = warp * 16 + r;
            const float alpha = rowAlpha[row];
            for (int d = lane; d < HD; d += 32) O[row * L::ldo + d] *= alpha;
        }
        __syncwarp();

        // O (16 x HD per warp) += P V
#pragma unroll
        for (int j = 0; j < HD / 16; ++j) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> o;
            wmma::load_matrix_sync(o, O + warp * 16 * L::ldo + j * 16, L::ldo, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < kKeys / 16; ++kk) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> pa;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::row_major> vb;
                wmma::load_matrix_sync(pa, P + warp * 16 * L::ldp + kk * 16, L::ldp);
                wmma::load_matrix_sync(vb, Vs + kk * 16 * L::ldq + j * 16, L::ldq);
                wmma::mma_sync(o, pa, vb, o);
            }
            wmma::store_matrix_sync(O + warp * 16 * L::ldo + j * 16, o, L::ldo, wmma::mem_row_major);
        }
        __syncwarp();
    }

    __syncwarp();
    for (int r = 0; r < 16; ++r) {
        const int row = warp * 16 + r;
        if (q0 + row >= a.n) break;
        const float inv = 1.f / rowL[row];
        for (int d = lane; d < HD; d += 32)
            a.out[int64_t(q0 + row) * qDim + h * HD + d] = __float2half_rn(O[row * L::ldo + d] * inv);
    }
}

// Any other head size (the small test models): one warp per query and head, keys one at a
// time with the same online softmax, lanes over the head's elements. Correct, not fast.
constexpr int kMaxSimpleHead = 256;
__global__ void attentionPrefillSimpleKernel(AttentionPrefillArgs a) {
    pdlWait();
    const int t = blockIdx.x, h = blockIdx.y, lane = threadIdx.x;
    const int hd = a.headDim, kvh = h / (a.nHead / a.nHeadKv);
    const int qDim = a.nHead * hd, kvDim = a.nHeadKv * hd;
    const int qpos = a.startPos + t;
    constexpr int kPer = kMaxSimpleHead / 32;
    float q[kPer], acc[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const int d = lane + 32 * i;
        q[i] = d < hd ? __half2float(a.q[int64_t(t) * qDim + h * hd + d]) : 0.f;
        acc[i] = 0.f;
    }
    const float scale = rsqrtf(float(hd));
    float m = -INFINITY, l = 0.f;
    for (int j = 0; j <= qpos; ++j) {
        const __half* k = a.k + int64_t(j) * kvDim + kvh * hd;
        float s = 0.f;
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
            const int d = lane + 32 * i;
            if (d < hd) s += q[i] * __half2float(k[d]);
        }
        s = warpSum(s) * scale;
        const float mNew = fmaxf(m, s), alpha = __expf(m - mNew), p = __expf(s - mNew);
        l = l * alpha + p;
        const __half* v = a.v + int64_t(j) * kvDim + kvh * hd;
#pragma unroll
        for (int i = 0; i < kPer; ++i) {
            const int d = lane + 32 * i;
            if (d < hd) acc[i] = acc[i] * alpha + p * __half2float(v[d]);
        }
        m = mNew;
    }
#pragma unroll
    for (int i = 0; i < kPer; ++i) {
        const int d = lane + 32 * i;
        if (d < hd) a.out[int64_t(t) * qDim + h * hd + d] = __float2half_rn(acc[i] / l);
    }
}

template <int HD, bool Q8>
void launchFor(const LaunchContext& ctx, const AttentionPrefillArgs& a) {
    const size_t shared = PrefillLayout<HD>::total;
    PARLEY_CUDA_CHECK(cudaFuncSetAttribute(attentionPrefillKernel<HD, Q8>, cudaFuncAttributeMaxDynamicSharedMemorySize, int(shared)));
    launchKernel(ctx, attentionPrefillKernel<HD, Q8>, dim3(unsigned(ceilDiv(a.n, kQueries)), a.nHead), dim3(kThreads),
                 shared, "prefill attention launch", a);
}

} // namespace

bool attentionPrefillSupports(int headDim) { return headDim > 0 && headDim <= kMaxSimpleHead; }

void launchAttentionPrefill(const LaunchContext& ctx, const AttentionPrefillArgs& a) {
    if (a.n <= 0) return;
    if (a.cache8.k) {
        switch (a.headDim) {
        case 64: launchFor<64, true>(ctx, a); return;
        case 128: launchFor<128, true>(ctx, a); return;
        default:
            throw Error("prefill attention: the 8-bit K/V cache needs a head size of 64 or 128 (this model: " +
                        std::to_string(a.headDim) + ")");
        }
    }
    switch (a.headDim) {
    case 64: launchFor<64, false>(ctx, a); break;
    case 96: launchFor<96, false>(ctx, a); break;
    case 128: launchFor<128, false>(ctx, a); break;
    default:
        if (!attentionPrefillSupports(a.headDim))
            throw Error("prefill attention: head size " + std::to_string(a.headDim) + " is not supported");
        launchKernel(ctx, attentionPrefillSimpleKernel, dim3(a.n, a.nHead), dim3(32), 0, "prefill attention launch", a);
    }
}

} // namespace parley::cuda
