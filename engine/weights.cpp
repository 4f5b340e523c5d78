// Weight formats: IEEE half conversion, ggml block decoding, and conversion of file tensors into
// the engine's FP16 / INT8 / INT4 matrices (weights.h, DESIGN.md §2).
//
// Block layouts follow ggml (ggml-common.h: block_q8_0, block_q4_0, block_q4_1, block_q4_K,
// block_q6_K; decoding as in ggml-quants.c dequantize_row_*). All multi-byte fields are
// little-endian, which is also this engine's only supported host order.
#include "engine/weights.h"

#include "engine/error.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <thread>

#if defined(__AVX2__) || defined(__F16C__)
#include <immintrin.h>
#endif

namespace parley {

const char* precisionName(Precision p) {
    switch (p) {
    case Precision::FP16: return "fp16";
    case Precision::INT8: return "int8";
    case Precision::INT4: return "int4";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// IEEE 754 binary16 <-> binary32, bit-exact and portable (no F16C needed).

static inline uint32_t floatBits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}
static inline float bitsFloat(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

float halfToFloat(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exponent = (h >> 10) & 0x1fu;
    const uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0) {
        // Zero or subnormal: mantissa * 2^-24, exact in float.
        const float magnitude = float(mantissa) * 0x1p-24f;
        return bitsFloat(sign | floatBits(magnitude));
    }
    if (exponent == 31) return bitsFloat(sign | 0x7f800000u | (mantissa << 13)); // inf / NaN
    return bitsFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t floatToHalf(float f) {
    const uint32_t x = floatBits(f);
    const uint16_t sign = uint16_t((x >> 16) & 0x8000u);
    const uint32_t absBits = x & 0x7fffffffu;
    if (absBits >= 0x7f800000u) {
        // Inf stays inf; NaN stays a (quiet) NaN with the top payload bits kept.
        if (absBits == 0x7f800000u) return sign | 0x7c00u;
        return sign | 0x7e00u | uint16_t((absBits >> 13) & 0x3ffu);
    }
    // 65520 is halfway between 65504 (largest half) and 65536; the tie goes to the even
    // neighbour, which is infinity.
    if (absBits >= 0x477ff000u) return sign | 0x7c00u;
    if (absBits < 0x38800000u) {
        // Below the smallest normal half (2^-14): a subnormal in units of 2^-24.
        if (absBits < 0x33000000u) return sign; // below 2^-25 (2^-25 itself ties to 0)
        const uint32_t exponent = absBits >> 23;  // 102..112
        const uint32_t mantissa = (absBits & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - exponent;   // 14..24
        uint32_t h = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1u);
        const uint32_t halfway = 1u << (shift - 1u);
        if (rest > halfway || (rest == halfway && (h & 1u))) ++h; // may carry into the normal range
        return sign | uint16_t(h);
    }
    // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits to even.
    uint32_t h = (absBits - 0x38000000u) >> 13;
    const uint32_t rest = absBits & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;
    return sign | uint16_t(h);
}

float bf16ToFloat(uint16_t h) { return bitsFloat(uint32_t(h) << 16); }

// ---------------------------------------------------------------------------------------------
// ggml blocks.

static inline uint16_t readU16(const uint8_t* p) { return uint16_t(p[0] | (uint16_t(p[1]) << 8)); }

// Q4_K packs eight 6-bit scales and eight 6-bit mins into 12 bytes (ggml get_scale_min_k4):
// sub-blocks 0..3 use the low 6 bits of bytes j and j+4; sub-blocks 4..7 take their low 4 bits
// from byte j+4 and their top 2 bits from the spare top bits of bytes j-4 and j.
static inline void q4kScaleMin(int j, const uint8_t* packed, uint8_t& scale, uint8_t& min) {
    if (j < 4) {
        scale = packed[j] & 63;
        min = packed[j + 4] & 63;
    } else {
        scale = uint8_t((packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4));
        min = uint8_t((packed[j + 4] >> 4) | ((packed[j] >> 6) << 4));
    }
}

static void dequantizeQ8_0(const uint8_t* b, float* y) {
    const float d = halfToFloat(readU16(b)); // block: fp16 d, int8 q[32]
    const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
    for (int j = 0; j < 32; ++j) y[j] = float(q[j]) * d;
}

static void dequantizeQ4_0(const uint8_t* b, float* y) {
    const float d = halfToFloat(readU16(b)); // block: fp16 d, uint8 qs[16]
    const uint8_t* qs = b + 2;
    for (int j = 0; j < 16; ++j) {
        y[j] = float(int(qs[j] & 0x0f) - 8) * d;
        y[j + 16] = float(int(qs[j] >> 4) - 8) * d;
    }
}

static void dequantizeQ4_1(const uint8_t* b, float* y) {
    const float d = halfToFloat(readU16(b)); // block: fp16 d, fp16 m, uint8 qs[16]
    const float m = halfToFloat(readU16(b + 2));
    const uint8_t* qs = b + 4;
    for (int j = 0; j < 16; ++j) {
        y[j] = float(qs[j] & 0x0f) * d + m;
        y[j + 16] = float(qs[j] >> 4) * d + m;
    }
}

static void dequantizeQ4_K(const uint8_t* b, float* y) {
    // block: fp16 d, fp16 dmin, uint8 scales[12], uint8 qs[128]; 8 sub-blocks of 32.
    const float d = halfToFloat(readU16(b));
    const float dmin = halfToFloat(readU16(b + 2));
    const uint8_t* packed = b + 4;
    const uint8_t* q = b + 16;
    for (int chunk = 0; chunk < 4; ++chunk) { // 64 elements: low nibbles then high nibbles
        uint8_t sc, m;
        q4kScaleMin(2 * chunk, packed, sc, m);
        const float d1 = d * sc, m1 = dmin * m;
        q4kScaleMin(2 * chunk + 1, packed, sc, m);
        const float d2 = d * sc, m2 = dmin * m;
        for (int l = 0; l < 32; ++l) y[l] = d1 * float(q[l] & 0x0f) - m1;
        for (int l = 0; l < 32; ++l) y[32 + l] = d2 * float(q[l] >> 4) - m2;
        y += 64;
        q += 32;
    }
}

// Q6_K: each half of 128 elements takes 64 bytes of ql (low 4 bits) and 32 of qh (2 high bits
// each). For l in 0..31: elements l, l+32, l+64, l+96 are the low nibble of ql[l], low nibble of
// ql[l+32], high nibble of ql[l], high nibble of ql[l+32], with bits 0-1, 2-3, 4-5, 6-7 of qh[l]
// on top. Element e uses scale e / 16.
static void dequantizeQ6_K(const uint8_t* b, float* y) {
    // block: uint8 ql[128], uint8 qh[64], int8 scales[16], fp16 d
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = halfToFloat(readU16(b + 208));
    for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            const int q1 = int((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
            const int q2 = int((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
            const int q3 = int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
            const int q4 = int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
            y[l] = d * float(sc[is]) * float(q1);
            y[l + 32] = d * float(sc[is + 2]) * float(q2);
            y[l + 64] = d * float(sc[is + 4]) * float(q3);
            y[l + 96] = d * float(sc[is + 6]) * float(q4);
        }
        y += 128;
        ql += 64;
        qh += 32;
        sc += 8;
    }
}

// Unpacks one Q6_K block into q[256] in [-32, 31] and its 16 int8 sub-block scales.
static void unpackQ6_K(const uint8_t* b, int8_t* q, int8_t* scales, float& d) {
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    std::memcpy(scales, b + 192, 16);
    d = halfToFloat(readU16(b + 208));
    for (int half = 0; half < 2; ++half) {
        for (int l = 0; l < 32; ++l) {
            q[l] = int8_t(int((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32);
            q[l + 32] = int8_t(int((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[l + 64] = int8_t(int((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[l + 96] = int8_t(int((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
        q += 128;
        ql += 64;
        qh += 32;
    }
}

void dequantize(DType t, const uint8_t* src, float* dst, int64_t n) {
    const int64_t blockN = blockElements(t);
    if (n < 0 || n % blockN != 0)
        throw Error(std::string("cannot decode ") + std::to_string(n) + " values of " + dtypeName(t) +
                    ": not a multiple of its block of " + std::to_string(blockN));
    const int64_t blocks = n / blockN;
    const int64_t bytes = blockBytes(t);
    switch (t) {
    case DType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case DType::F16:
        for (int64_t i = 0; i < n; ++i) dst[i] = halfToFloat(readU16(src + 2 * i));
        return;
    case DType::BF16:
        for (int64_t i = 0; i < n; ++i) dst[i] = bf16ToFloat(readU16(src + 2 * i));
        return;
    case DType::Q8_0:
        for (int64_t i = 0; i < blocks; ++i) dequantizeQ8_0(src + i * bytes, dst + i * blockN);
        return;
    case DType::Q4_0:
        for (int64_t i = 0; i < blocks; ++i) dequantizeQ4_0(src + i * bytes, dst + i * blockN);
        return;
    case DType::Q4_1:
        for (int64_t i = 0; i < blocks; ++i) dequantizeQ4_1(src + i * bytes, dst + i * blockN);
        return;
    case DType::Q4_K:
        for (int64_t i = 0; i < blocks; ++i) dequantizeQ4_K(src + i * bytes, dst + i * blockN);
        return;
    case DType::Q6_K:
        for (int64_t i = 0; i < blocks; ++i) dequantizeQ6_K(src + i * bytes, dst + i * blockN);
        return;
    }
}

// ---------------------------------------------------------------------------------------------
// WeightMatrix.

uint64_t WeightMatrix::sizeBytes() const {
    return uint64_t(f16.size()) * 2 + q8.size() + q4.size() + uint64_t(scales.size()) * 2 +
           uint64_t(mins.size()) * 2;
}

void WeightMatrix::dequantizeRow(int64_t r, float* out) const {
    if (r < 0 || r >= rows)
        throw Error("weight row " + std::to_string(r) + " out of range (matrix has " + std::to_string(rows) + ")");
    switch (precision) {
    case Precision::FP16: {
        const uint16_t* h = f16.data() + r * cols;
        for (int64_t c = 0; c < cols; ++c) out[c] = halfToFloat(h[c]);
        return;
    }
    case Precision::INT8: {
        const int8_t* q = q8.data() + r * cols;
        const int64_t groups = groupsPerRow();
        for (int64_t g = 0; g < groups; ++g) {
            const float s = halfToFloat(scales[r * groups + g]);
            for (int k = 0; k < groupSize; ++k) out[g * groupSize + k] = float(q[g * groupSize + k]) * s;
        }
        return;
    }
    case Precision::INT4: {
        const uint8_t* q = q4.data() + r * (cols / 2);
        const int64_t groups = groupsPerRow();
        for (int64_t g = 0; g < groups; ++g) {
            const float s = halfToFloat(scales[r * groups + g]);
            const float m = halfToFloat(mins[r * groups + g]);
            for (int k = 0; k < groupSize; k += 2) {
                const uint8_t byte = q[(g * groupSize + k) / 2];
                out[g * groupSize + k] = float(byte & 0x0f) * s + m;
                out[g * groupSize + k + 1] = float(byte >> 4) * s + m;
            }
        }
        return;
    }
    }
}

// ---------------------------------------------------------------------------------------------
// Quantization from float (round to nearest).

static void checkShape(int64_t rows, int64_t cols, Precision p, int groupSize, const std::string& what) {
    if (rows <= 0 || cols <= 0)
        throw Error(what + ": empty or negative shape " + std::to_string(rows) + "x" + std::to_string(cols));
    if (p == Precision::FP16) return;
    if (groupSize <= 0 || groupSize % 2 != 0)
        throw Error(what + ": " + precisionName(p) + " group size " + std::to_string(groupSize) +
                    " must be a positive even number");
    if (cols % groupSize != 0)
        throw Error(what + ": " + std::to_string(cols) + " columns are not a multiple of the " +
                    precisionName(p) + " group size " + std::to_string(groupSize));
}

static WeightMatrix emptyMatrix(int64_t rows, int64_t cols, Precision p, int groupSize) {
    WeightMatrix m;
    m.rows = rows;
    m.cols = cols;
    m.precision = p;
    m.groupSize = p == Precision::FP16 ? 0 : groupSize;
    const size_t n = size_t(rows) * size_t(cols);
    const size_t groups = p == Precision::FP16 ? 0 : size_t(rows) * size_t(cols / groupSize);
    switch (p) {
    case Precision::FP16: m.f16.resize(n); break;
    case Precision::INT8: m.q8.resize(n); m.scales.resize(groups); break;
    case Precision::INT4: m.q4.resize(n / 2); m.scales.resize(groups); m.mins.resize(groups); break;
    }
    return m;
}

// Group statistics and rounding, with AVX2 where the build has it. Both versions give identical
// results: the same float operations, and vroundps in round-to-nearest-even mode is nearbyint.
static inline bool allFinite(const float* x, int64_t n) {
    int64_t i = 0;
#if defined(__AVX2__)
    const __m256 absMask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 inf = _mm256_set1_ps(INFINITY);
    for (; i + 8 <= n; i += 8) {
        // |x| < inf is false for inf and NaN
        const __m256 lt = _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(x + i), absMask), inf, _CMP_LT_OQ);
        if (_mm256_movemask_ps(lt) != 0xff) return false;
    }
#endif
    for (; i < n; ++i)
        if (!std::isfinite(x[i])) return false;
    return true;
}

static inline void minMaxAbs(const float* x, int n, float& lo, float& hi, float& maxAbs) {
    int i = 0;
    lo = x[0];
    hi = x[0];
#if defined(__AVX2__)
    if (n >= 8) {
        __m256 vlo = _mm256_loadu_ps(x), vhi = vlo;
        for (i = 8; i + 8 <= n; i += 8) {
            const __m256 v = _mm256_loadu_ps(x + i);
            vlo = _mm256_min_ps(vlo, v);
            vhi = _mm256_max_ps(vhi, v);
        }
        float l[8], h[8];
        _mm256_storeu_ps(l, vlo);
        _mm256_storeu_ps(h, vhi);
        for (int k = 0; k < 8; ++k) {
            lo = std::min(lo, l[k]);
            hi = std::max(hi, h[k]);
        }
    }
#endif
    for (; i < n; ++i) {
        lo = std::min(lo, x[i]);
        hi = std::max(hi, x[i]);
    }
    maxAbs = std::max(std::fabs(lo), std::fabs(hi));
}

// q[k] = clamp(nearbyint((x[k] - offset) * inv), lo, hi) for k < n.
static inline void roundScaled(const float* x, int n, float offset, float inv, float lo, float hi, int32_t* q) {
    int i = 0;
#if defined(__AVX2__)
    const __m256 vo = _mm256_set1_ps(offset), vi = _mm256_set1_ps(inv);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vo), vi);
        v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm256_min_ps(_mm256_max_ps(v, vlo), vhi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_cvtps_epi32(v));
    }
#endif
    for (; i < n; ++i) q[i] = int32_t(std::clamp(std::nearbyint((x[i] - offset) * inv), lo, hi));
}

static inline void floatsToHalves(const float* x, uint16_t* h, int64_t n) {
    int64_t i = 0;
#if defined(__F16C__)
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(h + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
#endif
    for (; i < n; ++i) h[i] = floatToHalf(x[i]);
}

// Quantizes one row of floats w[cols] into row r of m (shape and storage already set up).
static void quantizeRowInto(WeightMatrix& m, int64_t r, const float* w, const std::string& what) {
    const int64_t cols = m.cols;
    if (!allFinite(w, cols)) {
        int64_t c = 0;
        while (std::isfinite(w[c])) ++c;
        throw Error(what + ": weight at row " + std::to_string(r) + ", column " + std::to_string(c) +
                    " is not a finite number");
    }
    switch (m.precision) {
    case Precision::FP16: {
        uint16_t* h = m.f16.data() + r * cols;
        floatsToHalves(w, h, cols);
        for (int64_t c = 0; c < cols; ++c)
            if ((h[c] & 0x7c00) == 0x7c00)
                throw Error(what + ": weight " + std::to_string(w[c]) + " at row " + std::to_string(r) + ", column " +
                            std::to_string(c) + " is beyond the FP16 range");
        return;
    }
    case Precision::INT8: {
        // Symmetric: scale = max|w| / 127, q = round(w / scale) in [-127, 127].
        const int gs = m.groupSize;
        const int64_t groups = m.groupsPerRow();
        int8_t* q = m.q8.data() + r * cols;
        std::vector<int32_t> qi(static_cast<size_t>(gs));
        for (int64_t g = 0; g < groups; ++g) {
            const float* x = w + g * gs;
            float lo, hi, maxAbs;
            minMaxAbs(x, gs, lo, hi, maxAbs);
            const uint16_t scaleBits = floatToHalf(maxAbs / 127.0f);
            const float scale = halfToFloat(scaleBits);
            if (!std::isfinite(scale))
                throw Error(what + ": weights at row " + std::to_string(r) + " exceed the FP16 scale range");
            m.scales[r * groups + g] = scaleBits;
            // Quantize against the stored (FP16-rounded) scale so rounding is to the nearest
            // value that dequantization can really produce.
            const float inv = scale > 0 ? 1.0f / scale : 0.0f;
            roundScaled(x, gs, 0.0f, inv, -127.0f, 127.0f, qi.data());
            for (int k = 0; k < gs; ++k) q[g * gs + k] = int8_t(qi[size_t(k)]);
        }
        return;
    }
    case Precision::INT4: {
        // Asymmetric: min = group minimum, scale = (max - min) / 15, q = round((w - min) / scale).
        const int gs = m.groupSize;
        const int64_t groups = m.groupsPerRow();
        uint8_t* q = m.q4.data() + r * (cols / 2);
        std::vector<int32_t> qi(static_cast<size_t>(gs));
        for (int64_t g = 0; g < groups; ++g) {
            const float* x = w + g * gs;
            float lo, hi, maxAbs;
            minMaxAbs(x, gs, lo, hi, maxAbs);
            const uint16_t minBits = floatToHalf(lo);
            const uint16_t scaleBits = floatToHalf((hi - lo) / 15.0f);
            const float minH = halfToFloat(minBits), scale = halfToFloat(scaleBits);
            if (!std::isfinite(minH) || !std::isfinite(scale))
                throw Error(what + ": weights at row " + std::to_string(r) + " exceed the FP16 range");
            m.scales[r * groups + g] = scaleBits;
            m.mins[r * groups + g] = minBits;
            const float inv = scale > 0 ? 1.0f / scale : 0.0f; // a constant group: every q is 0
            roundScaled(x, gs, minH, inv, 0.0f, 15.0f, qi.data());
            for (int k = 0; k < gs; k += 2)
                q[(g * gs + k) / 2] = uint8_t(qi[size_t(k)] | (qi[size_t(k + 1)] << 4));
        }
        return;
    }
    }
}

// Runs fn(begin, end) over row ranges covering [0, rows): on several threads for big matrices
// (loading a 7B model converts billions of weights), on the caller's alone for small ones.
// The first exception any range throws is rethrown here.
static void forRowRanges(int64_t rows, int64_t cols, const std::function<void(int64_t, int64_t)>& fn) {
    const int64_t threads = std::min<int64_t>(std::max(1u, std::thread::hardware_concurrency()), 16);
    if (threads == 1 || rows * cols < (int64_t(1) << 20) || rows < 2 * threads) {
        fn(0, rows);
        return;
    }
    std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
    std::vector<std::thread> pool;
    const int64_t per = (rows + threads - 1) / threads;
    for (int64_t k = 1; k < threads; ++k)
        pool.emplace_back([&, k] {
            try {
                fn(std::min(rows, k * per), std::min(rows, (k + 1) * per));
            } catch (...) {
                errors[size_t(k)] = std::current_exception();
            }
        });
    try {
        fn(0, std::min(rows, per));
    } catch (...) {
        errors[0] = std::current_exception();
    }
    for (std::thread& t : pool) t.join();
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
}

WeightMatrix quantizeMatrix(const float* w, int64_t rows, int64_t cols, Precision p, int groupSize) {
    const std::string what = "quantizing a " + std::to_string(rows) + "x" + std::to_string(cols) + " matrix";
    checkShape(rows, cols, p, groupSize, what);
    if (!w) throw Error(what + ": no data");
    WeightMatrix m = emptyMatrix(rows, cols, p, groupSize);
    forRowRanges(rows, cols, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) quantizeRowInto(m, r, w + r * cols, what);
    });
    return m;
}

// ---------------------------------------------------------------------------------------------
// File tensors -> WeightMatrix.

static std::string tensorLabel(const TensorView& t) {
    return "tensor '" + t.name + "' (" + dtypeName(t.type) + ")";
}

// Checks that the view really holds elementCount() values of its type and returns the bytes needed.
static uint64_t checkTensorBytes(const TensorView& t) {
    for (int64_t d : t.dims)
        if (d <= 0) throw Error(tensorLabel(t) + ": dimension " + std::to_string(d) + " is not positive");
    const int64_t n = t.elementCount();
    const int64_t blockN = blockElements(t.type);
    if (t.dims.empty() || t.dims[0] % blockN != 0)
        throw Error(tensorLabel(t) + ": rows of " + std::to_string(t.dims.empty() ? 0 : t.dims[0]) +
                    " values are not a multiple of the block size " + std::to_string(blockN));
    const uint64_t need = uint64_t(n / blockN) * uint64_t(blockBytes(t.type));
    if (!t.data || t.sizeBytes < need)
        throw Error(tensorLabel(t) + ": holds " + std::to_string(t.sizeBytes) + " bytes, needs " +
                    std::to_string(need));
    return need;
}

std::vector<float> toFloats(const TensorView& t) {
    checkTensorBytes(t);
    std::vector<float> out(size_t(t.elementCount()));
    dequantize(t.type, t.data, out.data(), t.elementCount());
    return out;
}

// The precision and group size a block type converts into without loss (up to FP16 rounding
// of K-quant scales).
static bool naturalFormat(DType t, Precision& p, int& groupSize) {
    switch (t) {
    case DType::F16: p = Precision::FP16; groupSize = 0; return true;
    case DType::Q8_0: p = Precision::INT8; groupSize = 32; return true;
    case DType::Q6_K: p = Precision::INT8; groupSize = 16; return true;
    case DType::Q4_0: case DType::Q4_1: case DType::Q4_K: p = Precision::INT4; groupSize = 32; return true;
    case DType::F32: case DType::BF16: return false;
    }
    return false;
}

// Exact block conversions; `row` points at the row's first block, r is the output row.
static void convertRowExact(const TensorView& t, const uint8_t* row, WeightMatrix& m, int64_t r) {
    const int64_t cols = m.cols;
    const int64_t groups = m.groupsPerRow();
    const int64_t blocks = cols / blockElements(t.type);
    const int64_t bytes = blockBytes(t.type);
    switch (t.type) {
    case DType::F16:
        std::memcpy(m.f16.data() + r * cols, row, size_t(cols) * 2);
        return;
    case DType::Q8_0:
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* blk = row + b * bytes;
            m.scales[r * groups + b] = readU16(blk);
            std::memcpy(m.q8.data() + r * cols + b * 32, blk + 2, 32);
        }
        return;
    case DType::Q4_0:
    case DType::Q4_1:
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* blk = row + b * bytes;
            const uint16_t dBits = readU16(blk);
            const uint8_t* qs = blk + (t.type == DType::Q4_0 ? 2 : 4);
            m.scales[r * groups + b] = dBits;
            if (t.type == DType::Q4_1) {
                m.mins[r * groups + b] = readU16(blk + 2);
            } else {
                // w = d (q - 8) = d q + (-8 d); -8 d is exact in FP16 unless it overflows.
                const float minF = -8.0f * halfToFloat(dBits);
                if (!std::isfinite(minF) || std::fabs(minF) > 65504.0f)
                    throw Error(tensorLabel(t) + ": block scale too large for an FP16 minimum");
                m.mins[r * groups + b] = floatToHalf(minF);
            }
            // ggml: byte j = element j (low nibble) and element j+16 (high nibble).
            // Engine: byte j = element 2j (low nibble) and element 2j+1 (high nibble).
            uint8_t* out = m.q4.data() + r * (cols / 2) + b * 16;
            uint8_t nib[32];
            for (int j = 0; j < 16; ++j) {
                nib[j] = qs[j] & 0x0f;
                nib[j + 16] = qs[j] >> 4;
            }
            for (int j = 0; j < 16; ++j) out[j] = uint8_t(nib[2 * j] | (nib[2 * j + 1] << 4));
        }
        return;
    case DType::Q4_K:
        for (int64_t b = 0; b < blocks; ++b) {
            const uint8_t* blk = row + b * bytes;
            const float d = halfToFloat(readU16(blk));
            const float dmin = halfToFloat(readU16(blk + 2));
            const uint8_t* packed = blk + 4;
            const uint8_t* q = blk + 16;
            for (int sub = 0; sub < 8; ++sub) { // sub-block of 32 = one INT4 group
                uint8_t sc, mn;
                q4kScaleMin(sub, packed, sc, mn);
                const int64_t g = b * 8 + sub;
                m.scales[r * groups + g] = floatToHalf(d * float(sc));
                m.mins[r * groups + g] = floatToHalf(-(dmin * float(mn)));
                // Sub-block 2c uses the low nibbles of q[32c..32c+31], 2c+1 the high ones.
                const uint8_t* qc = q + 32 * (sub / 2);
                const int shift = (sub % 2) * 4;
                uint8_t* out = m.q4.data() + r * (cols / 2) + g * 16;
                for (int j = 0; j < 16; ++j)
                    out[j] = uint8_t(((qc[2 * j] >> shift) & 0x0f) | (((qc[2 * j + 1] >> shift) & 0x0f) << 4));
            }
        }
        return;
    case DType::Q6_K:
        for (int64_t b = 0; b < blocks; ++b) {
            int8_t q[256], sc[16];
            float d;
            unpackQ6_K(row + b * bytes, q, sc, d);
            for (int sub = 0; sub < 16; ++sub) m.scales[r * groups + b * 16 + sub] = floatToHalf(d * float(sc[sub]));
            std::memcpy(m.q8.data() + r * cols + b * 256, q, 256);
        }
        return;
    case DType::F32:
    case DType::BF16:
        return;
    }
}

int fittingGroupSize(int64_t cols, int requested) {
    for (int g = requested; g >= 16 && g % 2 == 0; g /= 2)
        if (cols % g == 0) return g;
    return requested;
}

WeightMatrix toWeightMatrix(const TensorView& t, const QuantizeOptions& opt) {
    if (t.dims.size() != 2)
        throw Error(tensorLabel(t) + ": a weight matrix needs 2 dimensions, it has " + std::to_string(t.dims.size()));
    checkTensorBytes(t);
    const int64_t cols = t.dims[0], rows = t.dims[1];
    const int groupSize = fittingGroupSize(cols, opt.precision == Precision::INT8   ? opt.int8GroupSize
                                                 : opt.precision == Precision::INT4 ? opt.int4GroupSize
                                                                                    : 0);
    const uint64_t rowBytes = uint64_t(cols / blockElements(t.type)) * uint64_t(blockBytes(t.type));

    Precision natural;
    int naturalGroup = 0;
    // Exact conversion where the block's own format is the one asked for. forceGroupSize asks
    // for requantization into another group size; where the sizes already agree the exact
    // conversion is what requantizing would approximate, so it is kept.
    if (naturalFormat(t.type, natural, naturalGroup) && natural == opt.precision &&
        (!opt.forceGroupSize || natural == Precision::FP16 || groupSize == naturalGroup)) {
        WeightMatrix m = emptyMatrix(rows, cols, natural, naturalGroup);
        forRowRanges(rows, cols, [&](int64_t begin, int64_t end) {
            for (int64_t r = begin; r < end; ++r) convertRowExact(t, t.data + r * rowBytes, m, r);
        });
        return m;
    }

    // Everything else goes through float, one row at a time.
    checkShape(rows, cols, opt.precision, groupSize, tensorLabel(t));
    WeightMatrix m = emptyMatrix(rows, cols, opt.precision, groupSize);
    const std::string label = tensorLabel(t);
    forRowRanges(rows, cols, [&](int64_t begin, int64_t end) {
        std::vector<float> row(static_cast<size_t>(cols));
        for (int64_t r = begin; r < end; ++r) {
            dequantize(t.type, t.data + r * rowBytes, row.data(), cols);
            quantizeRowInto(m, r, row.data(), label);
        }
    });
    return m;
}

} // namespace parley
