#pragma once
// The C boundary of libparley_cuda.so. The engine never links the CUDA library: it dlopens it
// (engine/backend_registry.cpp) and looks these symbols up, so that a machine without a driver,
// a device or the CUDA libraries still runs Parley on the CPU. Plain C types only, so that the
// boundary does not depend on CUDA headers. The kernel-test entry points take host arrays, copy
// them to the device, poison the outputs, run one kernel and copy the results back; they exist
// so that tests/test_cuda_kernels.cpp can check each kernel alone against a CPU reference.
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PARLEY_CUDA_ABI_VERSION 2

// Every entry point that can fail returns 0 on success, or nonzero with a one-line message in
// err (errLen bytes, always terminated).
typedef struct ParleyCudaDevice {
    int index;
    char name[256];
    int computeMajor;
    int computeMinor;
    uint64_t freeBytes;
    uint64_t totalBytes;
    int multiprocessors;
} ParleyCudaDevice;

typedef struct ParleyCudaOptions {
    int device;              // CUDA device index
    int usePdl;              // programmatic dependent launch in the decode graph (sm_90+): 1 on
    int useGraphs;           // capture the decode step as a CUDA graph: 1 on
    int quantizeTo;          // -1: keep the precision the weights arrive in; 0 fp16, 1 int8, 2 int4:
                             // FP16 matrices are quantized on the device while loading
    int int8GroupSize;       // for quantizeTo / synthetic weights
    int int4GroupSize;
    int embeddingsOnHost;    // 1: an untied token embedding table stays in pinned host memory
    int kvCacheInt8;         // 1: the K/V cache holds 8-bit values with a scale per position and
                             // KV head (engine/kv_cache_format.h); 0: FP16
} ParleyCudaOptions;

typedef int (*ParleyCudaAbiVersionFn)(void);
typedef int (*ParleyCudaProbeFn)(ParleyCudaDevice* devices, int maxDevices, int* count, char* err, int errLen);
// Returns a parley::Backend* (created with new; the caller owns it), or null with err set.
typedef void* (*ParleyCudaCreateBackendFn)(const ParleyCudaOptions* options, char* err, int errLen);

int parley_cuda_abi_version(void);
int parley_cuda_probe(ParleyCudaDevice* devices, int maxDevices, int* count, char* err, int errLen);
void* parley_cuda_create_backend(const ParleyCudaOptions* options, char* err, int errLen);
// Device-to-device copy bandwidth of `bytes` buffers, the median of `repeats` timed copies,
// counting bytes read plus bytes written (as the decode roofline of DESIGN.md §6 does).
typedef int (*ParleyCudaCopyBandwidthFn)(int device, uint64_t bytes, int repeats, double* gbPerSecond, char* err, int errLen);
int parley_cuda_copy_bandwidth(int device, uint64_t bytes, int repeats, double* gbPerSecond, char* err, int errLen);

// One decode GEMV alone (parley-bench --gemv): a rows x cols matrix of random weights in
// `precision` (0 fp16, 1 int8, 2 int4; groupSize for 1 and 2), enough copies of it to spill
// the L2 cache, `launches` launches captured in one CUDA graph and timed with events. epilogue:
// 0 store, 1 residual add, 2 gate/up with SwiGLU (the RMSNorm fused), 3 QKV with rotary
// embedding and the K/V write (the RMSNorm fused; rows = 3 heads' worth, headDim given). Gives
// the microseconds a launch and the weight bytes (with scales) read a second, in GB/s.
typedef int (*ParleyCudaBenchGemvFn)(int device, int precision, int groupSize, int64_t rows, int64_t cols, int epilogue,
                                     int headDim, int launches, double* microseconds, double* gbPerSecond, char* err,
                                     int errLen);
int parley_cuda_bench_gemv(int device, int precision, int groupSize, int64_t rows, int64_t cols, int epilogue,
                           int headDim, int launches, double* microseconds, double* gbPerSecond, char* err, int errLen);

// ---- Single-kernel checks (tests/test_cuda_kernels.cpp) ----
// precision: 0 fp16, 1 int8, 2 int4. Weight arrays as in engine/weights.h (row-major).
// y[rows] = W x, or W (rmsnorm(x) * normWeight) when normWeight is not null.
int parley_cuda_test_gemv(int precision, int groupSize, int64_t rows, int64_t cols,
                          const uint16_t* f16, const int8_t* q8, const uint8_t* q4,
                          const uint16_t* scales, const uint16_t* mins,
                          const float* x, const float* normWeight, float eps, float* y,
                          char* err, int errLen);
