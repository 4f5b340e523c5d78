// Token sampling on the device. See sampling.h.
#include "kernels/sampling.h"

namespace parley::cuda {

namespace {

constexpr int kSampleThreads = 1024;
constexpr int kBisectSteps = 32;

__device__ float blockSumAll(float v, float* scratch) {
    const float r = blockSum(v, scratch);
    __syncthreads();
    return r;
}

__global__ void __launch_bounds__(kSampleThreads) sampleKernel(float* logits, int vocab, const SampleParamsDevice* pp,
                                                               int32_t* token) {
    __shared__ float scratch[32];
    __shared__ float bestValue[32];
    __shared__ int bestIndex[32];
    __shared__ float prefix[kSampleThreads];
    pdlWait();
    pdlLaunchDependents();
    const SampleParamsDevice& p = *pp;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

    if (p.repeatPenalty != 1.f && tid == 0) {
        for (int i = 0; i < p.historyCount; ++i) {
            const int t = p.history[i];
            if (t < 0 || t >= vocab) continue;
            const float l = logits[t];
            logits[t] = l > 0.f ? l / p.repeatPenalty : l * p.repeatPenalty;
        }
    }
    __syncthreads();

    // Greedy pick: the maximum, lowest index on ties.
    float bv = -INFINITY;
    int bi = 0x7fffffff;
    for (int i = tid; i < vocab; i += kSampleThreads) {
        const float l = logits[i];
        if (l > bv) { bv = l; bi = i; } // i increases, so ties keep the lower index
    }
    for (int o = 16; o > 0; o >>= 1) {
        const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
    }
    if (lane == 0) { bestValue[warp] = bv; bestIndex[warp] = bi; }
    __syncthreads();
    if (warp == 0) {
        bv = bestValue[lane];
        bi = bestIndex[lane];
        for (int o = 16; o > 0; o >>= 1) {
            const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (ov > bv || (ov == bv && oi < bi)) { bv = ov; bi = oi; }
        }
        if (lane == 0) { bestValue[0] = bv; bestIndex[0] = bi; }
    }
    __syncthreads();
    const float maxLogit = bestValue[0];
    if (p.temperature <= 0.f || p.topK == 1 || !(maxLogit > -INFINITY)) {
        if (tid == 0) *token = bestIndex[0] == 0x7fffffff ? 0 : bestIndex[0];
        return;
    }

    // z = (l - max) / T <= 0; probabilities are proportional to exp(z).
    const float invT = 1.f / p.temperature;
    auto z = [&](int i) { return (logits[i] - maxLogit) * invT; };
    float zMin = 0.f;
    {
        float m = 0.f;
        for (int i = tid; i < vocab; i += kSampleThreads) m = fminf(m, z(i));
        m = -blockMax(-m, scratch);
        __syncthreads();
        zMin = fmaxf(m, -1e30f);
    }

    // Top-k: the largest threshold that still keeps at least k tokens.
    float thrK = zMin;
    if (p.topK > 0 && p.topK < vocab) {
        float lo = zMin, hi = 0.f; // count(z >= lo) >= k always; count(z >= hi) may be < k
        for (int step = 0; step < kBisectSteps; ++step) {
            const float mid = 0.5f * (lo + hi);
            float c = 0.f;
            for (int i = tid; i < vocab; i += kSampleThreads) c += z(i) >= mid ? 1.f : 0.f;
            c = blockSumAll(c, scratch);
            if (c >= float(p.topK)) lo = mid; else hi = mid;
        }
        thrK = lo;
    }
    // Top-p over the top-k set: the largest threshold whose kept mass is still >= topP of it.
    float thrP = thrK;
    if (p.topP < 1.f) {
        float mass = 0.f;
        for (int i = tid; i < vocab; i += kSampleThreads) {
            const float zi = z(i);
            mass += zi >= thrK ? __expf(zi) : 0.f;
        }
        mass = blockSumAll(mass, scratch);
        const float want = p.topP * mass;
        float lo = thrK, hi = 0.f;
        for (int step = 0; step < kBisectSteps; ++step) {
            const float mid = 0.5f * (lo + hi);
            float m = 0.f;
            for (int i = tid; i < vocab; i += kSampleThreads) {
                const float zi = z(i);
                m += zi >= mid ? __expf(zi) : 0.f;
            }
            m = blockSumAll(m, scratch);
            if (m >= want) lo = mid; else hi = mid;
        }
        thrP = lo;
    }
    // Min-p: p_i >= minP * p_max, i.e. z_i >= log(minP).
    const float thrMin = p.minP > 0.f ? logf(p.minP) : -INFINITY;
    const float thr = fmaxf(fmaxf(thrK, thrP), thrMin);

    // Inverse CDF in index order: each thread owns a contiguous range.
    const int per = (vocab + kSampleThreads - 1) / kSampleThreads;
    const int begin = min(vocab, tid * per), end = min(vocab, begin + per);
    float local = 0.f;
    for (int i = begin; i < end; ++i) {
        const float zi = z(i);
        local += zi >= thr ? __expf(zi) : 0.f;
    }
    prefix[tid] = local;
    __syncthreads();
    // Inclusive scan (Hillis-Steele) over the 1024 partial sums.
    for (int o = 1; o < kSampleThreads; o <<= 1) {
        const float add = tid >= o ? prefix[tid - o] : 0.f;
        __syncthreads();
        prefix[tid] += add;
        __syncthreads();
    }
    const float total = prefix[kSampleThreads - 1];
    const float target = p.uniform * total;
    const float before = tid ? prefix[tid - 1] : 0.f;
    if (tid == 0) *token = bestIndex[0]; // falls back to greedy if rounding leaves no owner
    __syncthreads();
    if (local > 0.f && target >= before && (target < prefix[tid] || tid == kSampleThreads - 1 ||
                                            prefix[tid] >= total)) {
        // The owner of the target; the last owner wins rounding ties at the very end.
        float run = before;
        int pick = -1;
        for (int i = begin; i < end; ++i) {
            const float zi = z(i);
            if (zi < thr) continue;
            pick = i;
            run += __expf(zi);
            if (run > target) break;
        }
        if (pick >= 0) *token = pick;
    }
}

} // namespace

void launchSample(const LaunchContext& ctx, float* logits, int vocab, const SampleParamsDevice* params, int32_t* token) {
    launchKernel(ctx, sampleKernel, dim3(1), dim3(kSampleThreads), 0, "sampling launch", logits, vocab, params, token);
}

} // namespace parley::cuda
