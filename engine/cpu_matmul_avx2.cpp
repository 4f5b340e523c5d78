// AVX2 / FMA / F16C kernels of the CPU matrix products (compiled when the build targets a CPU
// that has them; the engine is built with -march=native unless PARLEY_PORTABLE).
//
// INT8 and INT4: integer dot products against activations rounded to int16 per block of 32
// (cpu_matmul_kernels.h): per block, the weights are widened to int16, vpmaddwd multiplies pairs
// and adds them to int32, and the 8 int32 sums are scaled by (weight group scale * activation
// step) in float. INT4's "+ min" part is min * (sum of the group's float activations). The result
// is the dot product of the weights with activations off by at most 1/65534 of their block's
// largest value, up to float rounding. (llama.cpp rounds activations to int8 and uses
// vpmaddubsw; measured here that saves only 0-14% of the time and visibly changes the answers of
// small quantized models.)
// FP16: F16C conversion and FMA.
//
// Tiles: 4 rows x up to 2 tokens share each unpacked weight block and each activation load;
// prefill walks tokens in tiles of 64 so their activations stay in L2 while a row tile is
// reused for all of them.
#include "engine/cpu_matmul_kernels.h"

#include <algorithm>
#include <cstring>

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define PARLEY_HAVE_AVX2_KERNELS 1
#endif

namespace parley::detail {

#ifndef PARLEY_HAVE_AVX2_KERNELS

bool haveAvx2Kernels() { return false; }
bool avx2Handles(const WeightMatrix&) { return false; }
void matmulRowsAvx2(const WeightMatrix&, const float*, const QuantizedActivations*, int64_t, float*, int64_t, int64_t) {}

#else

bool haveAvx2Kernels() { return true; }

bool avx2Handles(const WeightMatrix& W) {
    if (W.precision == Precision::FP16) return true;
    // 16, or 32 times a power of two (the kernel finds a block's group by a shift).
    if (W.groupSize == 16) return true;
    if (W.groupSize % 32 != 0) return false;
    const int blocksPerGroup = W.groupSize / 32;
    return (blocksPerGroup & (blocksPerGroup - 1)) == 0;
}

namespace {

constexpr int kRowTile = 4;
constexpr int64_t kTokenTile = 64;

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// n halves -> floats.
inline void halvesToFloats(const uint16_t* h, float* f, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(f + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
    for (; i < n; ++i) f[i] = _cvtsh_ss(h[i]);
}

inline float dotFloats(const float* a, const float* b, int64_t n) {
    __m256 acc = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum(acc);
    for (; i < n; ++i) s += a[i] * b[i];
    return s;
}

// ---------------------------------------------------------------------------------------------
// FP16.

// Decode: R rows against one token, converting halves on the fly.
template <int R>
void fp16RowsOneToken(const WeightMatrix& W, int64_t r0, const float* x, float* out) {
    const int64_t cols = W.cols;
    __m256 acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        const __m256 xv = _mm256_loadu_ps(x + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(W.f16.data() + (r0 + r) * cols + c));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtph_ps(h), xv, acc[r]);
        }
    }
    for (int r = 0; r < R; ++r) {
        float s = hsum(acc[r]);
        for (int64_t k = c; k < cols; ++k) s += halfToFloat(W.f16[size_t((r0 + r) * cols + k)]) * x[k];
        out[r] = s;
    }
}

// Prefill: R rows already converted to floats (rowsF[R][cols]) against T tokens.
template <int R, int T>
void fp16Tile(const float* rowsF, int64_t cols, const float* x, int64_t t0, float out[kRowTile][2]) {
    __m256 acc[R][T];
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) acc[r][t] = _mm256_setzero_ps();
    int64_t c = 0;
    for (; c + 8 <= cols; c += 8) {
        __m256 xv[T];
        for (int t = 0; t < T; ++t) xv[t] = _mm256_loadu_ps(x + (t0 + t) * cols + c);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            const __m256 wv = _mm256_loadu_ps(rowsF + r * cols + c);
            for (int t = 0; t < T; ++t) acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
            float s = hsum(acc[r][t]);
            for (int64_t k = c; k < cols; ++k) s += rowsF[r * cols + k] * x[(t0 + t) * cols + k];
            out[r][t] = s;
        }
}

