// Crash safety (issue 4): a child process (parley-store-writer) writes a conversation and streams
// a reply into a real database file through the app's StreamingReply, and is killed with SIGKILL
// at several points. Reopening must show every message it reported committed, intact; the partial
// reply marked interrupted and holding at least everything written more than one batch interval
// before the kill; and PRAGMA integrity_check must say ok.
#include "app/conversation_store.h"
#include "app/streaming_reply.h"
#include "crash_text.h"
#include "support.h"

#include <QElapsedTimer>
#include <QFile>
#include <QMap>
#include <QProcess>
#include <QTest>

#include <csignal>

using namespace parley::app;
using namespace parley::test;

namespace {
struct Committed {
    qint64 id;
    QString role;
    int index;
};
} // namespace

class CrashTest : public QObject {
    Q_OBJECT
private slots:
    void killedWriterLeavesASoundDatabase_data();
    void killedWriterLeavesASoundDatabase();
};

void CrashTest::killedWriterLeavesASoundDatabase_data() {
    QTest::addColumn<int>("turns");          // question/answer pairs written before the reply
    QTest::addColumn<int>("killAfterCommits"); // kill once this many messages are reported (0: ignore)
    QTest::addColumn<int>("killAfterFlushes"); // kill once the reply was written this many times
    QTest::addColumn<int>("extraDelayMs");     // then wait this long before SIGKILL
    QTest::newRow("while writing earlier messages") << 400 << 57 << 0 << 0;
    QTest::newRow("right after the reply's first token") << 3 << 0 << 1 << 0;
    QTest::newRow("after a few batches") << 3 << 0 << 3 << 0;
    QTest::newRow("between batches") << 5 << 0 << 4 << 110;
    QTest::newRow("long reply") << 2 << 0 << 12 << 37;
    QTest::newRow("well after a batch") << 2 << 0 << 2 << 650;
}

void CrashTest::killedWriterLeavesASoundDatabase() {
    QFETCH(int, turns);
    QFETCH(int, killAfterCommits);
    QFETCH(int, killAfterFlushes);
    QFETCH(int, extraDelayMs);
    const QString writer = QString::fromStdString(envPath("PARLEY_BIN_DIR", "parley-store-writer"));
    QVERIFY2(QFile::exists(writer), qPrintable(writer));
    const QString db = QString::fromStdString(makeTempDir()) + "/parley.db";

    QProcess child;
    child.setProcessChannelMode(QProcess::SeparateChannels);
    child.start(writer, {"stream", db, QString::number(turns), "10"});
    QVERIFY(child.waitForStarted(10000));

    QList<Committed> committed;
    qint64 conversation = 0, replyId = 0;
    qsizetype flushedLength = 0;
    int flushes = 0;
    QMap<int, qint64> appendedAtMs; // piece index -> when the test saw it handed over
    QElapsedTimer clock;
    clock.start();
    QByteArray buffer;
    qint64 killAtMs = -1; // set when the kill point is reached: then + extraDelayMs
    while (killAtMs < 0 || clock.elapsed() < killAtMs) {
        QVERIFY2(clock.elapsed() < 60000, "the writer did not reach the kill point");
        QVERIFY2(child.state() == QProcess::Running, qPrintable(child.readAllStandardError()));
        child.waitForReadyRead(5);
        buffer += child.readAllStandardOutput();
        int nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
            const QStringList w = QString::fromUtf8(buffer.left(nl)).split(' ');
            buffer.remove(0, nl + 1);
            if (w[0] == "conversation") conversation = w[1].toLongLong();
            else if (w[0] == "committed") committed.append({w[1].toLongLong(), w[2], w[3].toInt()});
            else if (w[0] == "appended") appendedAtMs[w[1].toInt()] = clock.elapsed();
            else if (w[0] == "flushed") {
                replyId = w[1].toLongLong();
                flushedLength = w[2].toLongLong();
                ++flushes;
            } else QFAIL(qPrintable("unexpected line from the writer: " + w.join(' ')));
            if (killAtMs < 0 && ((killAfterCommits && committed.size() >= killAfterCommits) ||
                                 (killAfterFlushes && flushes >= killAfterFlushes)))
                killAtMs = clock.elapsed() + extraDelayMs;
        }
    }
    ::kill(pid_t(child.processId()), SIGKILL);
    QVERIFY(child.waitForFinished(10000));
    QCOMPARE(child.exitStatus(), QProcess::CrashExit);

    // Reopen as the app would at its next start; the dead writer's lock is stale and taken over.
    ConversationStore store;
    QVERIFY2(store.open(db), qPrintable(store.lastError()));
    QCOMPARE(store.integrityCheck(), QString("ok"));
    QVERIFY(conversation);
    const auto c = store.conversation(conversation);
    QVERIFY(c);
    QCOMPARE(c->title, QString("Crash test"));
    QCOMPARE(c->settings.systemPrompt, QString("You are tested for crash safety."));

    const QList<Message> messages = store.messages(conversation);
    QVERIFY(messages.size() >= committed.size());
    for (int i = 0; i < committed.size(); ++i) {
        const Committed& m = committed[i];
        const auto stored = store.message(m.id);
        QVERIFY2(stored, qPrintable(QString("committed message %1 is gone").arg(m.id)));
        QCOMPARE(stored->role, m.role);
        QCOMPARE(stored->content, m.role == "user" ? crashQuestion(m.index) : crashAnswer(m.index));
        QCOMPARE(stored->status, MessageStatus::Complete);
        QCOMPARE(stored->position, i);
    }
    // The search index agrees with the table after the crash.
    if (!committed.isEmpty()) QCOMPARE(store.search(QString("Question %1").arg(committed.last().index)).isEmpty(), false);

    if (killAfterFlushes) {
        QVERIFY(replyId);
        QCOMPARE(store.recoveredReplies(), 1);
        const auto reply = store.message(replyId);
        QVERIFY(reply);
        QCOMPARE(reply->role, QString("assistant"));
        QCOMPARE(reply->status, MessageStatus::Interrupted);
        QVERIFY2(reply->content.size() >= flushedLength, "text the writer reported written is missing");
        const QString full = crashReply(int(appendedAtMs.lastKey()) + 2);
        QVERIFY2(full.startsWith(reply->content), "the partial reply is not a prefix of what was streamed");
        // At most ~250 ms of text at risk: when the writer handed over its last piece, every piece
        // handed over more than 200 ms (the batch interval) + 100 ms (pipe and scheduling slack)
        // before it was in the database. Measured against the last piece rather than the kill, so
        // that a writer the machine did not schedule for a while is not blamed for it.
        const qint64 lastAppendMs = appendedAtMs.last();
        for (auto it = appendedAtMs.cbegin(); it != appendedAtMs.cend(); ++it)
            if (lastAppendMs - it.value() > 300)
                QVERIFY2(reply->content.size() >= crashReply(it.key() + 1).size(),
                         qPrintable(QString("piece %1, handed over %2 ms before the last one, was lost").arg(it.key()).arg(lastAppendMs - it.value())));
    } else {
        QCOMPARE(store.recoveredReplies(), 0);
    }
}

QTEST_GUILESS_MAIN(CrashTest)
#include "test_app_crash.moc"
