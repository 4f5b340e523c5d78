// Single-kernel entry points for tests/test_cuda_kernels.cpp (see cuda_api.h): host arrays in,
// device buffers with poisoned outputs (all bits set: NaN in float and half), one kernel, host
// arrays out. Each returns 0, or 1 with the error's message.
#include "kernels/attention_decode.h"
#include "kernels/attention_prefill.h"
#include "kernels/cuda_api.h"
#include "kernels/device_buffers.cuh"
#include "kernels/gemv.h"
#include "kernels/prefill_gemm.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"

#include <vector>

namespace parley::cuda {
namespace {

template <typename T> void download(T* host, const T* dev, size_t count) {
    PARLEY_CUDA_CHECK(cudaDeviceSynchronize());
    PARLEY_CUDA_CHECK(cudaMemcpy(host, dev, count * sizeof(T), cudaMemcpyDeviceToHost));
}

void halvesToFloats(const __half* dev, size_t count, float* host) {
    std::vector<__half> h(count);
    download(h.data(), dev, count);
    for (size_t i = 0; i < count; ++i) host[i] = __half2float(h[i]);
}

DeviceMatrix uploadMatrix(DeviceBuffers& b, int precision, int groupSize, int64_t rows, int64_t cols, const uint16_t* f16,
                          const int8_t* q8, const uint8_t* q4, const uint16_t* scales, const uint16_t* mins) {
    DeviceMatrix m;
    m.precision = Precision(precision);
    m.rows = rows;
    m.cols = cols;
    m.ld = precision == 0 ? (cols + 7) / 8 * 8 : cols;
    m.groupSize = precision == 0 ? 0 : groupSize;
    const size_t groups = precision == 0 ? 0 : size_t(rows * (cols / groupSize));
    if (precision == 0) {
        // Rows padded to whole 16-byte chunks with zeros, as the backend stores them.
        uint16_t* d = b.alloc<uint16_t>(size_t(rows * m.ld));
        PARLEY_CUDA_CHECK(cudaMemset(d, 0, size_t(rows * m.ld) * 2));
        PARLEY_CUDA_CHECK(cudaMemcpy2D(d, size_t(m.ld) * 2, f16, size_t(cols) * 2, size_t(cols) * 2, size_t(rows),
                                       cudaMemcpyHostToDevice));
        m.data = d;
    }
    else if (precision == 1) {
        m.data = b.upload(q8, size_t(rows * cols));
        m.scales = b.upload(scales, groups);
    } else {
        m.data = b.upload(q4, size_t(rows * cols / 2));
        std::vector<uint16_t> sm(groups * 2);
        for (size_t i = 0; i < groups; ++i) {
            sm[2 * i] = scales[i];
            sm[2 * i + 1] = mins[i];
        }
        m.scales = b.upload(sm.data(), sm.size());
    }
    return m;
}

// An 8-bit cache of `capacity` positions (poisoned), with rows 0..rows-1 from the host: values
// [rows][kvDim], scales [rows][nHeadKv] (the device keeps a head's scales adjacent).
KvCache8 uploadCache8(DeviceBuffers& b, int capacity, int rows, int nHeadKv, int headDim, const int8_t* k,
                      const float* kScale, const int8_t* v, const float* vScale) {
    const size_t kvDim = size_t(nHeadKv) * headDim;
    KvCache8 c;
    c.k = b.alloc<int8_t>(size_t(capacity) * kvDim, true);
    c.v = b.alloc<int8_t>(size_t(capacity) * kvDim, true);
    c.kScale = b.alloc<float>(size_t(capacity) * nHeadKv, true);
    c.vScale = b.alloc<float>(size_t(capacity) * nHeadKv, true);
    c.scaleStride = capacity;
    if (rows <= 0) return c;
    PARLEY_CUDA_CHECK(cudaMemcpy(c.k, k, size_t(rows) * kvDim, cudaMemcpyHostToDevice));
    PARLEY_CUDA_CHECK(cudaMemcpy(c.v, v, size_t(rows) * kvDim, cudaMemcpyHostToDevice));
    std::vector<float> ks(size_t(capacity) * nHeadKv, NAN), vs(ks.size(), NAN);
    for (int r = 0; r < rows; ++r)
        for (int h = 0; h < nHeadKv; ++h) {
            ks[size_t(h) * capacity + r] = kScale[size_t(r) * nHeadKv + h];
            vs[size_t(h) * capacity + r] = vScale[size_t(r) * nHeadKv + h];
        }
    PARLEY_CUDA_CHECK(cudaMemcpy(c.kScale, ks.data(), ks.size() * 4, cudaMemcpyHostToDevice));
    PARLEY_CUDA_CHECK(cudaMemcpy(c.vScale, vs.data(), vs.size() * 4, cudaMemcpyHostToDevice));
    return c;
}

// Rows first..first+rows-1 of an 8-bit cache back to the host, as uploadCache8 takes them.
void downloadCache8(const KvCache8& c, int first, int rows, int nHeadKv, int headDim, int8_t* k, float* kScale,
                    int8_t* v, float* vScale) {
    const size_t kvDim = size_t(nHeadKv) * headDim;
    PARLEY_CUDA_CHECK(cudaMemcpy(k, c.k + size_t(first) * kvDim, size_t(rows) * kvDim, cudaMemcpyDeviceToHost));
    PARLEY_CUDA_CHECK(cudaMemcpy(v, c.v + size_t(first) * kvDim, size_t(rows) * kvDim, cudaMemcpyDeviceToHost));
    for (int h = 0; h < nHeadKv; ++h) {
        std::vector<float> ks(static_cast<size_t>(rows)), vs(static_cast<size_t>(rows));
        PARLEY_CUDA_CHECK(cudaMemcpy(ks.data(), c.kScale + h * c.scaleStride + first, size_t(rows) * 4, cudaMemcpyDeviceToHost));
        PARLEY_CUDA_CHECK(cudaMemcpy(vs.data(), c.vScale + h * c.scaleStride + first, size_t(rows) * 4, cudaMemcpyDeviceToHost));
        for (int r = 0; r < rows; ++r) {
            kScale[size_t(r) * nHeadKv + h] = ks[r];
            vScale[size_t(r) * nHeadKv + h] = vs[r];
        }
    }
}


// The rotary-embedding kernel's arguments and its input rows, as both rope entry points take them.
RopeArgs ropeArgs(DeviceBuffers& b, int nHead, int nHeadKv, int headDim, int neox, const float* invFreq) {
    RopeArgs r;
    r.nHead = nHead;
    r.nHeadKv = nHeadKv;
    r.headDim = headDim;
    r.neox = neox != 0;
    r.invFreq = b.upload(invFreq, size_t(headDim / 2));
    return r;
}

// Decode attention's arguments for a new token at position length - 1, all but the cache: the
// split the backend would choose for maxContext, q, the poisoned output and the workspace.
AttentionDecodeArgs decodeArgs(DeviceBuffers& b, int nHead, int nHeadKv, int headDim, int length, int maxContext,
                               const float* q) {
    AttentionDecodeArgs a;
    a.nHead = nHead;
    a.nHeadKv = nHeadKv;
    a.headDim = headDim;
    attentionDecodeSplit(maxContext, nHeadKv, headDim, currentMultiprocessors(), a.chunk, a.nSplit);
    a.q = b.upload(q, size_t(nHead) * headDim);
    const int pos = length - 1;
    a.pos = b.upload(&pos, 1);
    a.out = b.alloc<float>(size_t(nHead) * headDim, true);
    float* ws = b.alloc<float>(attentionDecodeWorkspaceFloats(nHead, a.nSplit, headDim), true);
    a.partO = ws;
    a.partMl = ws + size_t(nHead) * a.nSplit * headDim;
    a.counters = b.alloc<unsigned>(size_t(nHeadKv));
    PARLEY_CUDA_CHECK(cudaMemset(a.counters, 0, size_t(nHeadKv) * 4));
    return a;
}

// Twice, the output poisoned again in between: the counters must come back to zero for the next
// launch.
void launchDecodeTwice(const AttentionDecodeArgs& a, float* out) {
    launchAttentionDecode(LaunchContext{}, a);
    PARLEY_CUDA_CHECK(cudaMemset(a.out, 0xff, size_t(a.nHead) * a.headDim * 4));
    launchAttentionDecode(LaunchContext{}, a);
    download(out, a.out, size_t(a.nHead) * a.headDim);
}

// Prefill attention's arguments, all but the cache: q for positions startPos .. startPos+n-1.
AttentionPrefillArgs prefillArgs(DeviceBuffers& b, int nHead, int nHeadKv, int headDim, int startPos, int n,
                                 const float* q) {
    AttentionPrefillArgs a;
    a.nHead = nHead;
    a.nHeadKv = nHeadKv;
    a.headDim = headDim;
    a.n = n;
    a.startPos = startPos;
    a.q = b.uploadAsHalf(q, size_t(n) * nHead * headDim);
    a.out = b.alloc<__half>(size_t(n) * nHead * headDim, true);
    return a;
}

} // namespace
} // namespace parley::cuda