void fp16Rows(const WeightMatrix& W, const float* x, int64_t nTokens, float* y, int64_t rowBegin, int64_t rowEnd) {
    const int64_t cols = W.cols;
    if (nTokens == 1) {
        float out[kRowTile];
        int64_t r = rowBegin;
        for (; r + kRowTile <= rowEnd; r += kRowTile) {
            fp16RowsOneToken<kRowTile>(W, r, x, out);
            for (int k = 0; k < kRowTile; ++k) y[r + k] = out[k];
        }
        for (; r < rowEnd; ++r) {
            fp16RowsOneToken<1>(W, r, x, out);
            y[r] = out[0];
        }
        return;
    }
    thread_local std::vector<float> rowsF;
    rowsF.resize(size_t(kRowTile * cols));
    float out[kRowTile][2];
    for (int64_t t0 = 0; t0 < nTokens; t0 += kTokenTile) {
        const int64_t t1 = std::min(nTokens, t0 + kTokenTile);
        for (int64_t r = rowBegin; r < rowEnd; r += kRowTile) {
            const int R = int(std::min<int64_t>(kRowTile, rowEnd - r));
            for (int k = 0; k < R; ++k) halvesToFloats(W.f16.data() + (r + k) * cols, rowsF.data() + k * cols, cols);
            for (int64_t t = t0; t < t1; t += 2) {
                const int T = int(std::min<int64_t>(2, t1 - t));
                if (R == kRowTile) {
                    if (T == 2) fp16Tile<kRowTile, 2>(rowsF.data(), cols, x, t, out);
                    else fp16Tile<kRowTile, 1>(rowsF.data(), cols, x, t, out);
                    for (int k = 0; k < R; ++k)
                        for (int j = 0; j < T; ++j) y[(t + j) * W.rows + r + k] = out[k][j];
                } else {
                    for (int k = 0; k < R; ++k)
                        for (int j = 0; j < T; ++j)
                            y[(t + j) * W.rows + r + k] = dotFloats(rowsF.data() + k * cols, x + (t + j) * cols, cols);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// INT8 / INT4.

// A row tile's group scales and (INT4) minimums as floats: [kRowTile][groups] each.
struct RowScales {
    std::vector<float> scale;
    std::vector<float> min;
};

void prepareRowScales(const WeightMatrix& W, int64_t r, int k, RowScales& rs) {
    const int64_t groups = W.groupsPerRow();
    halvesToFloats(W.scales.data() + r * groups, rs.scale.data() + k * groups, groups);
    if (W.precision == Precision::INT4) halvesToFloats(W.mins.data() + r * groups, rs.min.data() + k * groups, groups);
}

// groupScale[r], groupMin[r]: row r0 + r's group scales and minimums as floats (RowScales).
// Pairs: 16-wide groups, two per block; otherwise a group is 2^groupShift blocks.
//
// R rows x T tokens against the activations rounded to int16: weights are
// widened to int16 (INT4: the 16 bytes of a block zero-extended to 16-bit lanes; the low nibbles
// are its even elements and the high nibbles its odd ones, matching the activations' int4
// order; INT8: sign-extended halves) and vpmaddwd multiplies pairs and adds them to int32.
// Bounds: INT4 |q w| <= 15 * 32767 * 4 per lane after adding the two halves (< 2^21); INT8
// 128 * 32767 * 2 per lane (< 2^24), so no int32 overflows and the conversion to float is exact.
template <bool Int4, bool Pairs, int R, int T>
void intTile(const WeightMatrix& W, int64_t r0, const float* const* groupScale, const float* const* groupMin,
             int groupShift, const QuantizedActivations& qa, int64_t t0, float out[kRowTile][2]) {
    const int64_t blocks = qa.blocks;
    const int64_t cols = W.cols;
    const __m256i lowNibbles = _mm256_set1_epi16(0x0f);
    // 16-wide groups: INT4's int32 lanes 0-3 hold elements below 16 of both halves (even
    // elements 0-14, odd 1-15), lanes 4-7 the rest. INT8's two products are scaled separately.
    const __m256i pairLanes = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);

    const uint8_t* wRow[R];
    const float* scaleRow[R];
    for (int r = 0; r < R; ++r) {
        wRow[r] = Int4 ? W.q4.data() + (r0 + r) * (cols / 2) : reinterpret_cast<const uint8_t*>(W.q8.data()) + (r0 + r) * cols;
        scaleRow[r] = groupScale[r];
    }
    const int16_t* xRow[T];
    const float* dRow[T];
    for (int t = 0; t < T; ++t) {
        xRow[t] = qa.q.data() + (t0 + t) * blocks * 32;
        dRow[t] = qa.d.data() + (t0 + t) * blocks;
    }

    __m256 acc[R * T];
    for (int i = 0; i < R * T; ++i) acc[i] = _mm256_setzero_ps();

    for (int64_t b = 0; b < blocks; ++b) {
        __m256 dx[T];
        for (int t = 0; t < T; ++t) dx[t] = _mm256_broadcast_ss(dRow[t] + b);
#pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
            __m256i w0, w1; // INT4: even, odd elements; INT8: elements 0-15, 16-31
            if constexpr (Int4) {
                const __m256i wide = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wRow[r] + b * 16)));
                w0 = _mm256_and_si256(wide, lowNibbles);
                w1 = _mm256_srli_epi16(wide, 4);
            } else {
                w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wRow[r] + b * 32)));
                w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wRow[r] + b * 32 + 16)));
            }
            __m256 scale0, scale1;
            if constexpr (Pairs && Int4) {
                const __m128 two = _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scaleRow[r] + 2 * b)));
                scale0 = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two), pairLanes);
                scale1 = scale0;
            } else if constexpr (Pairs) {
                scale0 = _mm256_broadcast_ss(scaleRow[r] + 2 * b);
                scale1 = _mm256_broadcast_ss(scaleRow[r] + 2 * b + 1);
            } else {
                scale0 = _mm256_broadcast_ss(scaleRow[r] + (b >> groupShift));
                scale1 = scale0;
            }
