// Quantized-weight prefill GEMM on sm_90a. See gemm_quantized_sm90a.h.
//
// Both kernels compute the product transposed, C^T = W X^T, so that the quantized weights are
// wgmma's A operand (M = weight rows) and the activations its B (N = tokens), read from shared
// memory in the 128-byte swizzled K-major layout of a wgmma descriptor (16-byte chunk j of row t
// at chunk j ^ (t % 8)). A block owns 128 weight rows (two warpgroups of 64, wgmma's M) and walks
// K in tiles of 64 columns. The weights are converted to FP16 with the same operations, in the
// same order, as the dequantization kernel (quantize.cu), so the tensor cores see bit for bit
// the weights the cuBLAS path multiplies. Two kernels (both after CUTLASS 3's Hopper mainloops):
//   - quantizedGemmKernel, for up to 128 tokens: each warpgroup converts its own rows in
//     registers into wgmma's A fragment (register-sourced wgmma); cp.async brings each tile's
//     activations, weight bytes and scales into a ring of shared-memory stages.
//   - ws::quantizedGemmWsKernel, for more tokens: warp-specialized, 256 tokens a block, with TMA,
//     a converter warpgroup and both operands in shared memory (see there); it can also take the
//     gate/up projection with SwiGLU in its epilogue (QuantizedGemmArgs::swiGluFf).
// Measured on an H100 (docs/benchmarks.md): 7B-shape INT8/INT4 prefill of 512 tokens at 0.84-0.85x
// of FP16 through cuBLAS (with the split's add in the norm and SwiGLU in the epilogue), against
// 0.67-0.72x for dequantize-then-cuBLAS.
#include "kernels/gemm_quantized_sm90a.h"
#include "kernels/dequant.cuh"
#include "kernels/sm90a_ptx.cuh"
#include "kernels/swiglu.h"

#include <cudaTypedefs.h>

#include <algorithm>
#include <string>