using namespace parley::cuda;

extern "C" int parley_cuda_test_gemv(int precision, int groupSize, int64_t rows, int64_t cols, const uint16_t* f16,
                                     const int8_t* q8, const uint8_t* q4, const uint16_t* scales, const uint16_t* mins,
                                     const float* x, const float* normWeight, float eps, float* y, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        DeviceMatrix m = uploadMatrix(b, precision, groupSize, rows, cols, f16, q8, q4, scales, mins);
        GemvArgs a;
        a.x = b.upload(x, size_t(cols));
        if (normWeight) {
            double s = 0;
            for (int64_t i = 0; i < cols; ++i) s += double(x[i]) * x[i];
            const float ssq = float(s);
            a.normWeight = b.upload(normWeight, size_t(cols));
            a.ssq = b.upload(&ssq, 1);
            a.eps = eps;
        }
        a.logicalRows = int(rows);
        a.pairCount = gemvPairCount(GemvEpilogue::Store, int(rows));
        a.out = b.alloc<float>(size_t(rows), true);
        launchGemv(LaunchContext{}, m, GemvEpilogue::Store, a);
        download(y, a.out, size_t(rows));
    });
}

extern "C" int parley_cuda_test_gemm(int precision, int groupSize, int64_t rows, int64_t cols, int n, const uint16_t* f16,
                                     const int8_t* q8, const uint8_t* q4, const uint16_t* scales, const uint16_t* mins,
                                     const float* x, int flags, float* y, int* usedSm90, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        DeviceMatrix m = uploadMatrix(b, precision, groupSize, rows, cols, f16, q8, q4, scales, mins);
        GemmContext g;
        if (cublasCreate(&g.handle) != CUBLAS_STATUS_SUCCESS) throw parley::Error("cublasCreate failed");
        struct HandleGuard {
            cublasHandle_t h;
            ~HandleGuard() { cublasDestroy(h); }
        } hg{g.handle};
        int device = 0;
        PARLEY_CUDA_CHECK(cudaGetDevice(&device));
        cudaDeviceProp prop;
        PARLEY_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        g.quantizedSm90 = !(flags & PARLEY_GEMM_DEQUANTIZE) && quantizedGemmSm90Available(prop.major, prop.minor);
        *usedSm90 = int(precision != 0 && g.quantizedSm90 && !gemmNeedsScratch(g, m));
        if (g.quantizedSm90) {
            g.partialFloats = size_t(rows) * n;
            g.partial = b.alloc<float>(g.partialFloats);
        }
        // Scratch for two slabs of a third of the matrix, so that the slab loop runs more than once.
        g.scratchHalves = size_t(std::max<int64_t>(2 * cols, 2 * (rows / 3) * cols));
        g.scratch = b.alloc<__half>(g.scratchHalves);
        const __half* xd = b.uploadAsHalf(x, size_t(n) * cols);
        const float beta = (flags & PARLEY_GEMM_ACCUMULATE) ? 1.f : 0.f;
        if (flags & PARLEY_GEMM_SWIGLU) {
            __half* wide = b.alloc<__half>(size_t(n) * rows, true);
            __half* act = b.alloc<__half>(size_t(n) * (rows / 2), true);
            bool fused = false;
            gemmGateUpSwiGlu(LaunchContext{}, g, m, xd, n, wide, act, &fused);
            if (fused) *usedSm90 += 4;
            halvesToFloats(act, size_t(n) * (rows / 2), y);
        } else if (flags & PARLEY_GEMM_HALF_OUT) {
            const int64_t ldc = rows + 16, offset = 8;
            std::vector<__half> h(size_t(n * ldc), __ushort_as_half(0xffff));
            if (beta != 0.f)
                for (int64_t t = 0; t < n; ++t)
                    for (int64_t r = 0; r < rows; ++r) h[size_t(t * ldc + offset + r)] = __float2half_rn(y[t * rows + r]);
            __half* yd = b.upload(h.data(), h.size());
            gemmRows(LaunchContext{}, g, m, xd, n, yd, false, ldc, offset, beta);
            download(h.data(), yd, h.size());
            for (int64_t t = 0; t < n; ++t)
                for (int64_t col = 0; col < ldc; ++col) {
                    const bool inside = col >= offset && col < offset + rows;
                    if (inside) y[t * rows + col - offset] = __half2float(h[size_t(t * ldc + col)]);
                    else if (__half_as_ushort(h[size_t(t * ldc + col)]) != 0xffff)
                        throw parley::Error("column " + std::to_string(col) + " of token " + std::to_string(t) +
                                            " lies outside the matrix's rows and was written");
                }
        } else {
            float* yd = beta != 0.f ? b.upload(y, size_t(n) * rows) : b.alloc<float>(size_t(n) * rows, true);
            const float* addLater = nullptr;
            gemmRows(LaunchContext{}, g, m, xd, n, yd, true, rows, 0, beta,
                     (flags & PARLEY_GEMM_ADD_LATER) ? &addLater : nullptr);
            if (addLater) { // as prefill adds it: on the way into the next norm
                std::vector<float> ones(size_t(rows), 1.f);
                launchAddRmsNormRowsHalf(LaunchContext{}, yd, rows, addLater, b.upload(ones.data(), ones.size()), 1e-5f,
                                         n, int(rows), b.alloc<__half>(size_t(n) * rows));
                *usedSm90 += 2;
            }
            download(y, yd, size_t(n) * rows);
        }
    });
}

