// Weight formats: half conversion edge cases, each ggml block type decoded from hand-built bytes
// against hand-computed values, exact GGUF -> engine conversions, round-to-nearest error bounds,
// clear errors for bad shapes, and conversion of real tensors of the default model.
#include "engine/error.h"
#include "engine/gguf.h"
#include "engine/weights.h"
#include "support.h"

#include <QProcess>
#include <QTest>
#include <cmath>
#include <cstring>
#include <random>

using namespace parley;
using namespace parley::test;

namespace {

uint32_t bitsOf(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

void putU16(uint8_t* p, uint16_t v) {
    p[0] = uint8_t(v & 0xff);
    p[1] = uint8_t(v >> 8);
}

// Random blocks of type t: random bytes everywhere, with the fp16 scale fields replaced by
// small finite random halves (random bits could be NaN or huge).
std::vector<uint8_t> randomBlocks(DType t, int64_t blocks, std::mt19937& rng) {
    std::vector<uint8_t> b(size_t(blocks * blockBytes(t)));
    for (uint8_t& v : b) v = uint8_t(rng());
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    for (int64_t i = 0; i < blocks; ++i) {
        uint8_t* blk = b.data() + i * blockBytes(t);
        switch (t) {
        case DType::Q8_0: case DType::Q4_0: putU16(blk, floatToHalf(scale(rng))); break;
        case DType::Q4_1: putU16(blk, floatToHalf(scale(rng))); putU16(blk + 2, floatToHalf(-8 * scale(rng))); break;
        case DType::Q4_K: putU16(blk, floatToHalf(scale(rng) / 16)); putU16(blk + 2, floatToHalf(scale(rng) / 16)); break;
        case DType::Q6_K: putU16(blk + 208, floatToHalf(scale(rng) / 16)); break;
        default: break;
        }
    }
    return b;
}

TensorView viewOf(const std::vector<uint8_t>& bytes, DType t, int64_t cols, int64_t rows, const char* name = "w") {
    TensorView v;
    v.name = name;
    v.dims = {cols, rows};
    v.type = t;
    v.data = bytes.data();
    v.sizeBytes = bytes.size();
    return v;
}

} // namespace

class TestWeights : public QObject {
    Q_OBJECT
private slots:
    void halfToFloatKnownValues() {
        QCOMPARE(halfToFloat(0x3c00), 1.0f);
        QCOMPARE(halfToFloat(0xc000), -2.0f);
        QCOMPARE(halfToFloat(0x3555), 0.333251953125f);
        QCOMPARE(halfToFloat(0x7bff), 65504.0f);
        QCOMPARE(halfToFloat(0x0400), std::ldexp(1.0f, -14));           // smallest normal
        QCOMPARE(halfToFloat(0x0001), std::ldexp(1.0f, -24));           // smallest subnormal
        QCOMPARE(halfToFloat(0x03ff), std::ldexp(1023.0f, -24));        // largest subnormal
        QCOMPARE(bitsOf(halfToFloat(0x8000)), 0x80000000u);              // -0
        QVERIFY(std::isinf(halfToFloat(0x7c00)) && halfToFloat(0x7c00) > 0);
        QVERIFY(std::isinf(halfToFloat(0xfc00)) && halfToFloat(0xfc00) < 0);
        QVERIFY(std::isnan(halfToFloat(0x7e00)));
        QVERIFY(std::isnan(halfToFloat(0x7c01)));                        // signalling NaN stays NaN
        QCOMPARE(bf16ToFloat(0x3f80), 1.0f);
        QCOMPARE(bf16ToFloat(0xc0a0), -5.0f);
        QCOMPARE(bf16ToFloat(0x3e20), 0.15625f);
    }

