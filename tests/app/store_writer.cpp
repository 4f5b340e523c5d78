// parley-store-writer: the crash-safety test's child process (tests/app/test_app_crash.cpp).
//   parley-store-writer stream DB TURNS PIECE_MS  writes TURNS question/answer pairs, a question,
//       then streams a reply through StreamingReply (the app's own code path) forever; it reports
//       on stdout what is committed ("committed ID", "flushed ID LENGTH") and each piece handed
//       over ("appended K") so the test can check what survives a SIGKILL.
//   parley-store-writer probe DB  opens the database and exits 0, or prints the error and exits 3.
#include "app/conversation_store.h"
#include "app/streaming_reply.h"
#include "crash_text.h"

#include <QCoreApplication>
#include <QThread>

#include <cstdio>

using namespace parley::app;
using namespace parley::test;

static void say(const QString& line) {
    std::fputs(qPrintable(line + '\n'), stdout);
    std::fflush(stdout);
}

int main(int argc, char** argv) {
    QCoreApplication app(argc, argv);
    const QStringList args = app.arguments();
    if (args.size() < 3) {
        std::fputs("usage: parley-store-writer stream DB TURNS PIECE_MS | probe DB\n", stderr);
        return 2;
    }
    ConversationStore store;
    if (!store.open(args[2])) {
        say("error: " + store.lastError());
        return 3;
    }
    if (args[1] == "probe") return 0;
    if (args[1] != "stream" || args.size() < 5) return 2;
    const int turns = args[3].toInt();
    const int pieceMs = args[4].toInt();

    ConversationSettings settings;
    settings.systemPrompt = "You are tested for crash safety.";
    const qint64 conversation = store.createConversation("Crash test", settings);
    if (!conversation) return 4;
    say(QStringLiteral("conversation %1").arg(conversation));
    for (int i = 0; i < turns; ++i) {
        const qint64 q = store.appendMessage(conversation, "user", crashQuestion(i));
        if (!q) return 4;
        say(QStringLiteral("committed %1 user %2").arg(q).arg(i));
        const qint64 a = store.appendMessage(conversation, "assistant", crashAnswer(i));
        if (!a) return 4;
        say(QStringLiteral("committed %1 assistant %2").arg(a).arg(i));
    }
    const qint64 q = store.appendMessage(conversation, "user", crashQuestion(turns));
    say(QStringLiteral("committed %1 user %2").arg(q).arg(turns));

    StreamingReply reply(store, conversation, std::chrono::milliseconds(200));
    int writes = 0;
    for (int k = 0; k < 1'000'000; ++k) {
        if (!reply.append(crashPiece(k))) return 5;
        say(QStringLiteral("appended %1").arg(k));
        if (reply.writes() != writes) {
            writes = reply.writes();
            say(QStringLiteral("flushed %1 %2").arg(reply.messageId()).arg(reply.committedLength()));
        }
        QThread::msleep(pieceMs);
    }
    reply.finish(MessageStatus::Complete);
    say("done");
    return 0;
}
