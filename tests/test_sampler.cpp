// Sampler: greedy at temperature 0, the repetition penalty (CTRL), top-k, top-p, min-p and
// temperature each checked on hand-made logits, draws that follow the softmax distribution, and
// the same seed giving the same tokens.
#include "engine/sampler.h"

#include <QTest>
#include <cmath>
#include <map>
#include <set>

using namespace parley;

namespace {

SamplingParams plain(float temperature = 1.0f, uint64_t seed = 1) {
    SamplingParams p;
    p.temperature = temperature;
    p.topK = 0;
    p.topP = 1.0f;
    p.minP = 0.0f;
    p.repeatPenalty = 1.0f;
    p.seed = seed;
    return p;
}

// Logits whose softmax is the given probabilities.
std::vector<float> logitsFor(const std::vector<double>& probs) {
    std::vector<float> l;
    for (double p : probs) l.push_back(static_cast<float>(std::log(p)));
    return l;
}

// How often each token is drawn in n draws.
std::map<int32_t, int> histogram(const SamplingParams& params, const std::vector<float>& logits, int n) {
    Sampler s(params);
    std::map<int32_t, int> counts;
    for (int i = 0; i < n; ++i) {
        std::vector<float> l = logits;
        counts[s.sample(l, {})] += 1;
    }
    return counts;
}

} // namespace

class TestSampler : public QObject {
    Q_OBJECT
private slots:
    void greedyPicksTheLargestLogit() {
        std::vector<float> l = {0.1f, 3.0f, -2.0f, 2.9f, 3.0f};
        Sampler s(plain(0.0f));
        QCOMPARE(s.sample(l, {}), 1); // the first of equal maxima
        std::vector<float> l2 = {-5.0f, -4.0f, -4.5f};
        QCOMPARE(s.sample(l2, {}), 1);
    }

    void drawsFollowTheSoftmax() {
        const std::vector<double> probs = {0.4, 0.3, 0.2, 0.07, 0.03};
        const int n = 40000;
        auto counts = histogram(plain(), logitsFor(probs), n);
        for (size_t i = 0; i < probs.size(); ++i) {
            double freq = counts[int32_t(i)] / double(n);
            QVERIFY2(std::abs(freq - probs[i]) < 0.01, qPrintable(QString("token %1: %2 vs %3").arg(i).arg(freq).arg(probs[i])));
        }
    }

    void temperatureSharpensAndFlattens() {
        const std::vector<float> l = logitsFor({0.5, 0.25, 0.125, 0.125});
        auto cold = histogram(plain(0.5f), l, 20000);
        auto hot = histogram(plain(2.0f), l, 20000);
        // At T = 0.5 the probabilities are squared and renormalized: 0.25/0.34375 = 0.727.
        QVERIFY(std::abs(cold[0] / 20000.0 - 0.727) < 0.015);
        // At T = 2 their square roots: 0.707/1.914 = 0.369.
        QVERIFY(std::abs(hot[0] / 20000.0 - 0.369) < 0.015);
    }

    void topKKeepsOnlyTheLargest() {
        SamplingParams p = plain(1.5f);
        p.topK = 2;
        auto counts = histogram(p, logitsFor({0.1, 0.4, 0.2, 0.3}), 5000);
        QCOMPARE(std::set<int32_t>({1, 3}), [&] { std::set<int32_t> s; for (auto& [t, c] : counts) s.insert(t); return s; }());
        p.topK = 1;
        auto one = histogram(p, logitsFor({0.1, 0.4, 0.2, 0.3}), 500);
        QCOMPARE(one.size(), size_t(1));
        QCOMPARE(one.begin()->first, 1);
    }

    void topPKeepsTheSmallestNucleus() {
        SamplingParams p = plain();
        p.topP = 0.75f; // 0.5 + 0.3 reaches it: two tokens
        auto counts = histogram(p, logitsFor({0.05, 0.5, 0.15, 0.3}), 20000);
        QCOMPARE(counts.size(), size_t(2));
        QVERIFY(std::abs(counts[1] / 20000.0 - 0.5 / 0.8) < 0.015);
        p.topP = 0.1f; // the first token alone passes it
        QCOMPARE(histogram(p, logitsFor({0.05, 0.5, 0.15, 0.3}), 500).size(), size_t(1));
    }

    void minPDropsUnlikelyTokens() {
        SamplingParams p = plain();
        p.minP = 0.25f; // keep p >= 0.25 * 0.5 = 0.125
        auto counts = histogram(p, logitsFor({0.05, 0.5, 0.15, 0.3}), 20000);
        QCOMPARE(counts.size(), size_t(3));
        QCOMPARE(counts.count(0), size_t(0));
    }

    void repetitionPenaltyFollowsCtrl() {
        SamplingParams p = plain(0.0f);
        p.repeatPenalty = 1.25f;
        p.repeatLastN = 3;
        Sampler s(p);
        std::vector<float> l = {2.0f, 1.9f, -1.0f, 0.5f};
        std::vector<int32_t> history = {0, 2, 0}; // token 0 twice: penalized once
        QCOMPARE(s.sample(l, history), 1);
        QCOMPARE(l[0], 2.0f / 1.25f);  // positive logits are divided
        QCOMPARE(l[2], -1.0f * 1.25f); // negative ones multiplied
        QCOMPARE(l[1], 1.9f);
        // Only the last repeatLastN tokens count.
        std::vector<float> l2 = {2.0f, 1.9f, -1.0f, 0.5f};
        std::vector<int32_t> old = {0, 3, 3, 3};
        QCOMPARE(s.sample(l2, old), 0);
        QCOMPARE(l2[0], 2.0f);
    }

    void sameSeedSameTokens() {
        SamplingParams p;
        p.temperature = 1.0f;
        p.topK = 40;
        p.topP = 0.95f;
        p.minP = 0.0f;
        std::vector<float> logits(1000);
        for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i) * 0.37f) * 3;
        auto run = [&](uint64_t seed) {
            p.seed = seed;
            Sampler s(p);
            std::vector<int32_t> out;
            for (int i = 0; i < 200; ++i) {
                std::vector<float> l = logits;
                out.push_back(s.sample(l, out));
            }
            return out;
        };
        QCOMPARE(run(42), run(42));
        QVERIFY(run(42) != run(43));
    }
};

QTEST_GUILESS_MAIN(TestSampler)
#include "test_sampler.moc"
