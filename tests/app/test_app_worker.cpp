// EngineWorker with the real default model (SmolLM2-135M-Instruct, CPU backend): loading with
// progress while the GUI thread stays free, the order of signals, Stop within one token, a model
// switch during a reply (the reply ends first, nothing lost), and a failed load keeping the model
// that was loaded. Skips where the default model is not installed.
#include "app/backend_choice.h"
#include "app/engine_worker.h"
#include "support.h"

#include <QElapsedTimer>
#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTest>
#include <QTimer>

using namespace parley::app;

namespace {
// Everything the worker says, in the order it arrived on the GUI thread, with the time.
struct Recorder : QObject {
    explicit Recorder(EngineWorker& w) {
        clock.start();
        connect(&w, &EngineWorker::modelLoading, this, [this](double p, const QString&) { add("loading", QString::number(p)); });
        connect(&w, &EngineWorker::modelLoaded, this, [this](const LoadedModel& m) {
            loaded << m;
            add("loaded", m.path);
        });
        connect(&w, &EngineWorker::tokenGenerated, this, [this](const QString& piece) {
            text += piece;
            add("token", piece);
        });
        connect(&w, &EngineWorker::generationFinished, this, [this](const GenerationStats& s) {
            finished << s;
            add("finished", s.stopReason);
        });
        connect(&w, &EngineWorker::failed, this, [this](const QString& m) { add("failed", m); });
    }
    void add(const QString& kind, const QString& detail) {
        events << kind;
        details << detail;
        timesMs << clock.elapsed();
    }
    int count(const QString& kind) const { return int(events.count(kind)); }
    int indexOf(const QString& kind, int from = 0) const { return int(events.indexOf(kind, from)); }
    void clear() {
        events.clear();
        details.clear();
        timesMs.clear();
        text.clear();
        finished.clear();
        loaded.clear();
    }
    QStringList events, details;
    QList<qint64> timesMs;
    QString text;
    QList<GenerationStats> finished;
    QList<LoadedModel> loaded;
    QElapsedTimer clock;
};

GenerationRequest ask(const QString& question, int maxNewTokens, double temperature = 0.0) {
    GenerationRequest r;
    r.turns << ChatTurn{"user", question};
    r.sampling.temperature = temperature;
    r.sampling.maxNewTokens = maxNewTokens;
    r.sampling.seed = 7;
    return r;
}

LoadRequest load(const QString& path, int context = 1024) {
    LoadRequest r;
    r.path = path;
    r.options.backend = "cpu";
    r.options.contextLength = context;
    return r;
}

const char* kLongAnswer = "Write a long, detailed story about a dragon who learns to bake bread in a small village.";
} // namespace

class WorkerTest : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void filePrecisionIsWhatMostMatricesAre();
    void loadingReportsProgressAndLeavesTheGuiThreadFree();
    void signalsComeInOrderAndTheCacheIsReused();
    void stopEndsTheReplyWithinOneToken();
    void stopCancelsRepliesQueuedBeforeIt();
    void switchingModelsStopsTheReplyFirst();
    void failedLoadKeepsThePreviousModel();

private:
    QString model_;
};

void WorkerTest::initTestCase() {
    model_ = QString::fromStdString(parley::test::defaultModelPath());
    if (model_.isEmpty()) QSKIP("the default model is not installed (scripts/setup.sh fetches it)");
}

void WorkerTest::filePrecisionIsWhatMostMatricesAre() {
    // SmolLM2's file: Q4_1 layers, a Q8_0 embedding, F32 norms: a 4-bit model.
    QCOMPARE(filePrecision({{"Q4_1", 210}, {"Q8_0", 1}, {"F32", 61}}), parley::Precision::INT4);
    QCOMPARE(filePrecision({{"Q6_K", 100}, {"Q4_K", 20}, {"F32", 30}}), parley::Precision::INT8);
    QCOMPARE(filePrecision({{"BF16", 200}, {"F32", 30}}), parley::Precision::FP16);
    QCOMPARE(filePrecision({{"F32", 30}}), parley::Precision::FP16);
}