extern "C" int parley_cuda_test_rmsnorm(int n, int dim, const float* x, const float* addend, const float* weight,
                                        float eps, float* y, float* xOut, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        __half* out = b.alloc<__half>(size_t(n) * dim, true);
        float* xd = b.upload(x, size_t(n) * dim);
        if (addend) {
            launchAddRmsNormRowsHalf(LaunchContext{}, xd, dim, b.upload(addend, size_t(n) * dim),
                                     b.upload(weight, size_t(dim)), eps, n, dim, out);
            download(xOut, xd, size_t(n) * dim);
        } else {
            launchRmsNormRowsHalf(LaunchContext{}, xd, dim, b.upload(weight, size_t(dim)), eps, n, dim, out);
        }
        halvesToFloats(out, size_t(n) * dim, y);
    });
}

extern "C" int parley_cuda_test_rope(int n, int startPos, int nHead, int nHeadKv, int headDim, int neox,
                                     const float* invFreq, const float* qkv, float* q, float* k, float* v, char* err,
                                     int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        const int qDim = nHead * headDim, kvDim = nHeadKv * headDim;
        const RopeArgs r = ropeArgs(b, nHead, nHeadKv, headDim, neox, invFreq);
        const __half* in = b.uploadAsHalf(qkv, size_t(n) * (qDim + 2 * kvDim));
        __half* qd = b.alloc<__half>(size_t(n) * qDim, true);
        __half* kc = b.alloc<__half>(size_t(startPos + n) * kvDim, true);
        __half* vc = b.alloc<__half>(size_t(startPos + n) * kvDim, true);
        launchRopeAndStore(LaunchContext{}, r, in, n, startPos, qd, kc, vc);
        halvesToFloats(qd, size_t(n) * qDim, q);
        halvesToFloats(kc + size_t(startPos) * kvDim, size_t(n) * kvDim, k);
        halvesToFloats(vc + size_t(startPos) * kvDim, size_t(n) * kvDim, v);
    });
}