#pragma GCC unroll 2
            for (int t = 0; t < T; ++t) {
                const __m256i* xb = reinterpret_cast<const __m256i*>(xRow[t] + b * 32);
                const __m256i p0 = _mm256_madd_epi16(w0, _mm256_loadu_si256(xb));
                const __m256i p1 = _mm256_madd_epi16(w1, _mm256_loadu_si256(xb + 1));
                if constexpr (Pairs && !Int4) {
                    acc[r * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_mul_ps(scale0, dx[t]), acc[r * T + t]);
                    acc[r * T + t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_mul_ps(scale1, dx[t]), acc[r * T + t]);
                } else {
                    const __m256 sums = _mm256_cvtepi32_ps(_mm256_add_epi32(p0, p1));
                    acc[r * T + t] = _mm256_fmadd_ps(sums, _mm256_mul_ps(scale0, dx[t]), acc[r * T + t]);
                }
            }
        }
    }

    const int64_t groups = qa.groups;
    for (int r = 0; r < R; ++r)
        for (int t = 0; t < T; ++t) {
            float s = hsum(acc[r * T + t]);
            if constexpr (Int4)
                s += dotFloats(groupMin[r], qa.groupSum.data() + (t0 + t) * groups, groups);
            out[r][t] = s;
        }
}