namespace parley::cuda {

namespace {

using namespace sm90a;

constexpr int kRowsPerBlock = 128; // 64 weight rows a warpgroup (wgmma's M)
constexpr int kTileK = 64;         // one 128-byte swizzle row of FP16 activations

struct QuantizedGemmArgs {
    const uint8_t* w;     // [rows][cols] INT8 or [rows][cols / 2] INT4
    const uint8_t* scales; // half [rows][groups] (INT8) or half2 (scale, min) [rows][groups] (INT4)
    int rows;
    int cols;
    int groupsPerRow;
    int groupLog2;
    const __half* x;      // [n][cols]
    int n;
    void* c;              // [n][ldc]
    int64_t ldc;
    int64_t rowOffset;
    float beta;
    // Split over K in two (ws kernel, float output): blockIdx.z 1 takes tiles [splitTiles, end)
    // and writes its sums to `partial` [n][rows]; addPartialsKernel adds them to C afterwards,
    // so that the order of the sum never changes and no block waits for another.
    int splitTiles = 0;
    float* partial = nullptr;
    // Gate/up with SwiGLU (ws kernel): the rows are [gate; up], swiGluFf each; a block takes gate
    // rows [g0, g0 + 64) and the same up rows (its tile's rows 0-63 and 64-127) and writes
    // silu(gate) * up, half, into C columns [g0, g0 + 64). 0: a plain product.
    int swiGluFf = 0;
};


// The epilogue, through shared memory so that global memory sees whole 16-byte pieces of each
// token's row: the accumulators (wgmma's m64nNk16 f32 layout: d[4j + e] is row g, token
// 8j + 2c + e; d[4j + 2 + e] is row g + 8) go to a [token][row] float tile (rows padded to 132
// floats: the 32 lanes' writes hit distinct banks), then each thread of the block takes 4 rows of
// a token. `out` may alias the ring: the caller has synchronized; threads without accumulators
// pass hasAccumulators false and only help with the stores.
constexpr int kOutStride = kRowsPerBlock + 4;

template <int kTokens>
__device__ __forceinline__ void stageAccumulators(float* out, const float (&d)[kTokens / 2], int rowA, int c,
                                                  bool hasAccumulators) {
    if (hasAccumulators) {
#pragma unroll
        for (int j = 0; j < kTokens / 8; ++j)
#pragma unroll
            for (int e = 0; e < 2; ++e)
#pragma unroll
                for (int h = 0; h < 2; ++h) out[(8 * j + 2 * c + e) * kOutStride + rowA + 8 * h] = d[4 * j + 2 * h + e];
    }
    __syncthreads();
}

template <bool kFloatOut, int kTokens>
__device__ __forceinline__ void storeTile(const QuantizedGemmArgs& a, float* out, const float (&d)[kTokens / 2], int rowA,
                                          int c, int row0, int tok0, bool hasAccumulators) {
    stageAccumulators<kTokens>(out, d, rowA, c, hasAccumulators);
    const bool vectors = a.ldc % 4 == 0 && (a.rowOffset + row0) % 4 == 0 &&
                         reinterpret_cast<uintptr_t>(a.c) % (kFloatOut ? 16 : 8) == 0;
    for (int i = threadIdx.x; i < kTokens * kRowsPerBlock / 4; i += blockDim.x) {
        const int t = i / (kRowsPerBlock / 4), r = (i % (kRowsPerBlock / 4)) * 4;
        if (tok0 + t >= a.n) break; // i grows with t
        const float4 v = *reinterpret_cast<const float4*>(out + t * kOutStride + r);
        const int64_t at = int64_t(tok0 + t) * a.ldc + a.rowOffset + row0 + r;
        const float vs[4] = {v.x, v.y, v.z, v.w};
        if (vectors && row0 + r + 3 < a.rows) {
            if constexpr (kFloatOut) {
                float4* p = reinterpret_cast<float4*>(static_cast<float*>(a.c) + at);
                if (a.beta != 0.f) {
                    const float4 old = *p;
                    *p = make_float4(a.beta * old.x + v.x, a.beta * old.y + v.y, a.beta * old.z + v.z, a.beta * old.w + v.w);
                } else {
                    *p = v;
                }
            } else {
                uint2* p = reinterpret_cast<uint2*>(static_cast<__half*>(a.c) + at);
                float o[4] = {0.f, 0.f, 0.f, 0.f};
                if (a.beta != 0.f) {
                    const uint2 old = *p;
                    const float2 o0 = __half22float2(halvesOf(old.x)), o1 = __half22float2(halvesOf(old.y));
                    o[0] = a.beta * o0.x, o[1] = a.beta * o0.y, o[2] = a.beta * o1.x, o[3] = a.beta * o1.y;
                }
                *p = make_uint2(bitsOf(__floats2half2_rn(o[0] + vs[0], o[1] + vs[1])),
                                bitsOf(__floats2half2_rn(o[2] + vs[2], o[3] + vs[3])));
            }
        } else {
            for (int k = 0; k < 4 && row0 + r + k < a.rows; ++k) {
                if constexpr (kFloatOut) {
                    float* p = static_cast<float*>(a.c) + at + k;
                    *p = a.beta != 0.f ? a.beta * *p + vs[k] : vs[k];
                } else {
                    __half* p = static_cast<__half*>(a.c) + at + k;
                    *p = __float2half_rn(a.beta != 0.f ? a.beta * __half2float(*p) + vs[k] : vs[k]);
                }
            }
        }
    }
}

// Byte c of an INT4 word (weights 2c, 2c + 1) as a half2, scale * q + min rounded once: the low
// nibble to bits 0-3, the high one (byte c of w >> 4) to bits 16-19, FP16's exponent of 1024
// or-ed in, 1024 taken off exactly — the dequantization kernel's arithmetic.
__device__ __forceinline__ uint32_t int4ByteToHalf2(uint32_t w, uint32_t select, __half2 scale, __half2 minimum) {
    const uint32_t bits = (__byte_perm(w, w >> 4, select) & 0x000F000Fu) | 0x64006400u;
    return bitsOf(__hfma2(__hsub2(halvesOf(bits), halvesOf(0x64006400u)), scale, minimum));
}

// Two int8 weights as a half2 times the scale: one byte permute brings them (from the step's
// two words lo, hi) to bytes 0 and 2; one LOP3 clears bytes 1 and 3 and xors in 0x64 there and
// 0x80 below, which makes each half 1024 + 128 + q exactly; 1152 taken off, one multiply rounded
// once — equal to rounding the float product once, as the dequantization kernel does.
__device__ __forceinline__ uint32_t int8PairToHalf2(uint32_t lo, uint32_t hi, uint32_t select, __half2 scale) {
    const uint32_t bits = (__byte_perm(lo, hi, select) & 0x00FF00FFu) ^ 0x64806480u;
    return bitsOf(__hmul2(__hsub2(halvesOf(bits), halvesOf(0x64806480u)), scale));
}

// ---- Register-sourced kernel (up to 128 tokens) ------------------------------------------------
//
// Per tile, cp.async brings the 128 tokens' activations, the 128 rows' weight bytes (INT4 32 a
// row, INT8 64) and the scales of the groups the tile touches into one of four stages; tile
// k + 2 loads while tile k is converted and tile k - 1's wgmmas may still run. wgmma's A layout
// gives lane (g, c) of warp w the columns 2c, 2c + 1 and 2c + 8, 2c + 9 of each 16-column step
// for rows 16w + g and 16w + g + 8: byte c of each INT4 word, halfword c of each INT8 pair.
constexpr int kThreads = 256;       // two warpgroups
constexpr int kStages = 4;
constexpr int kTokensPerBlock = 128; // wgmma's N
constexpr int kScaleSlotBytes = 16;  // a row's scales for one tile

// The gate/up epilogue (a.swiGluFf): tile rows r and r + 64 are gate and up of output column
// g0 + r. Each is rounded to half, as the plain product stores them, and combined as
// swiglu.cu's kernel does, so that the result is the same bits as the two steps.
template <int kTokens>
__device__ __forceinline__ void storeTileSwiGlu(const QuantizedGemmArgs& a, float* out, const float (&d)[kTokens / 2],
                                                int rowA, int c, int g0, int tok0, bool hasAccumulators) {
    stageAccumulators<kTokens>(out, d, rowA, c, hasAccumulators);
    constexpr int kHalfRows = kRowsPerBlock / 2;
    for (int i = threadIdx.x; i < kTokens * kHalfRows / 4; i += blockDim.x) {
        const int t = i / (kHalfRows / 4), r = (i % (kHalfRows / 4)) * 4;
        if (tok0 + t >= a.n) break; // i grows with t
        const float4 g = *reinterpret_cast<const float4*>(out + t * kOutStride + r);
        const float4 u = *reinterpret_cast<const float4*>(out + t * kOutStride + kHalfRows + r);
        auto act = [](float gate, float up) {
            return silu(__half2float(__float2half_rn(gate))) * __half2float(__float2half_rn(up));
        };
        __half* p = static_cast<__half*>(a.c) + int64_t(tok0 + t) * a.ldc + g0 + r;
        *reinterpret_cast<uint2*>(p) = make_uint2(bitsOf(__floats2half2_rn(act(g.x, u.x), act(g.y, u.y))),
                                                  bitsOf(__floats2half2_rn(act(g.z, u.z), act(g.w, u.w))));
    }
}

template <Precision P>
struct TileShape {
    static constexpr int kXBytes = kTokensPerBlock * kTileK * 2; // 16 KiB: whole 1 KiB swizzle atoms
    static constexpr int kRowBytes = P == Precision::INT4 ? kTileK / 2 : kTileK;
    static constexpr int kRowStride = kRowBytes + 16; // padded so that 8 rows' 16-byte loads hit distinct banks
    static constexpr int kWBytes = kRowsPerBlock * kRowStride;
    static constexpr int kStageBytes = kXBytes + kWBytes + kRowsPerBlock * kScaleSlotBytes;
    static constexpr int kRingBytes = kStages * kStageBytes;
    static constexpr int kOutBytes = kTokensPerBlock * (kRowsPerBlock + 4) * 4; // the epilogue's tile
    static constexpr int kSharedBytes = (kRingBytes > kOutBytes ? kRingBytes : kOutBytes) + 1024; // + alignment
};

template <Precision P, bool kFloatOut, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) quantizedGemmKernel(const QuantizedGemmArgs a) {
    using Shape = TileShape<P>;
    constexpr int kXBytes = Shape::kXBytes;
    extern __shared__ uint8_t sharedRaw[];
    // Swizzled tiles must start on the 1 KiB swizzle atom.
    const uint32_t rawAddress = sharedAddress(sharedRaw);
    const uint32_t xBase = (rawAddress + 1023u) & ~1023u;
    uint8_t* const shared = sharedRaw + (xBase - rawAddress);
    const uint32_t wBase = xBase + kStages * kXBytes;
    const uint32_t sBase = wBase + kStages * Shape::kWBytes;
    const uint8_t* const wShared = shared + kStages * kXBytes;
    const uint8_t* const sShared = wShared + kStages * Shape::kWBytes;

    const int tid = threadIdx.x;
    const int row0 = blockIdx.x * kRowsPerBlock, tok0 = blockIdx.y * kTokensPerBlock;
    const int tiles = a.cols / kTileK;
    const int groupsPerTile = a.groupLog2 == 5 ? 2 : 1; // groups of 32 or of at least 64

    // This thread's share of each tile's cp.asyncs, addresses worked out once. Rows past the
    // matrix and tokens past n read the last real one (their results are not stored).
    constexpr int kXCopies = kTokensPerBlock * 8 / kThreads;
    constexpr int kChunksPerRow = Shape::kRowBytes / 16;
    constexpr int kWCopies = kRowsPerBlock * kChunksPerRow / kThreads;
    const __half* xSrc[kXCopies];
    uint32_t xDst[kXCopies];
#pragma unroll
    for (int m = 0; m < kXCopies; ++m) {
        const int q = tid + m * kThreads, t = q >> 3, j = q & 7;
        xSrc[m] = a.x + int64_t(min(tok0 + t, a.n - 1)) * a.cols + j * 8;
        xDst[m] = uint32_t(t * 128 + ((j ^ (t & 7)) << 4));
    }
    const uint8_t* wSrc[kWCopies];
    uint32_t wDst[kWCopies];
#pragma unroll
    for (int m = 0; m < kWCopies; ++m) {
        const int q = tid + m * kThreads, r = q / kChunksPerRow, j = q % kChunksPerRow;
        wSrc[m] = a.w + int64_t(min(row0 + r, a.rows - 1)) * (a.cols / (P == Precision::INT4 ? 2 : 1)) + j * 16;
        wDst[m] = uint32_t(r * Shape::kRowStride + j * 16);
    }
    const int64_t scaleRow = int64_t(min(row0 + tid, a.rows - 1)) * a.groupsPerRow;
    const uint8_t* const sSrc = a.scales + scaleRow * (P == Precision::INT4 ? 4 : 2);

    auto load = [&](int kt) {
        const int slot = kt % kStages;
#pragma unroll
        for (int m = 0; m < kXCopies; ++m)
            copyAsync<16>(xBase + uint32_t(slot * kXBytes) + xDst[m], xSrc[m] + kt * kTileK);
#pragma unroll
        for (int m = 0; m < kWCopies; ++m)
            copyAsync<16>(wBase + uint32_t(slot * Shape::kWBytes) + wDst[m], wSrc[m] + kt * Shape::kRowBytes);
        if (tid < kRowsPerBlock) {
            const int group = (kt * kTileK) >> a.groupLog2;
            const uint32_t dst = sBase + uint32_t((slot * kRowsPerBlock + tid) * kScaleSlotBytes);
            if constexpr (P == Precision::INT4) {
                if (groupsPerTile == 2) copyAsync<8>(dst, sSrc + group * 4);
                else copyAsync<4>(dst, sSrc + group * 4);
            } else {
                // The aligned pair of halves holding it (a row's group count is even).
                copyAsync<4>(dst, sSrc + (group & ~1) * 2);
            }
        }
    };

    // This thread's place in wgmma's fragments.
    const int warpgroup = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31, g = lane >> 2, c = lane & 3;
    const int rowA = warpgroup * 64 + warp * 16 + g; // and rowA + 8
    // INT4: byte c of w to byte 0, byte c of w >> 4 to byte 2. INT8: bytes 2c, 2c + 1 of the
    // 8-byte (lo, hi) word pair to bytes 0 and 2.
    const uint32_t select4 = uint32_t(c | (c << 4) | ((4 + c) << 8) | ((4 + c) << 12));
    const uint32_t select8 = uint32_t((2 * c) | ((2 * c + 1) << 8));

    // One 16-column step's raw weights for this thread's two rows (row, row + 8): INT4 8 bytes
    // (columns 16s .. 16s + 15), INT8 16 bytes.
    struct Raw {
        uint32_t w[2][P == Precision::INT4 ? 2 : 4];
    };
    auto loadRaw = [&](int slot, int s, Raw& raw) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint8_t* wRow = wShared + slot * Shape::kWBytes + (rowA + 8 * h) * Shape::kRowStride;
            if constexpr (P == Precision::INT4) {
                const uint2 v = *reinterpret_cast<const uint2*>(wRow + 8 * s);
                raw.w[h][0] = v.x;
                raw.w[h][1] = v.y;
            } else {
                const uint4 v = *reinterpret_cast<const uint4*>(wRow + 16 * s);
                raw.w[h][0] = v.x;
                raw.w[h][1] = v.y;
                raw.w[h][2] = v.z;
                raw.w[h][3] = v.w;
            }
        }
    };
    // A tile's scales (and minimums) for this thread's two rows, as packed pairs; [h][group in tile].
    struct Scales {
        __half2 scale[2][2], minimum[2][2];
    };
    auto loadScales = [&](int kt, Scales& sc) {
        const int slot = kt % kStages;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            const uint8_t* sRow = sShared + (slot * kRowsPerBlock + rowA + 8 * h) * kScaleSlotBytes;
#pragma unroll
            for (int gi = 0; gi < 2; ++gi) {
                if constexpr (P == Precision::INT4) {
                    const __half2 sm = reinterpret_cast<const __half2*>(sRow)[groupsPerTile == 2 ? gi : 0];
                    sc.scale[h][gi] = __low2half2(sm);
                    sc.minimum[h][gi] = __high2half2(sm);
                } else {
                    const int firstGroupOdd = ((kt * kTileK) >> a.groupLog2) & 1;
                    sc.scale[h][gi] = __half2half2(reinterpret_cast<const __half*>(sRow)[groupsPerTile == 2 ? gi : firstGroupOdd]);
                }
            }
        }
    };
    // wgmma's A fragment of step s: {a0, a1, a2, a3} = rows {row, row + 8} x columns {2c, 2c + 1},
    // then the same rows x columns {2c + 8, 2c + 9}.
    auto convert = [&](const Raw& raw, const Scales& sc, int s, uint32_t (&f)[4]) {
        const int gi = s >> 1; // the step's group in the tile, for groups of 32 (else 0 = 1)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
            if constexpr (P == Precision::INT4) {
                f[h] = int4ByteToHalf2(raw.w[h][0], select4, sc.scale[h][gi], sc.minimum[h][gi]);
                f[2 + h] = int4ByteToHalf2(raw.w[h][1], select4, sc.scale[h][gi], sc.minimum[h][gi]);
            } else {
                f[h] = int8PairToHalf2(raw.w[h][0], raw.w[h][1], select8, sc.scale[h][gi]);
                f[2 + h] = int8PairToHalf2(raw.w[h][2], raw.w[h][3], select8, sc.scale[h][gi]);
            }
        }
    };

    float d[kTokensPerBlock / 2];