void WorkerTest::loadingReportsProgressAndLeavesTheGuiThreadFree() {
    EngineWorker worker;
    Recorder rec(worker);
    // A timer on the GUI thread keeps ticking while the model loads on the worker thread.
    QElapsedTimer sinceTick;
    sinceTick.start();
    qint64 longestGapMs = 0;
    QTimer ticker;
    connect(&ticker, &QTimer::timeout, [&] {
        longestGapMs = std::max(longestGapMs, sinceTick.restart());
    });
    ticker.start(10);
    sinceTick.restart();
    worker.loadModel(load(model_));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1, 60000);
    ticker.stop();
    const qint64 loadMs = rec.timesMs[rec.indexOf("loaded")];
    qInfo("model loaded in %lld ms; longest pause of the GUI thread %lld ms", loadMs, longestGapMs);
    // Had the load run on the GUI thread, the pause would be about the whole load; allow for a busy
    // machine, not for that.
    QVERIFY2(longestGapMs < std::max<qint64>(200, loadMs / 2),
             qPrintable(QString("the GUI thread was blocked for %1 ms of a %2 ms load").arg(longestGapMs).arg(loadMs)));

    QCOMPARE(rec.count("failed"), 0);
    QVERIFY(rec.count("loading") >= 2);
    double last = -1;
    for (int i = 0; i < rec.events.size() && rec.events[i] == "loading"; ++i) {
        const double p = rec.details[i].toDouble();
        QVERIFY(p >= last);
        last = p;
    }
    QCOMPARE(last, 1.0);
    QCOMPARE(rec.events.last(), QString("loaded"));
    const LoadedModel m = rec.loaded.first();
    QCOMPARE(m.path, model_);
    QVERIFY2(m.name.contains("SmolLM2", Qt::CaseInsensitive), qPrintable(m.name));
    QVERIFY2(m.parameters > 100'000'000 && m.parameters < 200'000'000, qPrintable(QString::number(m.parameters)));
    QVERIFY2(m.precision.contains("int4"), qPrintable(m.precision)); // a Q4_1 file stays 4-bit
    QVERIFY2(m.device.startsWith("cpu"), qPrintable(m.device));
    QCOMPARE(m.contextSize, 1024);
    QVERIFY(!m.reason.isEmpty());
}

void WorkerTest::signalsComeInOrderAndTheCacheIsReused() {
    EngineWorker worker;
    Recorder rec(worker);
    worker.loadModel(load(model_));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1, 60000);
    rec.clear();

    GenerationRequest first = ask("What is the capital of France? Answer in one sentence.", 24);
    worker.generate(first);
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 1, 60000);
    QVERIFY(rec.count("token") >= 1);
    QCOMPARE(rec.events.last(), QString("finished")); // every token before the end, none after
    QCOMPARE(rec.count("failed"), 0);
    const GenerationStats s = rec.finished.first();
    QVERIFY2(rec.text.contains("Paris"), qPrintable(rec.text));
    QVERIFY(s.error.isEmpty());
    QVERIFY(!s.cancelled);
    QVERIFY(s.generatedTokens >= rec.count("token"));
    QVERIFY(s.generatedTokens <= 24);
    QVERIFY(s.promptTokens > 5);
    QVERIFY(s.ttftMs > 0);
    QVERIFY(s.decodeTokensPerSecond > 0);
    QCOMPARE(s.contextSize, 1024);
    QVERIFY(s.contextUsed >= s.promptTokens);

    // The next turn extends the same conversation: its prefix is cached, not read again.
    const QString reply = rec.text;
    rec.clear();
    GenerationRequest second = first;
    second.turns << ChatTurn{"assistant", reply} << ChatTurn{"user", "And of Italy?"};
    worker.generate(second);
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 1, 60000);
    QVERIFY2(rec.finished.first().reusedTokens >= s.promptTokens,
             qPrintable(QString("%1 reused of %2").arg(rec.finished.first().reusedTokens).arg(s.promptTokens)));
    QVERIFY2(rec.text.contains("Rome"), qPrintable(rec.text));
}

void WorkerTest::stopEndsTheReplyWithinOneToken() {
    EngineWorker worker;
    Recorder rec(worker);
    worker.loadModel(load(model_));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1, 60000);
    rec.clear();
    worker.generate(ask(kLongAnswer, 1000));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("token") >= 8 || rec.count("finished"), 60000);
    QCOMPARE(rec.count("finished"), 0); // still writing
    const int tokensAtStop = rec.count("token");
    const qint64 stopAt = rec.clock.elapsed();
    worker.stop();
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 1, 10000);
    const qint64 latencyMs = rec.timesMs.last() - stopAt;
    // Tokens the worker had already sent (queued to this thread) plus at most the one in flight.
    const int after = rec.count("token") - tokensAtStop;
    const GenerationStats s = rec.finished.first();
    QVERIFY(s.cancelled);
    QCOMPARE(s.stopReason, QString("cancelled"));
    QVERIFY2(s.generatedTokens <= tokensAtStop + 2, qPrintable(QString("%1 tokens, %2 when stopped").arg(s.generatedTokens).arg(tokensAtStop)));
    const double msPerToken = 1000.0 / s.decodeTokensPerSecond;
    QVERIFY2(latencyMs <= 2 * msPerToken + 150, qPrintable(QString("stop took %1 ms at %2 ms a token").arg(latencyMs).arg(msPerToken)));
    qInfo("stop latency %lld ms (%.1f ms a token), %d piece(s) after stop", latencyMs, msPerToken, after);
}

