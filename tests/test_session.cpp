// Session on the CPU backend: greedy generation equals the backend's own argmax loop; streamed
// pieces add up to the text; the cached prefix is reused between turns (and gives the same
// tokens as a fresh session); stop strings end the text before them, and text that could start
// one is held back; maxTokens; cancellation before the first token and mid-reply; the end of a
// chat turn; a full context; teacher-forced evaluate(); seeded sampling repeats.
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/session.h"
#include "support.h"

#include <QTest>
#include <algorithm>
#include <atomic>

using namespace parley;
using namespace parley::test;

namespace {

SamplingParams greedy() {
    SamplingParams p;
    p.temperature = 0;
    p.repeatPenalty = 1.0f;
    return p;
}

struct Loaded {
    std::unique_ptr<Model> model;
    std::unique_ptr<Backend> backend;
};

// The default model (shared by the test functions: loading it is the slow part).
Loaded& defaultModel() {
    static Loaded l;
    if (!l.model) {
        std::string p = defaultModelPath();
        if (p.empty()) return l;
        l.model = Model::open(p);
        l.backend = makeCpuBackend(0);
        l.backend->load(l.model->config(), l.model->weights(), 1024);
    }
    return l;
}

#define NEED_DEFAULT_MODEL()                                                                  \
    Loaded& dm = defaultModel();                                                              \
    if (!dm.model) QSKIP("default model not installed (scripts/setup.sh fetches it)");

std::vector<int32_t> encode(const Model& m, const std::string& text) { return m.tokenizer().encode(text, false, true); }

bool validUtf8(const std::string& s) {
    for (size_t i = 0; i < s.size();) {
        unsigned char c = s[i];
        int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || i + len > s.size()) return false;
        for (int k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
        i += len;
    }
    return true;
}

const char* kChatPrompt = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
                          "<|im_start|>user\nWhat is the capital of France? Answer in one sentence.<|im_end|>\n"
                          "<|im_start|>assistant\n";

} // namespace

class TestSession : public QObject {
    Q_OBJECT
private slots:
    void greedyEqualsTheBackendsArgmaxAndStreams() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        std::vector<int32_t> prompt = encode(m, "The capital of France is");
        Session s(m, *dm.backend);
        GenerateOptions o;
        o.maxTokens = 24;
        std::vector<std::string> pieces;
        GenerateResult r = s.generate(prompt, greedy(), o, [&](std::string_view t) { pieces.emplace_back(t); });
        QCOMPARE(r.tokens.size(), size_t(24));
        QCOMPARE(r.reason, StopReason::MaxTokens);
        QCOMPARE(r.promptTokens, int(prompt.size()));
        QCOMPARE(r.reusedTokens, 0);

        // The same loop by hand on the backend.
        const int vocab = m.config().vocabSize;
        std::vector<float> logits(vocab);
        dm.backend->forward(prompt.data(), int(prompt.size()), 0, false, logits.data());
        std::vector<int32_t> expected;
        for (int i = 0; i < 24; ++i) {
            int32_t t = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
            expected.push_back(t);
            dm.backend->forward(&t, 1, int(prompt.size()) + i, false, logits.data());
        }
        QCOMPARE(r.tokens, expected);