#pragma unroll
    for (int i = 0; i < kTokensPerBlock / 2; ++i) d[i] = 0.f;

#pragma unroll
    for (int kt = 0; kt < kStages - 2; ++kt) {
        if (kt < tiles) load(kt);
        copyAsyncCommit();
    }

    // Each 16-column step is its own wgmma group with its own fragment registers, so that three
    // steps stay queued on the tensor cores while the next one is converted (the schedule of
    // CUTLASS's register-sourced mainloop): before step s of tile kt is written, step s of
    // tile kt - 1 — three groups back — must be done.
    uint32_t frag[4][4];
    for (int kt = 0; kt < tiles; ++kt) {
        copyAsyncWait<kStages - 3>(); // tile kt has landed (this thread's part)
        fenceProxyAsync();
        __syncthreads(); // ... everyone's; and every warpgroup is done with tile kt - 2's slot
        if (kt + kStages - 2 < tiles) load(kt + kStages - 2);
        copyAsyncCommit();
        const int slot = kt % kStages;
        const uint64_t desc = swizzled128Descriptor(xBase + uint32_t(slot * kXBytes));
        Scales sc;
        loadScales(kt, sc);
        Raw raw[2];
        loadRaw(slot, 0, raw[0]);
        fenceAccumulators(d);
#pragma unroll
        for (int s = 0; s < 4; ++s) {
            if (s < 3) loadRaw(slot, s + 1, raw[(s + 1) & 1]);
            wgmmaWait<3>();
            convert(raw[s & 1], sc, s, frag[s]);
            wgmmaFence();
            wgmma64x128x16(d, frag[s][0], frag[s][1], frag[s][2], frag[s][3], desc + 2 * s);
            wgmmaCommit();
        }
        fenceAccumulators(d);
    }
    wgmmaWait<0>();
    fenceAccumulators(d);

    __syncthreads(); // every warp is done with the ring's shared memory
    storeTile<kFloatOut, kTokensPerBlock>(a, reinterpret_cast<float*>(shared), d, rowA, c, row0, tok0, true);
}