// Same matrix through the prefill path (prefill_gemm.h's gemmRows): FP16 through cuBLAS; INT8/
// INT4 through the sm_90a kernel where it runs (*usedSm90 says whether it did), else
// dequantized into FP16 for cuBLAS. x: [n][cols] floats (rounded to half on the way in),
// y: [n][rows] out (and in, with PARLEY_GEMM_ACCUMULATE). Flags:
//   PARLEY_GEMM_DEQUANTIZE  the dequantize-then-cuBLAS path even where the sm_90a kernel runs
//   PARLEY_GEMM_HALF_OUT    half output into columns [8, 8 + rows) of rows + 16 wide rows, as
//                           the QKV parts are written; the other columns must keep their poison
//   PARLEY_GEMM_ACCUMULATE  add to y (beta = 1), as the residual projections do
#define PARLEY_GEMM_DEQUANTIZE 1
#define PARLEY_GEMM_HALF_OUT 2
#define PARLEY_GEMM_ACCUMULATE 4
//   PARLEY_GEMM_ADD_LATER   (float output) a split product's second half left to the caller
//                           (gemmRows' addLater) and added by the norm that follows it
//                           (launchAddRmsNormRowsHalf), as prefill does; *usedSm90 gets 2 added
//                           when that happened
#define PARLEY_GEMM_ADD_LATER 8
//   PARLEY_GEMM_SWIGLU      W's rows are [gate; up]: y [n][rows / 2] = silu(gate) * up as half
//                           (gemmGateUpSwiGlu); *usedSm90 gets 4 added where the sm_90a
//                           kernel's fused epilogue computed it
#define PARLEY_GEMM_SWIGLU 16
int parley_cuda_test_gemm(int precision, int groupSize, int64_t rows, int64_t cols, int n,
                          const uint16_t* f16, const int8_t* q8, const uint8_t* q4,
                          const uint16_t* scales, const uint16_t* mins,
                          const float* x, int flags, float* y, int* usedSm90, char* err, int errLen);
// Rows of x [n][dim] -> rmsnorm(x) * weight, as half, returned as floats. With addend [n][dim]
// (or null): x += addend first, the sum returned in xOut (launchAddRmsNormRowsHalf).
int parley_cuda_test_rmsnorm(int n, int dim, const float* x, const float* addend, const float* weight, float eps,
                             float* y, float* xOut, char* err, int errLen);
// Rotary embedding of qkv rows [n][qDim + 2 kvDim] at positions startPos.. (prefill kernel):
// writes q [n][qDim] and k, v [n][kvDim] (as the cache holds them), returned as floats.
int parley_cuda_test_rope(int n, int startPos, int nHead, int nHeadKv, int headDim, int neox,
                          const float* invFreq, const float* qkv, float* q, float* k, float* v,
                          char* err, int errLen);
// Decode attention: q [nHead][headDim] floats, cache k/v [length][nHeadKv*headDim] floats
// (rounded to half), out [nHead][headDim]. maxContext sizes the split of the sequence.
int parley_cuda_test_attention_decode(int nHead, int nHeadKv, int headDim, int length, int maxContext,
                                      const float* q, const float* k, const float* v, float* out,
                                      char* err, int errLen);
// Prefill attention: q [n][nHead*headDim] for positions startPos..startPos+n-1, cache k/v
// [startPos+n][kvDim]; out [n][nHead*headDim].
int parley_cuda_test_attention_prefill(int nHead, int nHeadKv, int headDim, int startPos, int n,
                                       const float* q, const float* k, const float* v, float* out,
                                       char* err, int errLen);
// The same three with the 8-bit cache (kernels/kv_cache.cuh; format in engine/kv_cache_format.h):
// k8/v8 [positions][kvDim] int8, kScale/vScale [positions][nHeadKv].
// Rope: k8/v8 and the scales of the n new positions come back.
int parley_cuda_test_rope_int8(int n, int startPos, int nHead, int nHeadKv, int headDim, int neox,
                               const float* invFreq, const float* qkv, float* q, int8_t* k8, float* kScale,
                               int8_t* v8, float* vScale, char* err, int errLen);
// Decode: rows 0..length-2 are given; the new token's K and V come as floats kNew/vNew [kvDim]
// (rounded to half on the way in), and the row the kernel quantizes from them comes back in
// row length-1 of k8, kScale, v8, vScale.
int parley_cuda_test_attention_decode_int8(int nHead, int nHeadKv, int headDim, int length, int maxContext,
                                           const float* q, int8_t* k8, float* kScale, int8_t* v8, float* vScale,
                                           const float* kNew, const float* vNew, float* out, char* err, int errLen);
// Prefill: rows 0..startPos+n-1 are given.
int parley_cuda_test_attention_prefill_int8(int nHead, int nHeadKv, int headDim, int startPos, int n,
                                            const float* q, const int8_t* k8, const float* kScale,
                                            const int8_t* v8, const float* vScale, float* out, char* err,
                                            int errLen);
// Sampling over logits [vocab]: returns the chosen id in *token. uniform in [0, 1).
int parley_cuda_test_sample(int vocab, const float* logits, float temperature, int topK, float topP,
                            float minP, float repeatPenalty, const int32_t* history, int historyCount,
                            float uniform, int32_t* token, char* err, int errLen);

#ifdef __cplusplus
}
#endif