        std::string joined;
        for (const std::string& p : pieces) {
            QVERIFY(validUtf8(p));
            QVERIFY(!p.empty());
            joined += p;
        }
        QCOMPARE(joined, r.text);
        QCOMPARE(r.text, decodeTokens(m.tokenizer(), r.tokens, false));
        QVERIFY2(r.text.find("Paris") != std::string::npos, r.text.c_str());
        QVERIFY(r.prefillMs > 0 && r.ttftMs > 0 && r.decodeMs > 0);
        QVERIFY(r.prefillTokensPerSecond() > 0 && r.decodeTokensPerSecond() > 0);
        qInfo("prefill %.1f tok/s, decode %.1f tok/s, first text after %.1f ms", r.prefillTokensPerSecond(),
              r.decodeTokensPerSecond(), r.ttftMs);
        // The session's cache holds the prompt and every generated token but the last.
        std::vector<int32_t> cached = prompt;
        cached.insert(cached.end(), r.tokens.begin(), r.tokens.end() - 1);
        QCOMPARE(s.cachedTokens(), cached);
    }

    void reusesTheCachedPrefix() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        Session s(m, *dm.backend);
        GenerateOptions o;
        o.maxTokens = 8;
        std::vector<int32_t> first = encode(m, kChatPrompt);
        GenerateResult r1 = s.generate(first, greedy(), o, {});
        // The next turn extends the conversation: everything cached is reused.
        std::vector<int32_t> second = first;
        second.insert(second.end(), r1.tokens.begin(), r1.tokens.end());
        std::vector<int32_t> more = encode(m, "<|im_end|>\n<|im_start|>user\nAnd of Italy?<|im_end|>\n<|im_start|>assistant\n");
        second.insert(second.end(), more.begin(), more.end());
        GenerateResult r2 = s.generate(second, greedy(), o, {});
        QCOMPARE(r2.reusedTokens, int(first.size() + r1.tokens.size() - 1));
        // A fresh session on the whole prompt says the same.
        Session fresh(m, *dm.backend);
        GenerateResult r3 = fresh.generate(second, greedy(), o, {});
        QCOMPARE(r3.reusedTokens, 0);
        QCOMPARE(r2.tokens, r3.tokens);
        // The same prompt again: all but its last token is reused, and the reply repeats.
        GenerateResult r4 = fresh.generate(second, greedy(), o, {});
        QCOMPARE(r4.reusedTokens, int(second.size()) - 1);
        QCOMPARE(r4.tokens, r3.tokens);
        // A prompt that diverges early reuses only the common part.
        std::vector<int32_t> other = encode(m, "<|im_start|>system\nYou are a pirate.<|im_end|>\n");
        size_t common = 0;
        while (common < other.size() && other[common] == second[common]) ++common;
        GenerateResult r5 = fresh.generate(other, greedy(), o, {});
        QCOMPARE(r5.reusedTokens, int(std::min(common, other.size() - 1)));
        s.reset();
        QVERIFY(s.cachedTokens().empty());
    }

    void endsAtTheEndOfTheTurn() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        Session s(m, *dm.backend);
        GenerateOptions o;
        o.maxTokens = 100;
        GenerateResult r = s.generate(encode(m, kChatPrompt), greedy(), o, {});
        QCOMPARE(r.reason, StopReason::EndOfText);
        QVERIFY(r.tokens.size() < 100);
        QVERIFY(m.tokenizer().isControl(r.tokens.back())); // <|im_end|>
        QVERIFY2(r.text.find("Paris") != std::string::npos, r.text.c_str());
        QVERIFY(r.text.find("<|im_end|>") == std::string::npos);
    }

    void stopStringsEndTheTextAndAreHeldBack() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        Session s(m, *dm.backend);
        std::vector<int32_t> prompt = encode(m, "Once upon a time, in a small village by the sea,");
        GenerateOptions o;
        o.maxTokens = 40;
        GenerateResult full = s.generate(prompt, greedy(), o, {});
        QVERIFY(full.text.size() > 60);
        // A stop string across several tokens, from the middle of the text.
        size_t at = full.text.size() / 2;
        std::string stop = full.text.substr(at, 9);
        size_t first = full.text.find(stop);
        o.stopStrings = {"never appears here", stop};
        std::string streamed;
        GenerateResult r = s.generate(prompt, greedy(), o, [&](std::string_view t) {
            streamed += t;
            // Nothing sent may be part of the stop string's occurrence.
            QVERIFY(streamed.size() <= first);
        });
        QCOMPARE(r.reason, StopReason::StopString);
        QCOMPARE(r.text, full.text.substr(0, first));
        QCOMPARE(streamed, r.text);
        QVERIFY(r.tokens.size() < full.tokens.size());
        // A stop string that is only ever a prefix at the very end is released at the end.
        o.stopStrings = {full.text.substr(full.text.size() - 3) + "\x01"};
        GenerateResult tail = s.generate(prompt, greedy(), o, {});
        QCOMPARE(tail.reason, StopReason::MaxTokens);
        QCOMPARE(tail.text, full.text);
    }

    void cancellationIsCheckedBeforeEveryToken() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        Session s(m, *dm.backend);
        std::vector<int32_t> prompt = encode(m, "The capital of France is");
        std::atomic<bool> cancel{true};
        GenerateOptions o;
        o.maxTokens = 30;
        o.cancel = &cancel;
        int calls = 0;
        GenerateResult r = s.generate(prompt, greedy(), o, [&](std::string_view) { ++calls; });
        QCOMPARE(r.reason, StopReason::Cancelled);
        QVERIFY(r.tokens.empty());
        QCOMPARE(calls, 0);
        // Cancelled from the callback: no further token is sampled.
        cancel = false;
        r = s.generate(prompt, greedy(), o, [&](std::string_view) {
            if (++calls == 3) cancel = true;
        });
        QCOMPARE(r.reason, StopReason::Cancelled);
        QVERIFY(r.tokens.size() >= 3 && r.tokens.size() <= 4);
    }

    void maxTokensAndSeeds() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        Session s(m, *dm.backend);
        std::vector<int32_t> prompt = encode(m, "Write a short poem about the sea:\n");
        GenerateOptions o;
        o.maxTokens = 0;
        QVERIFY(s.generate(prompt, greedy(), o, {}).tokens.empty());
        o.maxTokens = 12;
        SamplingParams sp; // the defaults: temperature 0.7, top-k 40, top-p 0.95, min-p 0.05
        sp.seed = 1234;
        GenerateResult a = s.generate(prompt, sp, o, {});
        GenerateResult b = s.generate(prompt, sp, o, {});
        QCOMPARE(a.tokens.size(), size_t(12));
        QCOMPARE(a.tokens, b.tokens);
        QCOMPARE(a.text, b.text);
        int different = 0;
        for (uint64_t seed = 1; seed <= 4; ++seed) {
            sp.seed = seed;
            different += s.generate(prompt, sp, o, {}).tokens != a.tokens;
        }
        QVERIFY(different >= 3);
    }

    void evaluateGivesEveryPositionsLogits() {
        std::string path = envPath("PARLEY_TEST_MODELS", "llama-q4_1-rope-llama3.gguf");
        auto m = Model::open(path);
        auto b = makeCpuBackend(2);
        b->load(m->config(), m->weights(), 64);
        Session s(*m, *b);
        std::vector<int32_t> tokens = encode(*m, "We hold these truths to be self-evident, that all men are created equal.");
        QVERIFY(tokens.size() > 10);
        std::vector<float> logits = s.evaluate(tokens);
        const int vocab = m->config().vocabSize;
        QCOMPARE(logits.size(), tokens.size() * vocab);
        QCOMPARE(s.cachedTokens(), tokens);
        // Equal to feeding the tokens one at a time.
        auto b2 = makeCpuBackend(2);
        b2->load(m->config(), m->weights(), 64);
        std::vector<float> step(vocab);
        for (size_t i = 0; i < tokens.size(); ++i) {
            b2->forward(&tokens[i], 1, int(i), false, step.data());
            for (int j = 0; j < vocab; ++j) QVERIFY(std::abs(step[j] - logits[i * vocab + j]) < 1e-3f);
        }
        std::vector<int32_t> tooLong(65, tokens[0]);
        QVERIFY_THROWS_EXCEPTION(Error, s.evaluate(tooLong));
    }

    void aFullContextStopsTheReply() {
        NEED_DEFAULT_MODEL();
        const Model& m = *dm.model;
        std::vector<int32_t> prompt = encode(m, "Four score and seven years ago");
        const int context = int(prompt.size()) + 8;
        auto b = makeCpuBackend(0);
        b->load(m.config(), m.weights(), context);
        Session s(m, *b);
        GenerateOptions o;
        o.maxTokens = 100;
        SamplingParams sp = greedy();
        GenerateResult r = s.generate(prompt, sp, o, {});
        QCOMPARE(r.reason, StopReason::ContextFull);
        // Every position holds prompt or reply; the last sampled token needs no position.
        QCOMPARE(int(prompt.size() + r.tokens.size()), context + 1);
        QCOMPARE(int(s.cachedTokens().size()), context);
        // A prompt that alone passes the context is an error.
        std::vector<int32_t> tooLong(context + 1, prompt[0]);
        QVERIFY_THROWS_EXCEPTION(Error, s.generate(tooLong, sp, o, {}));
        QVERIFY_THROWS_EXCEPTION(Error, s.generate({}, sp, o, {}));
        QCOMPARE(QString(stopReasonName(StopReason::ContextFull)), QString("context-full"));
    }
};

QTEST_GUILESS_MAIN(TestSession)
#include "test_session.moc"
