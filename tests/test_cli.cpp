// parley-cli as a user runs it: every subcommand's --help, one-line errors with a non-zero exit,
// tokenize equal to the Hugging Face goldens, generate (text and --json) on the default model,
// chat over stdin, info and perplexity; --kv-cache in parley-cli and parley-bench (a misspelling
// named at once, int8 reaching the backend and the JSON).
#include "support.h"

#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTest>

using namespace parley::test;

namespace {

struct Run {
    int exitCode = -1;
    QString out;
    QString err;
};

Run runTool(const char* tool, const QStringList& args, const QByteArray& stdinData = {}) {
    QProcess p;
    p.start(QString::fromStdString(envPath("PARLEY_BIN_DIR", tool)), args);
    if (!p.waitForStarted()) return {};
    if (!stdinData.isEmpty()) p.write(stdinData);
    p.closeWriteChannel();
    p.waitForFinished(300000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

Run runCli(const QStringList& args, const QByteArray& stdinData = {}) { return runTool("parley-cli", args, stdinData); }

QString model() { return QString::fromStdString(defaultModelPath()); }

} // namespace

class TestCli : public QObject {
    Q_OBJECT
private slots:
    void helpForEveryCommand() {
        for (const char* c : {"info", "tokenize", "generate", "chat", "perplexity"}) {
            Run r = runCli({c, "--help"});
            QCOMPARE(r.exitCode, 0);
            QVERIFY2(r.out.startsWith("usage: parley-cli " + QString(c)), qPrintable(r.out));
        }
        Run r = runCli({"--help"});
        QCOMPARE(r.exitCode, 0);
        QVERIFY(r.out.contains("perplexity"));
    }

    void errorsAreOneLineAndNonZero() {
        const QList<QStringList> bad = {
            {"frobnicate"},
            {"info"},
            {"info", "-m", "/nonexistent/model.gguf"},
            {"generate", "-m", "/nonexistent/model.gguf", "-p", "hi"},
            {"tokenize", "-m", "/nonexistent/tokenizer.json", "text"},
            {"generate", "--temp"},
            {"generate", "-m", "x.gguf", "-p", "hi", "--precision", "int3"},
            {"generate", "-m", "x.gguf", "-p", "hi", "--kv-cache", "bogus"},
            {"info", "-m", QString::fromStdString(envPath("PARLEY_TEST_DATA", "text/README.md"))},
        };
        for (const QStringList& args : bad) {
            Run r = runCli(args);
            QVERIFY2(r.exitCode != 0, qPrintable(args.join(' ')));
            QString e = r.err.trimmed();
            QVERIFY2(!e.isEmpty() && !e.contains('\n'), qPrintable(args.join(' ') + " -> " + r.err));
            QVERIFY2(e.startsWith("parley-cli: "), qPrintable(e));
        }
    }

    void kvCacheFlagIsCheckedFirst() {
        // Before the model is read: the error is about the flag, not the missing file.
        for (const char* command : {"generate", "chat", "perplexity"}) {
            QStringList args = {command, "-m", "/nonexistent/model.gguf", "--kv-cache", "bogus"};
            if (QString(command) == "generate") args << "-p" << "hi";
            if (QString(command) == "perplexity") args << "-f" << QString::fromStdString(envPath("PARLEY_TEST_DATA", "text/README.md"));
            const Run r = runCli(args);
            QCOMPARE(r.exitCode, 1);
            QCOMPARE(r.err, QString("parley-cli: --kv-cache must be auto, fp16 or int8, not 'bogus'\n"));
        }
        const Run bench = runTool("parley-bench", {"--synthetic", "smollm2-135m", "--kv-cache", "bogus"});
        QCOMPARE(bench.exitCode, 1);
        QCOMPARE(bench.err, QString("parley-bench: --kv-cache must be fp16 or int8, not 'bogus'\n"));
        QVERIFY(runTool("parley-bench", {"--help"}).out.contains("--kv-cache fp16|int8"));
        QVERIFY(runCli({"generate", "--help"}).out.contains("--kv-cache auto|fp16|int8"));
    }

    void int8KvCacheReachesTheBackend() {
        // parley-bench on a tiny model on the CPU: the backend says it rounds through 8 bits, and
        // the JSON carries the choice.
        const std::string tiny = envPath("PARLEY_TEST_MODELS", "llama-gqa-f32.gguf");
        if (tiny.empty() || !fileExists(tiny)) QSKIP("no test models (the make_tiny_models fixture writes them)");
        for (const char* kv : {"fp16", "int8"}) {
            const Run r = runTool("parley-bench", {"-m", QString::fromStdString(tiny), "--backend", "cpu", "-p", "8", "-n", "4",
                                                   "--repeat", "1", "--kv-cache", kv, "--json"});
            QCOMPARE(r.exitCode, 0);
            const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
            QCOMPARE(o["kv_cache"].toString(), QString(kv));
            QCOMPARE(o["backend"].toString().contains("8-bit K/V"), QString(kv) == "int8");
        }
        // parley-cli generate: the same greedy answer with the 8-bit cache on the default model.
        if (model().isEmpty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        const Run r = runCli({"generate", "-m", model(), "-p", "The capital of France is", "-n", "8", "--temp", "0",
                              "--backend", "cpu", "--kv-cache", "int8", "--json"});
        QCOMPARE(r.exitCode, 0);
        const QJsonObject o = QJsonDocument::fromJson(r.out.toUtf8()).object();
        QCOMPARE(o["kv_cache"].toString(), QString("int8"));
        QVERIFY2(o["backend"].toString().contains("8-bit K/V"), qPrintable(r.out));
        QVERIFY2(o["text"].toString().contains("Paris"), qPrintable(r.out));
        // The default, auto, is FP16 where no planner runs (the CPU).
        const Run byDefault = runCli({"generate", "-m", model(), "-p", "The capital of France is", "-n", "2", "--temp", "0",
                                      "--backend", "cpu", "--json"});
        QCOMPARE(byDefault.exitCode, 0);
        const QJsonObject d = QJsonDocument::fromJson(byDefault.out.toUtf8()).object();
        QCOMPARE(d["kv_cache"].toString(), QString("fp16"));
        QVERIFY2(!d["backend"].toString().contains("8-bit"), qPrintable(byDefault.out));
    }

    void infoDescribesTheDefaultModel() {
        if (model().isEmpty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        Run r = runCli({"info", "-m", model()});
        QCOMPARE(r.exitCode, 0);
        for (const char* want : {"architecture: llama", "layers: 30", "context length: 8192", "tokenizer: bpe",
                                 "chat template: chatml", "Q4_1 x210", "134.5M"})
            QVERIFY2(r.out.contains(want), qPrintable(QString(want) + " missing from:\n" + r.out));
    }

    void tokenizeMatchesGoldens() {
        if (model().isEmpty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        // Lines of the corpus with their ids from Hugging Face tokenizers (special tokens parsed).
        QStringList lines = QString::fromStdString(readFileText(envPath("PARLEY_TEST_DATA", "tokenizer/smollm2_goldens.jsonl")))
                                .split('\n', Qt::SkipEmptyParts);
        int checked = 0;
        for (int k = 5; k < lines.size() && checked < 6; k += 37) {
            QJsonObject o = QJsonDocument::fromJson(lines[k].toUtf8()).object();
            QString text = o["text"].toString();
            if (text.isEmpty() || text.contains(QChar(0))) continue;
            QStringList want;
            for (const QJsonValue& v : o["ids_special"].toArray()) want << QString::number(v.toInt());
            Run r = runCli({"tokenize", "-m", model(), text});
            QCOMPARE(r.exitCode, 0);
            QCOMPARE(r.out, want.join(' ') + "\n");
            ++checked;
        }
        QVERIFY(checked >= 3);
        Run bos = runCli({"tokenize", "-m", model(), "--bos", "Hello"});
        QVERIFY2(bos.out.startsWith("1 "), qPrintable(bos.out));
    }

    void generateGreedyIsRightAndRepeatable() {
        if (model().isEmpty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        QStringList args = {"generate", "-m", model(), "-p", "The capital of France is", "-n", "8", "--temp", "0"};
        Run text = runCli(args);
        QCOMPARE(text.exitCode, 0);
        QVERIFY2(text.out.contains("Paris"), qPrintable(text.out));
        Run json = runCli(args + QStringList{"--json"});
        QCOMPARE(json.exitCode, 0);
        QJsonObject o = QJsonDocument::fromJson(json.out.toUtf8()).object();
        QCOMPARE(o["tokens"].toArray().size(), 8);
        QCOMPARE(o["text"].toString() + "\n", text.out); // the same greedy text both ways
        QVERIFY(o["decode_tokens_per_second"].toDouble() > 0);
        QVERIFY(o["prefill_tokens_per_second"].toDouble() > 0);
        QCOMPARE(o["prompt_tokens"].toInt(), 5);
    }

    void chatAnswersOverStdin() {
        if (model().isEmpty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        Run r = runCli({"chat", "-m", model(), "--temp", "0", "-n", "24"},
                       "What is the capital of France?\n/exit\n");
        QCOMPARE(r.exitCode, 0);
        QVERIFY2(r.out.contains("Paris"), qPrintable(r.out));
        QVERIFY2(!r.out.contains("<|im_end|>"), qPrintable(r.out));
    }

    void perplexityEndsWithPplLine() {
        if (model().isEmpty()) QSKIP("default model not installed (scripts/setup.sh fetches it)");
        // A short slice of the shipped text keeps this quick; docs/quality.md has the full runs.
        QString text = QString::fromStdString(readFileText(envPath("PARLEY_TEST_DATA", "text/declaration_gettysburg.txt"))).left(1500);
        QString path = QString::fromStdString(makeTempDir()) + "/slice.txt";
        const QByteArray utf8 = text.toUtf8();
        writeFileBytes(path.toStdString(), std::vector<uint8_t>(utf8.begin(), utf8.end()));
        Run r = runCli({"perplexity", "-m", model(), "-f", path, "--ctx", "128"});
        QCOMPARE(r.exitCode, 0);
        QStringList lines = r.out.trimmed().split('\n');
        QVERIFY(lines.last().startsWith("ppl = "));
        double ppl = lines.last().mid(6).toDouble();
        // English prose under a 135M instruct model: far better than chance (vocab 49152).
        QVERIFY2(ppl > 2 && ppl < 100, qPrintable(lines.last()));
    }
};

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