// ---- The warp-specialized kernel for prompts over 128 tokens ------------------------------------
//
// Converting in the registers of the warpgroups that issue wgmma (above) leaves the tensor
// cores idle half the time or more (H100: 33-45 % busy): each warp's instruction stream is the
// conversion's dependency chains plus the loads. Here the work is split across warps, as CUTLASS's warp-specialized
// Hopper mainloops do, and the weights are converted once per 256 tokens:
//   - each 64-column tile comes in with TMA (cp.async.bulk.tensor): 256 tokens' activations into
//     the 128-byte swizzled layout wgmma reads, and the 128 rows' quantized bytes; the copies
//     complete the slot's `full` mbarrier. The first MMA thread issues them, a ring slot as soon
//     as both MMA warpgroups are done with it (mbarrier `empty`);
//   - a converter warpgroup (one thread a weight row) waits for `full`, turns the row's bytes
//     into 64 FP16 weights with the dequantization kernel's arithmetic, stores them into an A
//     tile in the same swizzled layout, and arrives on `converted`;
//   - two MMA warpgroups (64 rows each) wait for `converted` and issue wgmma with both operands
//     in shared memory (m64n256k16), and free the slot (`empty`) once those wgmmas are done.
namespace ws {

constexpr int kTokens = 256;
constexpr int kStages = 4;
constexpr int kMmaThreads = 256, kConverterThreads = 128;
constexpr int kThreads = kMmaThreads + kConverterThreads; // 168 registers a thread at most
constexpr int kXBytes = kTokens * 128; // [token][64 columns] FP16, swizzled
constexpr int kABytes = kRowsPerBlock * 128; // [row][64 columns] FP16, swizzled

template <Precision P>
struct Layout {
    static constexpr int kRawRowBytes = P == Precision::INT4 ? kTileK / 2 : kTileK;
    static constexpr int kWBytes = kRowsPerBlock * kRawRowBytes;
    static constexpr int kRingBytes = kStages * (kXBytes + kABytes + kWBytes);
    static constexpr int kOutBytes = kTokens * (kRowsPerBlock + 4) * 4;
    static constexpr int kBarrierOffset = kRingBytes > kOutBytes ? kRingBytes : kOutBytes;
    static constexpr int kSharedBytes = kBarrierOffset + 3 * kStages * 8 + 1024;
};

template <Precision P, bool kFloatOut>
__global__ void __launch_bounds__(kThreads, 1)
    quantizedGemmWsKernel(const QuantizedGemmArgs a, const __grid_constant__ CUtensorMap xMap,
                          const __grid_constant__ CUtensorMap wMap) {
    using L = Layout<P>;
    extern __shared__ uint8_t sharedRaw[];
    const uint32_t rawAddress = sharedAddress(sharedRaw);
    const uint32_t base = (rawAddress + 1023u) & ~1023u;
    uint8_t* const shared = sharedRaw + (base - rawAddress);
    auto xTile = [&](int s) { return base + uint32_t(s * kXBytes); };
    auto aTile = [&](int s) { return base + uint32_t(kStages * kXBytes + s * kABytes); };
    auto wTile = [&](int s) { return base + uint32_t(kStages * (kXBytes + kABytes) + s * L::kWBytes); };
    auto full = [&](int s) { return base + uint32_t(L::kBarrierOffset + s * 8); };
    auto converted = [&](int s) { return base + uint32_t(L::kBarrierOffset + (kStages + s) * 8); };
    auto empty = [&](int s) { return base + uint32_t(L::kBarrierOffset + (2 * kStages + s) * 8); };

    const int tid = threadIdx.x;
    // With SwiGLU the block's rows are gate rows [row0, row0 + 64) and up rows ff + the same.
    const int ff = a.swiGluFf;
    const int row0 = blockIdx.x * (ff ? kRowsPerBlock / 2 : kRowsPerBlock), tok0 = blockIdx.y * kTokens;
    // Tiles [first, first + tiles) of the 64-column tiles; kt below counts from first.
    const int allTiles = a.cols / kTileK;
    const int first = a.splitTiles ? blockIdx.z * a.splitTiles : 0;
    const int tiles = a.splitTiles ? min(allTiles - first, blockIdx.z ? allTiles : a.splitTiles) : allTiles;
    if (tid == 0) {
        for (int s = 0; s < kStages; ++s) {
            barrierInit(full(s), 1);
            barrierInit(converted(s), kConverterThreads);
            barrierInit(empty(s), 2);
        }
        fenceBarrierInit();
    }
    __syncthreads();
    auto fetchTile = [&](int kt) { // by thread 0, into a free slot
        const int s = kt % kStages;
        barrierExpectBytes(full(s), kXBytes + L::kWBytes);
        tmaLoad2d(xTile(s), &xMap, (first + kt) * kTileK, tok0, full(s));
        tmaLoad2d(wTile(s), &wMap, (first + kt) * L::kRawRowBytes, row0, full(s));
        if (ff) // the up rows into the tile's second half (the tensor map's box is 64 rows then)
            tmaLoad2d(wTile(s) + uint32_t(L::kWBytes / 2), &wMap, (first + kt) * L::kRawRowBytes, ff + row0, full(s));
    };
    if (tid == 0)
        for (int kt = 0; kt < kStages && kt < tiles; ++kt) fetchTile(kt);

    float d[kTokens / 2];
    const int warpgroup = tid >> 7, warp = (tid >> 5) & 3, lane = tid & 31;
    const int rowA = warpgroup * 64 + warp * 16 + (lane >> 2), c = lane & 3;
    if (tid >= kMmaThreads) {
        // Converter: row r of each tile.
        const int r = tid - kMmaThreads;
        const int matrixRow = ff ? (r < kRowsPerBlock / 2 ? row0 + r : ff + row0 + r - kRowsPerBlock / 2) : row0 + r;
        const int64_t scaleRow = int64_t(min(matrixRow, a.rows - 1)) * a.groupsPerRow;
        const bool twoGroups = a.groupLog2 == 5;
        // This row's scales (and minimums) for tile kt: two groups of 32, or one group.
        auto fetchScales = [&](int kt) {
            const int64_t g = scaleRow + (((first + kt) * kTileK) >> a.groupLog2);
            // Two groups are one aligned load (g is even then: a row's group count is even).
            if constexpr (P == Precision::INT4) {
                const uint32_t* sp = reinterpret_cast<const uint32_t*>(a.scales) + g;
                if (twoGroups) return __ldg(reinterpret_cast<const uint2*>(sp));
                const uint32_t one = __ldg(sp);
                return make_uint2(one, one);
            } else {
                const uint16_t* sp = reinterpret_cast<const uint16_t*>(a.scales) + g;
                if (twoGroups) {
                    const uint32_t both = __ldg(reinterpret_cast<const uint32_t*>(sp));
                    return make_uint2(both & 0xFFFFu, both >> 16);
                }
                const uint32_t one = __ldg(sp);
                return make_uint2(one, one);
            }
        };
        const uint8_t* const rawRow = shared + (wTile(0) - base) + r * L::kRawRowBytes;
        uint8_t* const aRow = shared + (aTile(0) - base) + r * 128;
        // Scales two tiles ahead: the loads must be done before the fence below, which waits for them.
        uint2 scalesNext = fetchScales(0), scalesAfter = tiles > 1 ? fetchScales(1) : make_uint2(0u, 0u);
        for (int kt = 0; kt < tiles; ++kt) {
            const int s = kt % kStages;
            const uint2 sc = scalesNext;
            scalesNext = scalesAfter;
            barrierWait(full(s), (kt / kStages) & 1);
            // The row's raw bytes, all loaded before any is converted.
            uint32_t w[L::kRawRowBytes / 4];
#pragma unroll
            for (int i = 0; i < L::kRawRowBytes / 16; ++i) {
                const uint4 v = *reinterpret_cast<const uint4*>(rawRow + s * L::kWBytes + 16 * i);
                w[4 * i] = v.x, w[4 * i + 1] = v.y, w[4 * i + 2] = v.z, w[4 * i + 3] = v.w;
            }
#pragma unroll
            for (int j = 0; j < 8; ++j) { // 16-byte chunk j: columns 8j .. 8j + 7
                const uint32_t scaleBits = j >= 4 ? sc.y : sc.x; // the second group of 32, or the same one
                uint32_t o[4];
                if constexpr (P == Precision::INT4) {
                    const __half2 sm = halvesOf(scaleBits);
                    const uint4 h = int4x8ToHalves(w[j], __low2half2(sm), __high2half2(sm));
                    o[0] = h.x, o[1] = h.y, o[2] = h.z, o[3] = h.w;
                } else {
                    const __half2 scale = __half2half2(__ushort_as_half(uint16_t(scaleBits)));
                    o[0] = int8PairToHalf2(w[2 * j], w[2 * j], 0x0100u, scale);
                    o[1] = int8PairToHalf2(w[2 * j], w[2 * j], 0x0302u, scale);
                    o[2] = int8PairToHalf2(w[2 * j + 1], w[2 * j + 1], 0x0100u, scale);
                    o[3] = int8PairToHalf2(w[2 * j + 1], w[2 * j + 1], 0x0302u, scale);
                }
                *reinterpret_cast<uint4*>(aRow + s * kABytes + ((j ^ (r & 7)) << 4)) = make_uint4(o[0], o[1], o[2], o[3]);
            }
            // These generic stores are read by wgmma (the async proxy). The fence also waits for
            // this thread's outstanding loads, so the scale loads are issued after it, for the
            // tile after next.
            fenceProxyAsync();
            barrierArrive(converted(s));
            if (kt + 2 < tiles) scalesAfter = fetchScales(kt + 2);
        }
    } else {
        // MMA warpgroups.
#pragma unroll
        for (int i = 0; i < kTokens / 2; ++i) d[i] = 0.f;
        const uint64_t descA0 = swizzled128Descriptor(aTile(0) + uint32_t(warpgroup * 64 * 128));
        const uint64_t descB0 = swizzled128Descriptor(xTile(0));
        for (int kt = 0; kt < tiles; ++kt) {
            const int s = kt % kStages, parity = (kt / kStages) & 1;
            barrierWait(full(s), parity);      // this thread sees the tile's activations
            barrierWait(converted(s), parity); // and its weights
            const uint64_t descA = descA0 + uint64_t(s * (kABytes >> 4));
            const uint64_t descB = descB0 + uint64_t(s * (kXBytes >> 4));
            fenceAccumulators(d);
            wgmmaFence();
#pragma unroll
            for (int step = 0; step < 4; ++step) wgmma64x256x16Shared(d, descA + 2 * step, descB + 2 * step);
            wgmmaCommit();
            wgmmaWait<1>(); // tile kt - 1's wgmmas are done
            fenceAccumulators(d);
            if (kt > 0 && (tid & 127) == 0) barrierArrive(empty((kt - 1) % kStages));
            if (tid == 0 && kt > 0 && kt - 1 + kStages < tiles) {
                barrierWait(empty((kt - 1) % kStages), ((kt - 1) / kStages) & 1); // both warpgroups
                fetchTile(kt - 1 + kStages);
            }
        }
        wgmmaWait<0>();
        fenceAccumulators(d);
    }
    __syncthreads(); // the ring is done with
    float* const out = reinterpret_cast<float*>(shared);
    const bool mma = tid < kMmaThreads;
    if (ff) {
        storeTileSwiGlu<kTokens>(a, out, d, rowA, c, row0, tok0, mma);
    } else if (a.splitTiles && blockIdx.z == 1) {
        QuantizedGemmArgs p = a;
        p.c = a.partial;
        p.ldc = a.rows;
        p.rowOffset = 0;
        p.beta = 0.f;
        storeTile<true, kTokens>(p, out, d, rowA, c, row0, tok0, mma);
    } else {
        storeTile<kFloatOut, kTokens>(a, out, d, rowA, c, row0, tok0, mma);
    }
}

// C[t][rowOffset + r] += partial[t][r]: the second half of a split product, added after the
// first (which applied beta). A block row of threads per token.
__global__ void addPartialsKernel(float* c, int64_t ldc, int64_t rowOffset, const float* partial, int rows) {
    float* ct = c + int64_t(blockIdx.y) * ldc + rowOffset;
    const float* pt = partial + int64_t(blockIdx.y) * rows;
    for (int r = blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += gridDim.x * blockDim.x) ct[r] += pt[r];
}

using EncodeTiled = PFN_cuTensorMapEncodeTiled_v12000;

EncodeTiled encodeTiled() {
    static const EncodeTiled fn = [] {
        void* f = nullptr;
        cudaDriverEntryPointQueryResult q{};
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
            q != cudaDriverEntryPointSuccess)
            f = nullptr;
        return reinterpret_cast<EncodeTiled>(f);
    }();
    return fn;
}

