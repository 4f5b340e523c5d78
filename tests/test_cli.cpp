// parley-cli as a user runs it: every subcommand's --help, one-line errors with a non-zero exit,
// tokenize equal to the Hugging Face goldens, generate (text and --json) on the default model,
// chat over stdin, info and perplexity.
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

Run runCli(const QStringList& args, const QByteArray& stdinData = {}) {
    QProcess p;
    p.start(QString::fromStdString(envPath("PARLEY_BIN_DIR", "parley-cli")), args);
    if (!p.waitForStarted()) return {};
    if (!stdinData.isEmpty()) p.write(stdinData);
    p.closeWriteChannel();
    p.waitForFinished(300000);
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -1, QString::fromUtf8(p.readAllStandardOutput()),
            QString::fromUtf8(p.readAllStandardError())};
}

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