// The last cols % 32 values (16 with 16-wide groups), in float from the float activations.
float tailDot(const WeightMatrix& W, int64_t r, int64_t c0, const float* xt) {
    const int64_t groups = W.groupsPerRow();
    float s = 0;
    for (int64_t c = c0; c < W.cols; ++c) {
        const int64_t g = r * groups + c / W.groupSize;
        const float scale = halfToFloat(W.scales[size_t(g)]);
        float w;
        if (W.precision == Precision::INT8) {
            w = float(W.q8[size_t(r * W.cols + c)]) * scale;
        } else {
            const uint8_t byte = W.q4[size_t((r * W.cols + c) / 2)];
            w = float(c % 2 ? byte >> 4 : byte & 0x0f) * scale + halfToFloat(W.mins[size_t(g)]);
        }
        s += w * xt[c];
    }
    return s;
}

template <bool Int4, bool Pairs>
void intRows(const WeightMatrix& W, const float* x, const QuantizedActivations& qa, int64_t nTokens, float* y,
             int64_t rowBegin, int64_t rowEnd) {
    const int64_t groups = W.groupsPerRow();
    int groupShift = 0;
    while ((32 << groupShift) < W.groupSize) ++groupShift;
    thread_local RowScales rs;
    rs.scale.resize(size_t(kRowTile * groups));
    rs.min.resize(size_t(kRowTile * groups));
    const int64_t tailStart = qa.blocks * 32;
    const float* groupScale[kRowTile];
    const float* groupMin[kRowTile];
    for (int k = 0; k < kRowTile; ++k) {
        groupScale[k] = rs.scale.data() + k * groups;
        groupMin[k] = rs.min.data() + k * groups;
    }
    float out[kRowTile][2];
    for (int64_t t0 = 0; t0 < nTokens; t0 += kTokenTile) {
        const int64_t t1 = std::min(nTokens, t0 + kTokenTile);
        for (int64_t r = rowBegin; r < rowEnd; r += kRowTile) {
            const int R = int(std::min<int64_t>(kRowTile, rowEnd - r));
            for (int k = 0; k < R; ++k) prepareRowScales(W, r + k, k, rs);
            for (int64_t t = t0; t < t1; t += 2) {
                const int T = int(std::min<int64_t>(2, t1 - t));
                if (R == kRowTile) {
                    if (T == 2) intTile<Int4, Pairs, kRowTile, 2>(W, r, groupScale, groupMin, groupShift, qa, t, out);
                    else intTile<Int4, Pairs, kRowTile, 1>(W, r, groupScale, groupMin, groupShift, qa, t, out);
                } else {
                    // Fewer than 4 rows left: one row at a time.
                    for (int k = 0; k < R; ++k) {
                        float one[kRowTile][2] = {};
                        if (T == 2) intTile<Int4, Pairs, 1, 2>(W, r + k, groupScale + k, groupMin + k, groupShift, qa, t, one);
                        else intTile<Int4, Pairs, 1, 1>(W, r + k, groupScale + k, groupMin + k, groupShift, qa, t, one);
                        out[k][0] = one[0][0];
                        out[k][1] = one[0][1];
                    }
                }
                for (int k = 0; k < R; ++k)
                    for (int j = 0; j < T; ++j) {
                        float v = out[k][j];
                        if (tailStart < W.cols) v += tailDot(W, r + k, tailStart, x + (t + j) * W.cols);
                        y[(t + j) * W.rows + r + k] = v;
                    }
            }
        }
    }
}

} // namespace

void matmulRowsAvx2(const WeightMatrix& W, const float* x, const QuantizedActivations* qa, int64_t nTokens, float* y,
                    int64_t rowBegin, int64_t rowEnd) {
    switch (W.precision) {
    case Precision::FP16: fp16Rows(W, x, nTokens, y, rowBegin, rowEnd); return;
    case Precision::INT8:
        if (W.groupSize == 16) intRows<false, true>(W, x, *qa, nTokens, y, rowBegin, rowEnd);
        else intRows<false, false>(W, x, *qa, nTokens, y, rowBegin, rowEnd);
        return;
    case Precision::INT4:
        if (W.groupSize == 16) intRows<true, true>(W, x, *qa, nTokens, y, rowBegin, rowEnd);
        else intRows<true, false>(W, x, *qa, nTokens, y, rowBegin, rowEnd);
        return;
    }
}

#endif

} // namespace parley::detail