CUtensorMap tensorMap2d(CUtensorMapDataType type, const void* base, uint64_t inner, uint64_t outer, uint64_t rowBytes,
                        uint32_t boxInner, uint32_t boxOuter, CUtensorMapSwizzle swizzle) {
    const EncodeTiled encode = encodeTiled();
    if (!encode) throw Error("CUDA: the driver has no cuTensorMapEncodeTiled");
    CUtensorMap m;
    const cuuint64_t dims[2] = {inner, outer}, strides[1] = {rowBytes};
    const cuuint32_t box[2] = {boxInner, boxOuter}, elementStrides[2] = {1, 1};
    const CUresult r = encode(&m, type, 2, const_cast<void*>(base), dims, strides, box, elementStrides,
                              CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                              CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) throw Error("CUDA: cuTensorMapEncodeTiled failed (" + std::to_string(int(r)) + ")");
    return m;
}

template <Precision P, bool kFloatOut>
void launch(const LaunchContext& ctx, const QuantizedGemmArgs& a, bool deferAdd) {
    using L = Layout<P>;
    // Out-of-range tokens and rows read as zeros (TMA's bounds), their results are not stored.
    const CUtensorMap xMap = tensorMap2d(CU_TENSOR_MAP_DATA_TYPE_FLOAT16, a.x, uint64_t(a.cols), uint64_t(a.n),
                                         uint64_t(a.cols) * 2, kTileK, kTokens, CU_TENSOR_MAP_SWIZZLE_128B);
    const uint64_t rowBytes = uint64_t(a.cols) / (P == Precision::INT4 ? 2 : 1);
    const int blockRows = a.swiGluFf ? kRowsPerBlock / 2 : kRowsPerBlock; // rows a TMA box
    const CUtensorMap wMap = tensorMap2d(CU_TENSOR_MAP_DATA_TYPE_UINT8, a.w, rowBytes, uint64_t(a.rows), rowBytes,
                                         uint32_t(L::kRawRowBytes), uint32_t(blockRows), CU_TENSOR_MAP_SWIZZLE_NONE);
    auto kernel = quantizedGemmWsKernel<P, kFloatOut>;
    PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, L::kSharedBytes));
    const int gridRows = a.swiGluFf ? a.swiGluFf : a.rows; // (gate rows only with SwiGLU)
    const dim3 grid(unsigned((gridRows + blockRows - 1) / blockRows), unsigned((a.n + kTokens - 1) / kTokens),
                    a.splitTiles ? 2u : 1u);
    launchKernel(ctx, kernel, grid, dim3(kThreads), size_t(L::kSharedBytes), "quantized GEMM launch", a, xMap, wMap);
    if (a.splitTiles && !deferAdd)
        launchKernel(ctx, addPartialsKernel, dim3(unsigned(std::min((a.rows + 255) / 256, 16)), unsigned(a.n)), dim3(256), 0,
                     "quantized GEMM launch", static_cast<float*>(a.c), a.ldc, a.rowOffset, a.partial, a.rows);
}

} // namespace ws

