// parley_cuda_bench_gemv (cuda_api.h): one decode GEMV timed alone, so that the kernel's own
// bandwidth can be told apart from what the decode step adds around it (launch gaps, the small
// kernels between the projections). The matrix is repeated until the copies exceed twice the L2
// cache, and consecutive launches read consecutive copies, so every launch streams from DRAM as
// decode does. Launches are captured in a CUDA graph (as the decode step is) with programmatic
// dependent launch on sm_90+, and timed with events after one warm-up replay.
#include "kernels/cuda_api.h"
#include "kernels/device_buffers.cuh"
#include "kernels/gemv.h"
#include "kernels/quantize.h"

#include <vector>

using namespace parley::cuda;

namespace {

// The stream, graph and events of one timing, released when it goes.
struct GraphTiming {
    cudaStream_t stream = nullptr;
    cudaGraph_t graph = nullptr;
    cudaGraphExec_t exec = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    ~GraphTiming() {
        if (exec) cudaGraphExecDestroy(exec);
        if (graph) cudaGraphDestroy(graph);
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (stream) cudaStreamDestroy(stream);
    }
};

} // namespace

extern "C" int parley_cuda_bench_gemv(int device, int precision, int groupSize, int64_t rows, int64_t cols,
                                      int epilogue, int headDim, int launches, double* microseconds,
                                      double* gbPerSecond, char* err, int errLen) {
    return reportErrors(err, errLen, [&] {
        PARLEY_CUDA_CHECK(cudaSetDevice(device));
        DeviceBuffers b;
        GraphTiming t;
        cudaDeviceProp prop{};
        PARLEY_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
        PARLEY_CUDA_CHECK(cudaStreamCreateWithFlags(&t.stream, cudaStreamNonBlocking));
        const cudaStream_t stream = t.stream;
        LaunchContext ctx{stream, prop.major >= 9};

        DeviceMatrix proto;
        proto.precision = parley::Precision(precision);
        proto.rows = rows;
        proto.cols = cols;
        proto.ld = precision == 0 ? (cols + 7) / 8 * 8 : cols;
        proto.groupSize = precision == 0 ? 0 : groupSize;
        const int copies = int(std::max<int64_t>(2, ceilDiv(int64_t(prop.l2CacheSize) * 2, int64_t(proto.bytes()))));
        __half* staging = precision == 0 ? nullptr : b.alloc<__half>(size_t(rows * cols));
        std::vector<DeviceMatrix> m(copies, proto);
        for (int i = 0; i < copies; ++i) {
            m[i].data = b.alloc<uint8_t>(size_t(proto.dataBytes()));
            if (precision == 0) {
                launchRandomHalf(ctx, static_cast<__half*>(m[i].data), rows * proto.ld, 7 + i, 0, 0.05f);
            } else {
                m[i].scales = b.alloc<uint8_t>(size_t(proto.scaleBytes()));
                launchRandomHalf(ctx, staging, rows * cols, 7 + i, 0, 0.05f);
                launchQuantizeRows(ctx, staging, rows, m[i], 0);
            }
        }
        float* x = b.alloc<float>(size_t(cols));
        float* y = b.alloc<float>(size_t(rows));
        launchRandomFloat(ctx, x, cols, 3, 0.f, 1.f);
        PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream));

        // The epilogue's own inputs and outputs, as the decode step gives them.
        const GemvEpilogue e = GemvEpilogue(epilogue);
        GemvArgs a;
        a.x = x;
        a.out = y;
        a.logicalRows = int(rows);
        a.pairCount = gemvPairCount(e, int(rows));
        if (e == GemvEpilogue::Qkv || e == GemvEpilogue::GateUp) {
            float* norm = b.alloc<float>(size_t(cols));
            float* ssq = b.alloc<float>(1);
            launchRandomFloat(ctx, norm, cols, 4, 1.f, 0.5f);
            launchRandomFloat(ctx, ssq, 1, 5, float(cols), 0.5f);
            a.normWeight = norm;
            a.ssq = ssq;
        }
        if (e == GemvEpilogue::Residual) {
            a.resid = y;
            a.ssqOut = b.alloc<float>(1);
        } else if (e == GemvEpilogue::GateUp) {
            a.nFf = int(rows / 2);
        } else if (e == GemvEpilogue::Qkv) {
            if (headDim <= 0 || rows % 3 || (rows / 3) % headDim) throw parley::Error("GEMV bench: a QKV matrix of " + std::to_string(rows) + " rows does not split into heads of " + std::to_string(headDim));
            a.qDim = a.kvDim = int(rows / 3);
            a.headDim = headDim;
            a.qOut = y;
            a.kCache = b.alloc<__half>(size_t(a.kvDim));
            a.vCache = b.alloc<__half>(size_t(a.kvDim));
            int* pos = b.alloc<int>(1);
            PARLEY_CUDA_CHECK(cudaMemsetAsync(pos, 0, 4, stream));
            a.pos = pos;
            float* invFreq = b.alloc<float>(size_t(headDim / 2));
            launchRandomFloat(ctx, invFreq, headDim / 2, 6, 0.5f, 0.5f);
            a.invFreq = invFreq;
        }
        PARLEY_CUDA_CHECK(cudaStreamSynchronize(stream));
        PARLEY_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
        for (int i = 0; i < launches; ++i) launchGemv(ctx, m[i % copies], e, a);
        PARLEY_CUDA_CHECK(cudaStreamEndCapture(stream, &t.graph));
        PARLEY_CUDA_CHECK(cudaGraphInstantiate(&t.exec, t.graph, 0));
        PARLEY_CUDA_CHECK(cudaEventCreate(&t.start));
        PARLEY_CUDA_CHECK(cudaEventCreate(&t.stop));
        PARLEY_CUDA_CHECK(cudaGraphLaunch(t.exec, stream));
        PARLEY_CUDA_CHECK(cudaEventRecord(t.start, stream));
        PARLEY_CUDA_CHECK(cudaGraphLaunch(t.exec, stream));
        PARLEY_CUDA_CHECK(cudaEventRecord(t.stop, stream));
        PARLEY_CUDA_CHECK(cudaEventSynchronize(t.stop));
        float ms = 0;
        PARLEY_CUDA_CHECK(cudaEventElapsedTime(&ms, t.start, t.stop));
        *microseconds = 1e3 * ms / launches;
        *gbPerSecond = double(proto.bytes()) / (*microseconds * 1e3);
    });
}