void WorkerTest::stopCancelsRepliesQueuedBeforeIt() {
    EngineWorker worker;
    Recorder rec(worker);
    worker.loadModel(load(model_));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1, 60000);
    rec.clear();
    worker.generate(ask(kLongAnswer, 1000));
    worker.generate(ask(kLongAnswer, 1000));
    worker.stop();
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 2, 20000);
    QVERIFY(rec.finished[0].cancelled);
    QVERIFY(rec.finished[1].cancelled);
    QVERIFY(rec.count("token") <= 2);
    // A reply asked for after the stop runs normally.
    rec.clear();
    worker.generate(ask("Say hello.", 8));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 1, 60000);
    QVERIFY(!rec.finished.first().cancelled);
    QVERIFY(rec.count("token") >= 1);
}

void WorkerTest::switchingModelsStopsTheReplyFirst() {
    // The second model: a tiny generated one where present, else the default again (a real reload).
    QString other = QString::fromStdString(parley::test::envPath("PARLEY_TEST_MODELS", "llama-tied-q8_0.gguf"));
    if (!QFileInfo::exists(other)) other = model_;
    EngineWorker worker;
    Recorder rec(worker);
    worker.loadModel(load(model_));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1, 60000);
    rec.clear();
    worker.generate(ask(kLongAnswer, 1000));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("token") >= 4 || rec.count("finished"), 60000);
    QCOMPARE(rec.count("finished"), 0);
    const int tokensAtSwitch = rec.count("token");
    worker.loadModel(load(other, 512));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1 || rec.count("failed"), 60000);
    QCOMPARE(rec.count("failed"), 0);
    // The reply ended (cancelled, its text kept) before the new model was announced.
    const int finishedAt = rec.indexOf("finished");
    QVERIFY(finishedAt >= 0);
    QVERIFY(finishedAt < rec.indexOf("loading"));
    QVERIFY(rec.finished.first().cancelled);
    QVERIFY(rec.count("token") <= tokensAtSwitch + 2);
    QCOMPARE(rec.loaded.first().path, other);
    QCOMPARE(rec.loaded.first().contextSize, std::min(512, rec.loaded.first().contextSize));
    // The new model answers.
    rec.clear();
    worker.generate(ask("Hello", 6, 0.8));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 1, 60000);
    QVERIFY(rec.finished.first().error.isEmpty());
}

void WorkerTest::failedLoadKeepsThePreviousModel() {
    EngineWorker worker;
    Recorder rec(worker);
    worker.loadModel(load(model_));
    QTRY_VERIFY_WITH_TIMEOUT(rec.count("loaded") == 1, 60000);

    const QString dir = QString::fromStdString(parley::test::makeTempDir());
    // A file that starts like the real model but stops after 64 KiB: the header promises tensors
    // that are not there.
    const QString truncated = dir + "/truncated.gguf";
    {
        QFile in(model_), out(truncated);
        QVERIFY(in.open(QIODevice::ReadOnly) && out.open(QIODevice::WriteOnly));
        out.write(in.read(64 * 1024));
    }
    const QString garbage = dir + "/garbage.gguf";
    {
        QFile out(garbage);
        QVERIFY(out.open(QIODevice::WriteOnly));
        QByteArray junk(4096, 0);
        for (int i = 0; i < junk.size(); ++i) junk[i] = char((i * 131 + 7) & 0xff);
        out.write(junk);
    }
    for (const QString& bad : {truncated, garbage, dir + "/missing.gguf"}) {
        rec.clear();
        worker.loadModel(load(bad));
        QTRY_VERIFY_WITH_TIMEOUT(rec.count("failed") == 1, 30000);
        QCOMPARE(rec.count("loaded"), 0);
        const QString message = rec.details[rec.indexOf("failed")];
        QVERIFY2(message.contains(QFileInfo(bad).fileName()), qPrintable(message));
        QVERIFY2(!message.contains('\n'), qPrintable(message));
        // The model loaded before still answers.
        worker.generate(ask("What is the capital of France? Answer in one sentence.", 16));
        QTRY_VERIFY_WITH_TIMEOUT(rec.count("finished") == 1, 60000);
        QVERIFY(rec.finished.first().error.isEmpty());
        QVERIFY2(rec.text.contains("Paris"), qPrintable(rec.text));
    }
}

QTEST_GUILESS_MAIN(WorkerTest)
#include "test_app_worker.moc"