template <Precision P, bool kFloatOut>
void launchRegisterSourced(const LaunchContext& ctx, const QuantizedGemmArgs& a) {
    // INT4's four stages (97 KiB) and 128 registers let two blocks share an SM; INT8's do not fit twice.
    constexpr int kMinBlocks = P == Precision::INT4 ? 2 : 1;
    constexpr int shared = TileShape<P>::kSharedBytes;
    auto kernel = quantizedGemmKernel<P, kFloatOut, kMinBlocks>;
    // Per launch: the attribute belongs to the current device, and a model may span two.
    PARLEY_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, shared));
    const dim3 grid(unsigned((a.rows + kRowsPerBlock - 1) / kRowsPerBlock),
                    unsigned((a.n + kTokensPerBlock - 1) / kTokensPerBlock));
    launchKernel(ctx, kernel, grid, dim3(kThreads), size_t(shared), "quantized GEMM launch", a);
}

// Blocks of the warp-specialized kernel for `rows` weight rows and n tokens (with SwiGLU, rows
// counts gate and up: a block's 64 of each are 128 rows as well).
int64_t wsBlocks(int64_t rows, int n) {
    return (rows + kRowsPerBlock - 1) / kRowsPerBlock * ((n + ws::kTokens - 1) / ws::kTokens);
}