    void floatToHalfRoundsToNearestEven() {
        QCOMPARE(floatToHalf(1.0f), uint16_t(0x3c00));
        QCOMPARE(floatToHalf(-2.0f), uint16_t(0xc000));
        QCOMPARE(floatToHalf(1.0f + std::ldexp(1.0f, -11)), uint16_t(0x3c00));     // tie -> even (down)
        QCOMPARE(floatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), uint16_t(0x3c02)); // tie -> even (up)
        QCOMPARE(floatToHalf(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), uint16_t(0x3c01));
        QCOMPARE(floatToHalf(65504.0f), uint16_t(0x7bff));
        QCOMPARE(floatToHalf(65519.0f), uint16_t(0x7bff));                          // below the tie
        QCOMPARE(floatToHalf(65520.0f), uint16_t(0x7c00));                          // tie -> inf
        QCOMPARE(floatToHalf(1e10f), uint16_t(0x7c00));
        QCOMPARE(floatToHalf(-1e10f), uint16_t(0xfc00));
        QCOMPARE(floatToHalf(std::ldexp(1.0f, -14)), uint16_t(0x0400));
        QCOMPARE(floatToHalf(std::ldexp(1.0f, -24)), uint16_t(0x0001));
        QCOMPARE(floatToHalf(std::ldexp(1.0f, -25)), uint16_t(0x0000));              // tie -> even (0)
        QCOMPARE(floatToHalf(std::ldexp(1.0001f, -25)), uint16_t(0x0001));
        QCOMPARE(floatToHalf(std::ldexp(3.0f, -25)), uint16_t(0x0002));              // 1.5 units -> 2
        QCOMPARE(floatToHalf(std::ldexp(5.0f, -25)), uint16_t(0x0002));              // 2.5 units -> 2
        QCOMPARE(floatToHalf(std::ldexp(1023.5f, -24)), uint16_t(0x0400));           // carries to normal
        QCOMPARE(floatToHalf(1e-10f), uint16_t(0x0000));
        QCOMPARE(floatToHalf(-1e-10f), uint16_t(0x8000));
        QCOMPARE(floatToHalf(-0.0f), uint16_t(0x8000));
        QCOMPARE(floatToHalf(INFINITY), uint16_t(0x7c00));
        QCOMPARE(floatToHalf(-INFINITY), uint16_t(0xfc00));
        const uint16_t nan = floatToHalf(NAN);
        QVERIFY((nan & 0x7c00) == 0x7c00 && (nan & 0x3ff) != 0);
    }

    // Every half converts to float and back unchanged, and every float halfway between two
    // neighbouring halves rounds to the one with an even mantissa.
    void halfRoundTripsAndTies() {
        for (uint32_t h = 0; h < 0x10000; ++h) {
            const float f = halfToFloat(uint16_t(h));
            if (std::isnan(f)) continue;
            QCOMPARE(floatToHalf(f), uint16_t(h));
            if ((h & 0x7fff) >= 0x7bff) continue; // the next one up is inf / NaN
            const double mid = (double(f) + double(halfToFloat(uint16_t(h + 1)))) / 2; // exact in float
            const uint16_t expected = (h & 1) ? uint16_t(h + 1) : uint16_t(h);
            QCOMPARE(floatToHalf(float(mid)), expected);
        }
    }