extern "C" int parley_cuda_test_rope_int8(int n, int startPos, int nHead, int nHeadKv, int headDim, int neox,
                                          const float* invFreq, const float* qkv, float* q, int8_t* k8, float* kScale,
                                          int8_t* v8, float* vScale, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        const int qDim = nHead * headDim, kvDim = nHeadKv * headDim;
        const RopeArgs r = ropeArgs(b, nHead, nHeadKv, headDim, neox, invFreq);
        const __half* in = b.uploadAsHalf(qkv, size_t(n) * (qDim + 2 * kvDim));
        __half* qd = b.alloc<__half>(size_t(n) * qDim, true);
        const KvCache8 c = uploadCache8(b, startPos + n + 16, 0, nHeadKv, headDim, nullptr, nullptr, nullptr, nullptr);
        launchRopeAndStore8(LaunchContext{}, r, in, n, startPos, qd, c);
        halvesToFloats(qd, size_t(n) * qDim, q);
        downloadCache8(c, startPos, n, nHeadKv, headDim, k8, kScale, v8, vScale);
    });
}

extern "C" int parley_cuda_test_attention_decode(int nHead, int nHeadKv, int headDim, int length, int maxContext,
                                                 const float* q, const float* k, const float* v, float* out, char* err,
                                                 int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        const int kvDim = nHeadKv * headDim;
        AttentionDecodeArgs a = decodeArgs(b, nHead, nHeadKv, headDim, length, maxContext, q);
        // The cache holds maxContext rows; the rows past `length` are poison and must not be read.
        __half* kc = b.alloc<__half>(size_t(maxContext) * kvDim, true);
        __half* vc = b.alloc<__half>(size_t(maxContext) * kvDim, true);
        const __half* kh = b.uploadAsHalf(k, size_t(length) * kvDim);
        const __half* vh = b.uploadAsHalf(v, size_t(length) * kvDim);
        PARLEY_CUDA_CHECK(cudaMemcpy(kc, kh, size_t(length) * kvDim * 2, cudaMemcpyDeviceToDevice));
        PARLEY_CUDA_CHECK(cudaMemcpy(vc, vh, size_t(length) * kvDim * 2, cudaMemcpyDeviceToDevice));
        a.k = kc;
        a.v = vc;
        launchDecodeTwice(a, out);
    });
}