// Which kernel, and whether to split K: over 128 tokens the warp-specialized kernel, when its
// 256-token blocks fill the GPU; a float product that fills only half of it (the residual
// projections of a 4,096-wide model: 32 x 2 blocks) splits its columns over two blocks, the
// second half's sums added afterwards; everything else, the register-sourced kernel.
template <Precision P, bool kFloatOut>
bool launchTyped(const LaunchContext& ctx, const QuantizedGemmArgs& a, bool deferAdd) {
    const int sms = currentMultiprocessors();
    const int64_t blocks = wsBlocks(a.rows, a.n);
    const int tiles = a.cols / kTileK;
    if (a.n > kTokensPerBlock && blocks >= sms) {
        ws::launch<P, kFloatOut>(ctx, a, false);
    } else if (a.n > kTokensPerBlock && kFloatOut && a.partial && tiles >= 8 && 20 * blocks >= 9 * sms) {
        QuantizedGemmArgs split = a;
        split.splitTiles = (tiles + 1) / 2;
        ws::launch<P, kFloatOut>(ctx, split, deferAdd);
        return deferAdd;
    } else {
        launchRegisterSourced<P, kFloatOut>(ctx, a);
    }
    return false;
}

} // namespace

bool quantizedGemmSm90Fits(const DeviceMatrix& w) {
    if (w.precision != Precision::INT8 && w.precision != Precision::INT4) return false;
    const int gs = w.groupSize;
    const bool groupOk = gs >= 32 && (gs & (gs - 1)) == 0 && w.cols % gs == 0 && w.groupsPerRow() % 2 == 0;
    return groupOk && w.cols % kTileK == 0 && w.rows > 0 && w.rows < (int64_t(1) << 30) &&
           w.cols < (int64_t(1) << 30) && reinterpret_cast<uintptr_t>(w.data) % 16 == 0 &&
           reinterpret_cast<uintptr_t>(w.scales) % 8 == 0;
}