    // The bulk FP16 conversion (F16C where the CPU has it) agrees with floatToHalf on ties,
    // subnormals and the largest values; beyond FP16's range is an error, not infinity.
    void bulkFp16ConversionMatchesScalar() {
        std::vector<float> w = {1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -11), 65519.0f, -65504.0f,
                                std::ldexp(1.0f, -25), std::ldexp(3.0f, -25), std::ldexp(1023.5f, -24), 1e-10f,
                                -0.0f, 0.1f, -3.14159f, 2.5e-6f, 7.0f, -1e-7f, 1234.567f, 0.33333334f};
        const WeightMatrix m = quantizeMatrix(w.data(), 2, 8, Precision::FP16, 0);
        for (size_t i = 0; i < w.size(); ++i) QCOMPARE(m.f16[i], floatToHalf(w[i]));
        w[3] = -65520.0f; // rounds to -inf
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), 2, 8, Precision::FP16, 0));
    }

    void decodesF32F16BF16() {
        const float f[3] = {1.5f, -0.25f, 3e-5f};
        uint8_t raw[12];
        std::memcpy(raw, f, 12);
        float out[3];
        dequantize(DType::F32, raw, out, 3);
        QCOMPARE(out[2], 3e-5f);
        const uint8_t half[6] = {0x00, 0x3e, 0x00, 0xb4, 0x01, 0x00}; // 1.5, -0.25, 2^-24
        dequantize(DType::F16, half, out, 3);
        QCOMPARE(out[0], 1.5f);
        QCOMPARE(out[1], -0.25f);
        QCOMPARE(out[2], std::ldexp(1.0f, -24));
        const uint8_t bf[6] = {0xc0, 0x3f, 0x80, 0xbe, 0x00, 0x00}; // 1.5, -0.25, 0
        dequantize(DType::BF16, bf, out, 3);
        QCOMPARE(out[0], 1.5f);
        QCOMPARE(out[1], -0.25f);
        QCOMPARE(out[2], 0.0f);
    }

    void decodesQ8_0() {
        uint8_t blk[34];
        putU16(blk, 0x3400); // d = 0.25
        for (int j = 0; j < 32; ++j) blk[2 + j] = uint8_t(int8_t(j * 8 - 128)); // -128, -120, ..., 120
        float out[32];
        dequantize(DType::Q8_0, blk, out, 32);
        QCOMPARE(out[0], -32.0f);
        QCOMPARE(out[1], -30.0f);
        QCOMPARE(out[16], 0.0f);
        QCOMPARE(out[31], 30.0f);
        for (int j = 0; j < 32; ++j) QCOMPARE(out[j], 0.25f * float(j * 8 - 128));
    }

    void decodesQ4_0() {
        uint8_t blk[18];
        putU16(blk, 0x3800); // d = 0.5
        // byte j: element j in the low nibble, element j + 16 in the high nibble
        for (int j = 0; j < 16; ++j) blk[2 + j] = uint8_t(j | ((15 - j) << 4));
        float out[32];
        dequantize(DType::Q4_0, blk, out, 32);
        QCOMPARE(out[0], -4.0f);   // (0 - 8) * 0.5
        QCOMPARE(out[15], 3.5f);   // (15 - 8) * 0.5
        QCOMPARE(out[16], 3.5f);   // high nibble of byte 0 = 15
        QCOMPARE(out[31], -4.0f);  // high nibble of byte 15 = 0
        for (int j = 0; j < 16; ++j) {
            QCOMPARE(out[j], 0.5f * float(j - 8));
            QCOMPARE(out[j + 16], 0.5f * float(7 - j));
        }
    }

    void decodesQ4_1() {
        uint8_t blk[20];
        putU16(blk, 0x3800);     // d = 0.5
        putU16(blk + 2, 0xbc00); // m = -1
        for (int j = 0; j < 16; ++j) blk[4 + j] = uint8_t(j | ((15 - j) << 4));
        float out[32];
        dequantize(DType::Q4_1, blk, out, 32);
        QCOMPARE(out[0], -1.0f);   // 0 * 0.5 - 1
        QCOMPARE(out[3], 0.5f);    // 3 * 0.5 - 1
        QCOMPARE(out[15], 6.5f);   // 15 * 0.5 - 1
        QCOMPARE(out[16], 6.5f);
        QCOMPARE(out[31], -1.0f);
        for (int j = 0; j < 16; ++j) {
            QCOMPARE(out[j], 0.5f * float(j) - 1.0f);
            QCOMPARE(out[j + 16], 0.5f * float(15 - j) - 1.0f);
        }
    }

    void decodesQ4_K() {
        // 8 sub-blocks of 32 with 6-bit scales and mins; sub-blocks 4..7 need the top bits
        // spread over the 12 packed bytes.
        const uint8_t sc[8] = {1, 2, 3, 4, 17, 33, 63, 50};
        const uint8_t mn[8] = {0, 5, 10, 63, 20, 40, 1, 48};
        uint8_t blk[144] = {};
        putU16(blk, 0x3800);     // d = 0.5
        putU16(blk + 2, 0x3400); // dmin = 0.25
        uint8_t* packed = blk + 4;
        for (int j = 0; j < 4; ++j) {
            packed[j] = uint8_t(sc[j] | ((sc[j + 4] >> 4) << 6));
            packed[j + 4] = uint8_t(mn[j] | ((mn[j + 4] >> 4) << 6));
            packed[j + 8] = uint8_t((sc[j + 4] & 0x0f) | ((mn[j + 4] & 0x0f) << 4));
        }
        uint8_t* qs = blk + 16;
        for (int i = 0; i < 128; ++i) qs[i] = uint8_t(i * 37 + 11);
        float out[256];
        dequantize(DType::Q4_K, blk, out, 256);
        // Elements 64c .. 64c+31 are the low nibbles of qs[32c ..], 64c+32 .. the high nibbles;
        // sub-block = element / 32.
        for (int e = 0; e < 256; ++e) {
            const int chunk = e / 64, l = e % 32, sub = e / 32;
            const uint8_t byte = qs[chunk * 32 + l];
            const int q = (e % 64) < 32 ? (byte & 0x0f) : (byte >> 4);
            QCOMPARE(out[e], 0.5f * float(sc[sub]) * float(q) - 0.25f * float(mn[sub]));
        }
        // A few by hand: e=0: q = 11 & 15 = 11, sc 1, m 0 -> 5.5.
        QCOMPARE(out[0], 5.5f);
        // e=32: high nibble of qs[0]=11 -> 0; sc 2, m 5 -> -1.25.
        QCOMPARE(out[32], -1.25f);
        // e=200: chunk 3, l=8, low nibble of qs[104] = (104*37+11) & 255 = 0x13 -> 3;
        // sub 6: sc 63, m 1 -> 0.5*63*3 - 0.25 = 94.25.
        QCOMPARE(out[200], 94.25f);
    }

    void decodesQ6_K() {
        uint8_t blk[210];
        uint8_t* ql = blk;
        uint8_t* qh = blk + 128;
        int8_t* sc = reinterpret_cast<int8_t*>(blk + 192);
        for (int i = 0; i < 128; ++i) ql[i] = uint8_t(i * 29 + 3);
        for (int i = 0; i < 64; ++i) qh[i] = uint8_t(i * 53 + 7);
        for (int i = 0; i < 16; ++i) sc[i] = int8_t((i % 2 ? -1 : 1) * (i + 1));
        putU16(blk + 208, 0x3000); // d = 0.125
        float out[256];
        dequantize(DType::Q6_K, blk, out, 256);
        // Per half of 128: element 32k + l takes the low (k = 0, 1) or high (k = 2, 3) nibble of
        // ql[l + 32 (k % 2)] and bits 2k, 2k+1 of qh[l]; scale = element / 16.
        for (int e = 0; e < 256; ++e) {
            const int half = e / 128, k = (e % 128) / 32, l = e % 32;
            const uint8_t low = ql[half * 64 + l + 32 * (k % 2)];
            const int nib = k < 2 ? (low & 0x0f) : (low >> 4);
            const int hi = (qh[half * 32 + l] >> (2 * k)) & 3;
            const int q = (nib | (hi << 4)) - 32;
            QCOMPARE(out[e], 0.125f * float(sc[e / 16]) * float(q));
        }
        // By hand: e=0: ql[0]=3 -> 3, qh[0]=7 -> bits 0-1 = 3 -> q = 3 + 48 - 32 = 19; sc 1 -> 2.375.
        QCOMPARE(out[0], 2.375f);
        // e=16: ql[16] = (16*29+3)&255 = 211 -> low 3; qh[16] = (16*53+7)&255 = 87 -> bits 0-1 = 3
        // -> q = 19; sc[1] = -2 -> -4.75.
        QCOMPARE(out[16], -4.75f);
    }

    // Independent check: the gguf Python package's numpy decoder on random blocks.
    void decodingMatchesGgufPython() {
        const std::string python = envPath("PARLEY_PYTHON");
        if (!fileExists(python)) QSKIP("PARLEY_PYTHON (with numpy and gguf) not available");
        std::mt19937 rng(7);
        const DType types[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q6_K};
        const int ggml[] = {8, 2, 3, 12, 14};
        const std::string dir = makeTempDir();
        const int64_t n = 256 * 8;
        std::vector<std::vector<uint8_t>> blocks;
        QStringList args = {"-c",
                            "import sys, numpy as np; from gguf import quants, GGMLQuantizationType as T\n"
                            "for i in range(1, len(sys.argv), 3):\n"
                            "    b = np.fromfile(sys.argv[i], dtype=np.uint8)\n"
                            "    quants.dequantize(b, T(int(sys.argv[i + 1]))).astype(np.float32).tofile(sys.argv[i + 2])\n"};
        for (int k = 0; k < 5; ++k) {
            blocks.push_back(randomBlocks(types[k], n / blockElements(types[k]), rng));
            const std::string base = dir + "/" + dtypeName(types[k]);
            writeFileBytes(base + ".bin", blocks.back());
            args << QString::fromStdString(base + ".bin") << QString::number(ggml[k]) << QString::fromStdString(base + ".f32");
        }
        QProcess p;
        p.start(QString::fromStdString(python), args);
        QVERIFY(p.waitForFinished(120000));
        if (p.exitCode() != 0) QSKIP(qPrintable("gguf package cannot decode: " + p.readAllStandardError()));
        for (int k = 0; k < 5; ++k) {
            std::vector<uint8_t> ref = readFileBytes(dir + "/" + dtypeName(types[k]) + ".f32");
            QCOMPARE(ref.size(), size_t(n * 4));
            std::vector<float> expected(n), got(n);
            std::memcpy(expected.data(), ref.data(), ref.size());
            dequantize(types[k], blocks[size_t(k)].data(), got.data(), n);
            for (int64_t i = 0; i < n; ++i) {
                // numpy may associate d * scale * q differently: allow a few ulps.
                const float tol = 4e-7f * std::fabs(expected[i]) + 1e-30f;
                if (std::fabs(got[i] - expected[i]) > tol)
                    QFAIL(qPrintable(QString("%1 element %2: %3 vs gguf-py %4")
                                         .arg(dtypeName(types[k])).arg(i).arg(got[i]).arg(expected[i])));
            }
        }
    }

    // GGUF blocks -> engine formats: Q8_0, Q4_0 and Q4_1 bit for bit; Q4_K and Q6_K within the
    // FP16 rounding of their combined scales.
    void convertsBlocksExactly_data() {
        QTest::addColumn<int>("type");
        QTest::newRow("Q8_0") << int(DType::Q8_0);
        QTest::newRow("Q4_0") << int(DType::Q4_0);
        QTest::newRow("Q4_1") << int(DType::Q4_1);
        QTest::newRow("Q4_K") << int(DType::Q4_K);
        QTest::newRow("Q6_K") << int(DType::Q6_K);
        QTest::newRow("F16") << int(DType::F16);
    }
    void convertsBlocksExactly() {
        QFETCH(int, type);
        const DType t = DType(type);
        std::mt19937 rng(11 + type);
        const int64_t cols = 512, rows = 5;
        std::vector<uint8_t> bytes;
        if (t == DType::F16) {
            std::vector<float> f = randomFloats(size_t(cols * rows), rng);
            bytes.resize(f.size() * 2);
            for (size_t i = 0; i < f.size(); ++i) putU16(bytes.data() + 2 * i, floatToHalf(f[i]));
        } else {
            bytes = randomBlocks(t, cols * rows / blockElements(t), rng);
        }
        const TensorView v = viewOf(bytes, t, cols, rows);
        QuantizeOptions opt;
        opt.precision = t == DType::F16 ? Precision::FP16
                        : (t == DType::Q8_0 || t == DType::Q6_K) ? Precision::INT8 : Precision::INT4;
        const WeightMatrix m = toWeightMatrix(v, opt);
        QCOMPARE(m.rows, rows);
        QCOMPARE(m.cols, cols);
        QCOMPARE(m.precision, opt.precision);
        QCOMPARE(m.groupSize, t == DType::Q6_K ? 16 : t == DType::F16 ? 0 : 32);
        const bool bitExact = t != DType::Q4_K && t != DType::Q6_K;
        const int64_t rowBytes = cols / blockElements(t) * blockBytes(t);
        std::vector<float> expected(cols), got(cols);
        for (int64_t r = 0; r < rows; ++r) {
            dequantize(t, bytes.data() + r * rowBytes, expected.data(), cols);
            m.dequantizeRow(r, got.data());
            for (int64_t c = 0; c < cols; ++c) {
                if (bitExact) {
                    if (bitsOf(got[c]) != bitsOf(expected[c]))
                        QFAIL(qPrintable(QString("row %1 col %2: %3 vs %4").arg(r).arg(c).arg(got[c]).arg(expected[c])));
                } else {
                    // scale and min each rounded to FP16 (relative error <= 2^-11): the error is at
                    // most 2^-11 (|scale * q| + |min|) <= 2^-11 * 32 * |group scale| for Q6_K and
                    // 2^-11 * (15 |scale| + |min|) for Q4_K.
                    const int64_t g = c / m.groupSize;
                    const float s = halfToFloat(m.scales[r * m.groupsPerRow() + g]);
                    const float mn = t == DType::Q4_K ? halfToFloat(m.mins[r * m.groupsPerRow() + g]) : 0.0f;
                    const float bound = std::ldexp(1.0f, -11) * (32 * std::fabs(s) + std::fabs(mn)) * 1.001f + 1e-30f;
                    if (std::fabs(got[c] - expected[c]) > bound)
                        QFAIL(qPrintable(QString("row %1 col %2: %3 vs %4").arg(r).arg(c).arg(got[c]).arg(expected[c])));
                }
            }
        }
        // sizeBytes: what the arrays hold.
        const uint64_t groups = uint64_t(rows * (m.groupSize ? cols / m.groupSize : 0));
        const uint64_t expectedBytes = opt.precision == Precision::FP16 ? uint64_t(rows * cols * 2)
                                       : opt.precision == Precision::INT8 ? uint64_t(rows * cols) + 2 * groups
                                                                          : uint64_t(rows * cols / 2) + 4 * groups;
        QCOMPARE(m.sizeBytes(), expectedBytes);
    }

    // The engine's INT4 nibble order (element 2j low, 2j+1 high) from a Q4_1 block.
    void int4NibbleOrder() {
        std::vector<uint8_t> blk(20);
        putU16(blk.data(), 0x3c00);     // d = 1
        putU16(blk.data() + 2, 0x0000); // m = 0
        for (int j = 0; j < 16; ++j) blk[4 + j] = uint8_t(j | ((15 - j) << 4)); // q[j] = j, q[j+16] = 15-j
        QuantizeOptions opt;
        opt.precision = Precision::INT4;
        const WeightMatrix m = toWeightMatrix(viewOf(blk, DType::Q4_1, 32, 1), opt);
        QCOMPARE(int(m.q4[0]), 0x10);  // elements 0, 1
        QCOMPARE(int(m.q4[7]), 0xfe);  // elements 14, 15
        QCOMPARE(int(m.q4[8]), 0xef);  // elements 16 (15), 17 (14)
        QCOMPARE(int(m.q4[15]), 0x01); // elements 30 (1), 31 (0)
    }

    // Round to nearest from float: every weight within half a quantization step of the original.
    void quantizationErrorIsBounded_data() {
        QTest::addColumn<int>("precision");
        QTest::addColumn<int>("groupSize");
        QTest::newRow("fp16") << int(Precision::FP16) << 0;
        QTest::newRow("int8 g16") << int(Precision::INT8) << 16;
        QTest::newRow("int8 g32") << int(Precision::INT8) << 32;
        QTest::newRow("int8 g128") << int(Precision::INT8) << 128;
        QTest::newRow("int4 g32") << int(Precision::INT4) << 32;
        QTest::newRow("int4 g128") << int(Precision::INT4) << 128;
    }
    void quantizationErrorIsBounded() {
        QFETCH(int, precision);
        QFETCH(int, groupSize);
        const Precision p = Precision(precision);
        std::mt19937 rng(3);
        const int64_t rows = 7, cols = 256;
        std::vector<float> w = randomFloats(size_t(rows * cols), rng);
        w[5] = 1.0f; // an outlier
        const WeightMatrix m = quantizeMatrix(w.data(), rows, cols, p, groupSize);
        QCOMPARE(m.precision, p);
        std::vector<float> row(cols);
        double sumSq = 0, sumSqErr = 0;
        for (int64_t r = 0; r < rows; ++r) {
            m.dequantizeRow(r, row.data());
            for (int64_t c = 0; c < cols; ++c) {
                const float x = w[r * cols + c];
                const float err = std::fabs(row[c] - x);
                float bound;
                if (p == Precision::FP16) {
                    bound = std::max(std::ldexp(std::fabs(x), -11), std::ldexp(1.0f, -25)); // subnormals
                } else {
                    const int64_t g = r * m.groupsPerRow() + c / groupSize;
                    const float s = halfToFloat(m.scales[g]);
                    // Half a step, plus (INT4) the FP16 rounding of min and of 15 * scale.
                    bound = 0.5f * s * 1.001f;
                    if (p == Precision::INT4)
                        bound += std::ldexp(std::fabs(halfToFloat(m.mins[g])) + 15 * s, -10);
                }
                if (err > bound)
                    QFAIL(qPrintable(QString("row %1 col %2: %3 -> %4, bound %5").arg(r).arg(c).arg(x).arg(row[c]).arg(bound)));
                sumSq += double(x) * x;
                sumSqErr += double(err) * err;
            }
        }
        // The signal survives: relative RMS error well below what each format can do at worst.
        const double relRms = std::sqrt(sumSqErr / sumSq);
        const double limit = p == Precision::FP16 ? 1e-3 : p == Precision::INT8 ? 0.05 : 0.3;
        QVERIFY2(relRms < limit, qPrintable(QString("relative RMS error %1").arg(relRms)));
        QVERIFY(relRms > 0); // really quantized
    }

    // Degenerate groups: INT4 keeps a constant group exactly (scale 0, min = the value); a group
    // of zeros stays zeros in both formats (no division by a zero scale).
    void degenerateGroups() {
        std::vector<float> w(64, 0.375f);
        std::fill(w.begin() + 32, w.end(), 0.0f);
        std::vector<float> row(64);
        quantizeMatrix(w.data(), 1, 64, Precision::INT4, 32).dequantizeRow(0, row.data());
        for (int c = 0; c < 64; ++c) QCOMPARE(row[c], w[c]);
        quantizeMatrix(w.data(), 1, 64, Precision::INT8, 32).dequantizeRow(0, row.data());
        for (int c = 0; c < 32; ++c) QVERIFY(std::fabs(row[c] - 0.375f) <= 0.375f / 127 / 2);
        for (int c = 32; c < 64; ++c) QCOMPARE(row[c], 0.0f);
    }

    // Any other combination goes through float: FP16 from Q4_1, Q4_1 g32 requantized to g128,
    // Q8_0 to INT4, F32 to INT8.
    void convertsThroughFloat() {
        std::mt19937 rng(5);
        const int64_t cols = 256, rows = 3;
        std::vector<uint8_t> q41 = randomBlocks(DType::Q4_1, cols * rows / 32, rng);
        std::vector<float> reference(size_t(cols * rows));
        dequantize(DType::Q4_1, q41.data(), reference.data(), cols * rows);

        QuantizeOptions opt;
        opt.precision = Precision::FP16;
        WeightMatrix m = toWeightMatrix(viewOf(q41, DType::Q4_1, cols, rows), opt);
        QCOMPARE(m.precision, Precision::FP16);
        std::vector<float> row(cols);
        for (int64_t r = 0; r < rows; ++r) {
            m.dequantizeRow(r, row.data());
            for (int64_t c = 0; c < cols; ++c) QCOMPARE(row[c], halfToFloat(floatToHalf(reference[r * cols + c])));
        }

        opt.precision = Precision::INT4;
        opt.int4GroupSize = 128;
        opt.forceGroupSize = true;
        m = toWeightMatrix(viewOf(q41, DType::Q4_1, cols, rows), opt);
        QCOMPARE(m.groupSize, 128);
        const WeightMatrix direct = quantizeMatrix(reference.data(), rows, cols, Precision::INT4, 128);
        QCOMPARE(m.q4, direct.q4);
        QCOMPARE(m.scales, direct.scales);
        QCOMPARE(m.mins, direct.mins);

        // Without forceGroupSize the exact g32 conversion is kept.
        opt.forceGroupSize = false;
        QCOMPARE(toWeightMatrix(viewOf(q41, DType::Q4_1, cols, rows), opt).groupSize, 32);

        std::vector<float> f32 = randomFloats(size_t(cols * rows), rng);
        std::vector<uint8_t> f32Bytes(f32.size() * 4);
        std::memcpy(f32Bytes.data(), f32.data(), f32Bytes.size());
        opt.precision = Precision::INT8;
        opt.int8GroupSize = 64;
        m = toWeightMatrix(viewOf(f32Bytes, DType::F32, cols, rows), opt);
        const WeightMatrix direct8 = quantizeMatrix(f32.data(), rows, cols, Precision::INT8, 64);
        QCOMPARE(m.groupSize, 64);
        QCOMPARE(m.q8, direct8.q8);
        QCOMPARE(m.scales, direct8.scales);
    }

    // Big matrices are converted on several threads: a bad value in any row's range is still
    // one Error, and the result equals a row-by-row conversion.
    void bigMatrixConvertsOnThreads() {
        std::mt19937 rng(17);
        const int64_t rows = 1030, cols = 1024; // above the size where conversion goes parallel
        std::vector<float> w = randomFloats(size_t(rows * cols), rng);
        const WeightMatrix all = quantizeMatrix(w.data(), rows, cols, Precision::INT4, 32);
        for (int64_t r : {int64_t(0), rows / 2, rows - 1}) {
            const WeightMatrix one = quantizeMatrix(w.data() + r * cols, 1, cols, Precision::INT4, 32);
            QVERIFY(std::equal(one.q4.begin(), one.q4.end(), all.q4.begin() + r * cols / 2));
            QVERIFY(std::equal(one.scales.begin(), one.scales.end(), all.scales.begin() + r * cols / 32));
        }
        w[size_t((rows - 3) * cols + 5)] = INFINITY;
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), rows, cols, Precision::INT8, 32));
    }

    void rejectsBadShapes() {
        std::vector<float> w(33 * 2, 0.5f);
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), 2, 33, Precision::INT8, 32));
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), 2, 33, Precision::INT4, 0));
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), 1, 66, Precision::INT4, 33)); // odd group
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), 0, 32, Precision::FP16, 0));
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(nullptr, 2, 32, Precision::FP16, 0));
        w[3] = NAN;
        QVERIFY_THROWS_EXCEPTION(Error, quantizeMatrix(w.data(), 1, 64, Precision::INT8, 32));

        std::vector<uint8_t> bytes(34 * 4);
        QuantizeOptions opt;
        opt.precision = Precision::INT8;
        TensorView v = viewOf(bytes, DType::Q8_0, 64, 2);
        QCOMPARE(toWeightMatrix(v, opt).rows, int64_t(2));
        v.sizeBytes = bytes.size() - 1; // one byte short
        QVERIFY_THROWS_EXCEPTION(Error, toWeightMatrix(v, opt));
        QVERIFY_THROWS_EXCEPTION(Error, toFloats(v));
        v = viewOf(bytes, DType::Q8_0, 64, 2);
        v.dims = {64, 1, 2}; // 3-D
        QVERIFY_THROWS_EXCEPTION(Error, toWeightMatrix(v, opt));
        v.dims = {48, 2}; // not whole blocks
        QVERIFY_THROWS_EXCEPTION(Error, toWeightMatrix(v, opt));
        v.dims = {64, 2};
        v.data = nullptr;
        QVERIFY_THROWS_EXCEPTION(Error, toWeightMatrix(v, opt));

        // F32 with 40 columns to INT4 g32: 40 is not a multiple of 32.
        std::vector<uint8_t> f32(40 * 4 * 2, 0);
        opt.precision = Precision::INT4;
        try {
            toWeightMatrix(viewOf(f32, DType::F32, 40, 2, "blk.0.attn_q.weight"), opt);
            QFAIL("accepted 40 columns for INT4 g32");
        } catch (const Error& e) {
            QVERIFY2(std::string(e.what()).find("blk.0.attn_q.weight") != std::string::npos, e.what());
        }
        float out[32];
        QVERIFY_THROWS_EXCEPTION(Error, dequantize(DType::Q4_0, bytes.data(), out, 31));
    }

    // Real tensors of the default model: Q4_1 and Q8_0 convert bit for bit, requantization stays
    // close, F32 norms read as floats.
    void convertsDefaultModelTensors() {
        const std::string path = defaultModelPath();
        if (path.empty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        GgufFile f(path);
        const TensorView* q = f.tensor("blk.0.attn_q.weight");       // Q4_1 {576, 576}
        const TensorView* down = f.tensor("blk.3.ffn_down.weight");  // Q4_1 {1536, 576}
        const TensorView* emb = f.tensor("token_embd.weight");       // Q8_0 {576, 49152}
        const TensorView* norm = f.tensor("blk.0.attn_norm.weight"); // F32 {576}
        QVERIFY(q && down && emb && norm);
        QCOMPARE(q->type, DType::Q4_1);
        QCOMPARE(emb->type, DType::Q8_0);

        QuantizeOptions opt;
        for (const TensorView* t : {q, down, emb}) {
            opt.precision = t->type == DType::Q8_0 ? Precision::INT8 : Precision::INT4;
            const WeightMatrix m = toWeightMatrix(*t, opt);
            QCOMPARE(m.cols, t->dims[0]);
            QCOMPARE(m.rows, t->dims[1]);
            const int64_t rowBytes = m.cols / 32 * blockBytes(t->type);
            std::vector<float> expected(m.cols), got(m.cols);
            for (int64_t r = 0; r < m.rows; r += std::max<int64_t>(1, m.rows / 97)) {
                dequantize(t->type, t->data + r * rowBytes, expected.data(), m.cols);
                m.dequantizeRow(r, got.data());
                QVERIFY(std::memcmp(expected.data(), got.data(), size_t(m.cols) * 4) == 0);
            }
        }

        // Q4_1 g32 -> INT8 g32 and INT4 g128 (ffn_down: 1536 columns; 576 is not a multiple
        // of 128): close to the file's values.
        const std::vector<float> ref = toFloats(*down);
        for (Precision p : {Precision::INT8, Precision::INT4}) {
            opt.precision = p;
            opt.int4GroupSize = 128;
            opt.int8GroupSize = 32;
            opt.forceGroupSize = true;
            const WeightMatrix m = toWeightMatrix(*down, opt);
            std::vector<float> row(m.cols);
            double sumSq = 0, sumSqErr = 0;
            for (int64_t r = 0; r < m.rows; ++r) {
                m.dequantizeRow(r, row.data());
                for (int64_t c = 0; c < m.cols; ++c) {
                    const double e = row[c] - ref[r * m.cols + c];
                    sumSq += double(ref[r * m.cols + c]) * ref[r * m.cols + c];
                    sumSqErr += e * e;
                }
            }
            const double relRms = std::sqrt(sumSqErr / sumSq);
            QVERIFY2(relRms < (p == Precision::INT8 ? 0.02 : 0.2), qPrintable(QString("relative RMS %1").arg(relRms)));
        }

        // 576 columns do not take groups of 128: the widest group that divides them (64) is used.
        opt.precision = Precision::INT4;
        QCOMPARE(toWeightMatrix(*q, opt).groupSize, 64);
        QCOMPARE(fittingGroupSize(576, 128), 64);
        QCOMPARE(fittingGroupSize(1536, 128), 128);
        QCOMPARE(fittingGroupSize(40, 32), 32); // nothing from 32 down to 16 divides 40: conversion fails

        const std::vector<float> normValues = toFloats(*norm);
        QCOMPARE(normValues.size(), size_t(576));
        float first;
        std::memcpy(&first, norm->data, 4);
        QCOMPARE(normValues[0], first);
        opt.precision = Precision::FP16;
        QVERIFY_THROWS_EXCEPTION(Error, toWeightMatrix(*norm, opt)); // 1-D is not a matrix
    }

    void precisionNames() {
        QCOMPARE(std::string(precisionName(Precision::FP16)), std::string("fp16"));
        QCOMPARE(std::string(precisionName(Precision::INT8)), std::string("int8"));
        QCOMPARE(std::string(precisionName(Precision::INT4)), std::string("int4"));
    }
};

QTEST_GUILESS_MAIN(TestWeights)
#include "test_weights.moc"