extern "C" int parley_cuda_test_attention_decode_int8(int nHead, int nHeadKv, int headDim, int length, int maxContext,
                                                      const float* q, int8_t* k8, float* kScale, int8_t* v8,
                                                      float* vScale, const float* kNew, const float* vNew, float* out,
                                                      char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        const int kvDim = nHeadKv * headDim, pos = length - 1;
        AttentionDecodeArgs a = decodeArgs(b, nHead, nHeadKv, headDim, length, maxContext, q);
        // Rows past length - 1 (the new one included) are poison: the kernel writes the new row.
        a.cache8 = uploadCache8(b, maxContext, length - 1, nHeadKv, headDim, k8, kScale, v8, vScale);
        a.k = b.uploadAsHalf(kNew, size_t(kvDim));
        a.v = b.uploadAsHalf(vNew, size_t(kvDim));
        launchDecodeTwice(a, out);
        downloadCache8(a.cache8, pos, 1, nHeadKv, headDim, k8 + size_t(pos) * kvDim, kScale + size_t(pos) * nHeadKv,
                       v8 + size_t(pos) * kvDim, vScale + size_t(pos) * nHeadKv);
    });
}

extern "C" int parley_cuda_test_attention_prefill(int nHead, int nHeadKv, int headDim, int startPos, int n, const float* q,
                                                  const float* k, const float* v, float* out, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        const int kvDim = nHeadKv * headDim, length = startPos + n;
        AttentionPrefillArgs a = prefillArgs(b, nHead, nHeadKv, headDim, startPos, n, q);
        // Poisoned rows after the sequence: attention must not read past the last position.
        __half* kc = b.alloc<__half>(size_t(length + 64) * kvDim, true);
        __half* vc = b.alloc<__half>(size_t(length + 64) * kvDim, true);
        PARLEY_CUDA_CHECK(cudaMemcpy(kc, b.uploadAsHalf(k, size_t(length) * kvDim), size_t(length) * kvDim * 2, cudaMemcpyDeviceToDevice));
        PARLEY_CUDA_CHECK(cudaMemcpy(vc, b.uploadAsHalf(v, size_t(length) * kvDim), size_t(length) * kvDim * 2, cudaMemcpyDeviceToDevice));
        a.k = kc;
        a.v = vc;
        launchAttentionPrefill(LaunchContext{}, a);
        halvesToFloats(a.out, size_t(n) * nHead * headDim, out);
    });
}

extern "C" int parley_cuda_test_attention_prefill_int8(int nHead, int nHeadKv, int headDim, int startPos, int n,
                                                       const float* q, const int8_t* k8, const float* kScale,
                                                       const int8_t* v8, const float* vScale, float* out, char* err,
                                                       int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        const int length = startPos + n;
        AttentionPrefillArgs a = prefillArgs(b, nHead, nHeadKv, headDim, startPos, n, q);
        // Poisoned rows after the sequence: attention must not read past the last position.
        a.cache8 = uploadCache8(b, length + 64, length, nHeadKv, headDim, k8, kScale, v8, vScale);
        launchAttentionPrefill(LaunchContext{}, a);
        halvesToFloats(a.out, size_t(n) * nHead * headDim, out);
    });
}

extern "C" int parley_cuda_test_sample(int vocab, const float* logits, float temperature, int topK, float topP, float minP,
                                       float repeatPenalty, const int32_t* history, int historyCount, float uniform,
                                       int32_t* token, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        DeviceBuffers b;
        SampleParamsDevice p;
        p.temperature = temperature;
        p.topK = topK;
        p.topP = topP;
        p.minP = minP;
        p.repeatPenalty = repeatPenalty;
        p.uniform = uniform;
        p.historyCount = std::min(historyCount, kMaxSampleHistory);
        for (int i = 0; i < p.historyCount; ++i) p.history[i] = history[i];
        float* l = b.upload(logits, size_t(vocab));
        int32_t* t = b.alloc<int32_t>(1, true);
        launchSample(LaunchContext{}, l, vocab, b.upload(&p, 1), t);
        download(token, t, 1);
    });
}