namespace {

QuantizedGemmArgs argsFor(const DeviceMatrix& w, const __half* x, int n, void* c, int64_t ldc, int64_t rowOffset,
                          float beta) {
    QuantizedGemmArgs a;
    a.w = static_cast<const uint8_t*>(w.data);
    a.scales = static_cast<const uint8_t*>(w.scales);
    a.rows = int(w.rows);
    a.cols = int(w.cols);
    a.groupsPerRow = int(w.groupsPerRow());
    a.groupLog2 = 0;
    while ((1 << a.groupLog2) < w.groupSize) ++a.groupLog2;
    a.x = x;
    a.n = n;
    a.c = c;
    a.ldc = ldc;
    a.rowOffset = rowOffset;
    a.beta = beta;
    return a;
}

} // namespace

bool launchQuantizedGemmSm90(const LaunchContext& ctx, const DeviceMatrix& w, const __half* x, int n, void* c,
                             bool cFloat, int64_t ldc, int64_t rowOffset, float beta, float* partial,
                             size_t partialFloats, bool deferAdd) {
    if (n <= 0) return false;
    QuantizedGemmArgs a = argsFor(w, x, n, c, ldc, rowOffset, beta);
    a.partial = partial && partialFloats >= size_t(w.rows) * size_t(n) ? partial : nullptr;
    if (w.precision == Precision::INT4)
        return cFloat ? launchTyped<Precision::INT4, true>(ctx, a, deferAdd) : launchTyped<Precision::INT4, false>(ctx, a, false);
    return cFloat ? launchTyped<Precision::INT8, true>(ctx, a, deferAdd) : launchTyped<Precision::INT8, false>(ctx, a, false);
}

bool launchQuantizedGemmSm90SwiGlu(const LaunchContext& ctx, const DeviceMatrix& w, const __half* x, int n, __half* act,
                                   int64_t ldAct) {
    const int64_t ff = w.rows / 2;
    // The warp-specialized kernel's shapes only (as launchTyped chooses it), whole 64-row halves,
    // and 8-byte aligned stores of four halves.
    if (n <= kTokensPerBlock || w.rows % 2 || ff % (kRowsPerBlock / 2) || wsBlocks(w.rows, n) < currentMultiprocessors() ||
        ldAct % 4 || reinterpret_cast<uintptr_t>(act) % 8)
        return false;
    QuantizedGemmArgs a = argsFor(w, x, n, act, ldAct, 0, 0.f);
    a.swiGluFf = int(ff);
    if (w.precision == Precision::INT4) ws::launch<Precision::INT4, false>(ctx, a, false);
    else ws::launch<Precision::INT8, false>(ctx, a, false);
    return true;
}

} // namespace parley::cuda
