// ConversationStore and StreamingReply on real SQLite files in a temporary folder: CRUD, order,
// FTS5 search, migrations from version 0 and from an older schema, export/import round trip,
// recovery of interrupted replies, the single-writer lock, and how often a streaming reply is written.
#include "app/conversation_store.h"
#include "app/settings.h"
#include "app/streaming_reply.h"
#include "support.h"

#include <QElapsedTimer>
#include <QFile>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QTest>
#include <QThread>

using namespace parley::app;

namespace {
QString tempDb() { return QString::fromStdString(parley::test::makeTempDir()) + "/parley.db"; }

// A plain connection to the same file, the way a second program would look at it.
struct RawDb {
    explicit RawDb(const QString& path) : name("raw-" + QString::number(quintptr(this))) {
        QSqlDatabase db = QSqlDatabase::addDatabase("QSQLITE", name);
        db.setDatabaseName(path);
        db.open();
    }
    ~RawDb() {
        { QSqlDatabase::database(name).close(); }
        QSqlDatabase::removeDatabase(name);
    }
    QVariant value(const QString& sql) {
        QSqlQuery q(QSqlDatabase::database(name));
        if (!q.exec(sql) || !q.next()) return {};
        return q.value(0);
    }
    bool exec(const QString& sql) {
        QSqlQuery q(QSqlDatabase::database(name));
        const bool ok = q.exec(sql);
        if (!ok) qWarning() << sql << q.lastError().text();
        return ok;
    }
    QString name;
};

QList<qint64> ids(const QList<Conversation>& list) {
    QList<qint64> out;
    for (const auto& c : list) out << c.id;
    return out;
}
} // namespace

class StoreTest : public QObject {
    Q_OBJECT
private slots:
    void newFileIsMigratedFromVersionZero();
    void conversationsCreateRenameDeleteMostRecentFirst();
    void messagesKeepOrderAndCanBeCutForResend();
    void conversationRemembersModelPromptAndSampling();
    void searchFindsMessagesAcrossConversations();
    void searchTreatsPunctuationAsText();
    void migrationFromVersionOneKeepsAndIndexesMessages();
    void newerSchemaIsRefused();
    void garbageFileIsRefusedWithItsName();
    void exportImportRoundTrip();
    void importRejectsMalformedDocuments();
    void markdownExportReadsLikeTheChat();
    void streamingRowsBecomeInterruptedOnOpen();
    void secondStoreOnTheSameFileIsRefused();
    void secondProcessIsRefusedWhileTheFirstRuns();
    void streamingReplyExistsFromFirstPieceAndWritesInBatches();
    void settingsRoundTripAndClamp();
};

void StoreTest::newFileIsMigratedFromVersionZero() {
    const QString path = tempDb();
    {
        ConversationStore store;
        QVERIFY2(store.open(path), qPrintable(store.lastError()));
        QCOMPARE(store.schemaVersion(), ConversationStore::latestSchemaVersion());
        QCOMPARE(store.integrityCheck(), QString("ok"));
    }
    RawDb raw(path);
    QCOMPARE(raw.value("PRAGMA journal_mode").toString(), QString("wal"));
    QCOMPARE(raw.value("PRAGMA user_version").toInt(), ConversationStore::latestSchemaVersion());
    QCOMPARE(raw.value("SELECT count(*) FROM sqlite_master WHERE name IN ('conversations', 'messages', 'messages_fts')").toInt(), 3);
}

void StoreTest::conversationsCreateRenameDeleteMostRecentFirst() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    const qint64 a = store.createConversation("First");
    const qint64 b = store.createConversation("Second");
    const qint64 c = store.createConversation("Third");
    QVERIFY(a && b && c);
    QCOMPARE(ids(store.conversations()), (QList<qint64>{c, b, a}));
    // A new message brings a conversation to the top.
    QVERIFY(store.appendMessage(a, "user", "hello again"));
    QCOMPARE(ids(store.conversations()), (QList<qint64>{a, c, b}));

    QVERIFY(store.renameConversation(b, "Renamed"));
    QCOMPARE(store.conversation(b)->title, QString("Renamed"));
    QVERIFY(!store.renameConversation(9999, "nobody"));

    QVERIFY(store.appendMessage(b, "user", "doomed message"));
    QVERIFY(store.deleteConversation(b));
    QVERIFY(!store.conversation(b));
    QVERIFY(store.messages(b).isEmpty()); // cascaded
    QVERIFY(store.search("doomed").isEmpty());
    QCOMPARE(ids(store.conversations()), (QList<qint64>{a, c}));
}

void StoreTest::messagesKeepOrderAndCanBeCutForResend() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    const qint64 c = store.createConversation("Chat");
    QList<qint64> m;
    for (int i = 0; i < 5; ++i) m << store.appendMessage(c, i % 2 ? "assistant" : "user", QString("message %1").arg(i));
    QVERIFY(!store.appendMessage(c, "robot", "bad role"));
    const QList<Message> all = store.messages(c);
    QCOMPARE(all.size(), 5);
    for (int i = 0; i < 5; ++i) {
        QCOMPARE(all[i].id, m[i]);
        QCOMPARE(all[i].position, i);
        QCOMPARE(all[i].content, QString("message %1").arg(i));
        QCOMPARE(all[i].status, MessageStatus::Complete);
    }
    QVERIFY(store.updateMessage(m[3], "changed", MessageStatus::Stopped));
    QCOMPARE(store.message(m[3])->content, QString("changed"));
    QCOMPARE(store.message(m[3])->status, MessageStatus::Stopped);
    // Edit message 2 and resend: it and everything after it go.
    QVERIFY(store.deleteMessagesFrom(c, 2));
    QCOMPARE(store.messages(c).size(), 2);
    const qint64 again = store.appendMessage(c, "user", "edited");
    QCOMPARE(store.message(again)->position, 2);
}

void StoreTest::conversationRemembersModelPromptAndSampling() {
    const QString path = tempDb();
    ConversationSettings s;
    s.modelPath = "/models/a.gguf";
    s.systemPrompt = "Answer in French.";
    s.sampling.temperature = 0.2;
    s.sampling.topK = 7;
    s.sampling.seed = 42;
    qint64 id;
    {
        ConversationStore store;
        QVERIFY(store.open(path));
        id = store.createConversation("Settings", s);
        s.sampling.maxNewTokens = 99;
        QVERIFY(store.setConversationSettings(id, s));
    }
    ConversationStore store;
    QVERIFY(store.open(path));
    QCOMPARE(store.conversation(id)->settings, s);
}

void StoreTest::searchFindsMessagesAcrossConversations() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    const qint64 a = store.createConversation("Cooking");
    const qint64 b = store.createConversation("Travel");
    store.appendMessage(a, "user", "How long do I boil an egg?");
    store.appendMessage(a, "assistant", "Boil the eggs for about nine minutes.");
    store.appendMessage(b, "user", "What is the capital of Iceland?");
    const qint64 reply = store.appendMessage(b, "assistant", "It is Reykjavík.", MessageStatus::Streaming);

    QList<SearchHit> hits = store.search("boil");
    QCOMPARE(hits.size(), 2);
    for (const auto& h : hits) {
        QCOMPARE(h.conversationId, a);
        QCOMPARE(h.conversationTitle, QString("Cooking"));
        QVERIFY2(h.snippet.contains("[boil]", Qt::CaseInsensitive) || h.snippet.contains("[Boil]"), qPrintable(h.snippet));
    }
    QCOMPARE(store.search("capit").size(), 1);        // prefix
    QCOMPARE(store.search("reykjavik").size(), 1);    // diacritics folded
    QCOMPARE(store.search("egg nine").size(), 1);     // "egg" is a prefix of "eggs"
    QCOMPARE(store.search("egg iceland").size(), 0);  // all words must be in one message
    QVERIFY(store.search("volcano").isEmpty());
    // A streaming reply's updates are searchable as they land.
    QVERIFY(store.updateMessage(reply, "It is Reykjavík, near a volcano.", MessageStatus::Complete));
    QCOMPARE(store.search("volcano").size(), 1);
    QCOMPARE(store.search("volcano").first().messageId, reply);
}

void StoreTest::searchTreatsPunctuationAsText() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    const qint64 a = store.createConversation("Code");
    store.appendMessage(a, "user", "Why does C++ say \"NEAR\" is undefined? (a OR b) -x*");
    for (const QString& q : {QString("C++"), QString("\"NEAR"), QString("(a OR"), QString("-x*"), QString("\"")}) {
        store.search(q); // must not be an FTS5 syntax error
        QVERIFY2(store.lastError().isEmpty(), qPrintable(q + ": " + store.lastError()));
    }
    QCOMPARE(store.search("C++ NEAR").size(), 1);
    QVERIFY(store.search("***").isEmpty());
}

void StoreTest::migrationFromVersionOneKeepsAndIndexesMessages() {
    const QString path = tempDb();
    {
        // A file as the first schema version wrote it: no full-text index yet.
        RawDb raw(path);
        QVERIFY(raw.exec("CREATE TABLE conversations (id INTEGER PRIMARY KEY, title TEXT NOT NULL, created_at INTEGER NOT NULL, "
                         "updated_at INTEGER NOT NULL, model TEXT NOT NULL DEFAULT '', system_prompt TEXT NOT NULL DEFAULT '', "
                         "sampling TEXT NOT NULL DEFAULT '{}')"));
        QVERIFY(raw.exec("CREATE TABLE messages (id INTEGER PRIMARY KEY, conversation_id INTEGER NOT NULL REFERENCES "
                         "conversations(id) ON DELETE CASCADE, position INTEGER NOT NULL, role TEXT NOT NULL, content TEXT NOT NULL, "
                         "status TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, UNIQUE (conversation_id, position))"));
        QVERIFY(raw.exec("CREATE INDEX conversations_by_update ON conversations(updated_at DESC)"));
        QVERIFY(raw.exec("INSERT INTO conversations VALUES (7, 'Old chat', 1000, 2000, 'm.gguf', '', '{}')"));
        QVERIFY(raw.exec("INSERT INTO messages VALUES (1, 7, 0, 'user', 'Tell me about lighthouses', 'complete', 1000, 1000)"));
        QVERIFY(raw.exec("INSERT INTO messages VALUES (2, 7, 1, 'assistant', 'Lighthouses guide ships', 'streaming', 1000, 1500)"));
        QVERIFY(raw.exec("PRAGMA user_version = 1"));
    }
    ConversationStore store;
    QVERIFY2(store.open(path), qPrintable(store.lastError()));
    QCOMPARE(store.schemaVersion(), ConversationStore::latestSchemaVersion());
    QCOMPARE(store.conversation(7)->title, QString("Old chat"));
    const QList<Message> m = store.messages(7);
    QCOMPARE(m.size(), 2);
    QCOMPARE(m[0].content, QString("Tell me about lighthouses"));
    QCOMPARE(m[1].status, MessageStatus::Interrupted); // the old file's unfinished reply
    QCOMPARE(store.search("lighthouse").size(), 2);     // indexed by the migration
    QCOMPARE(store.integrityCheck(), QString("ok"));
}

void StoreTest::newerSchemaIsRefused() {
    const QString path = tempDb();
    { RawDb(path).exec("PRAGMA user_version = 99"); }
    ConversationStore store;
    QVERIFY(!store.open(path));
    QVERIFY2(store.lastError().contains("newer Parley") && store.lastError().contains(path), qPrintable(store.lastError()));
    QVERIFY(!store.isOpen());
}

void StoreTest::garbageFileIsRefusedWithItsName() {
    const QString path = tempDb();
    std::vector<uint8_t> junk(8192);
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = uint8_t((i * 2654435761u) >> 13);
    parley::test::writeFileBytes(path.toStdString(), junk);
    ConversationStore store;
    QVERIFY(!store.open(path));
    QVERIFY2(store.lastError().contains(path), qPrintable(store.lastError()));
    // The lock is released: a later open of a good file works with the same object.
    QVERIFY(store.open(tempDb()));
}

void StoreTest::exportImportRoundTrip() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    ConversationSettings s;
    s.modelPath = "/m/SmolLM2.gguf";
    s.systemPrompt = "Be brief.\nVery brief.";
    s.sampling.temperature = 0.0;
    s.sampling.repeatPenalty = 1.3;
    const qint64 a = store.createConversation("Round trip ✓ «quotes»", s);
    store.appendMessage(a, "user", "Show me code");
    store.appendMessage(a, "assistant", "```python\nprint('hi')\n```\n| a | b |\n|---|---|\n| 1 | 2 |", MessageStatus::Complete);
    store.appendMessage(a, "user", "And again — in 日本語?");
    store.appendMessage(a, "assistant", "half a rep", MessageStatus::Stopped);

    const QByteArray json = store.exportJson(a);
    const qint64 b = store.importJson(json);
    QVERIFY2(b && b != a, qPrintable(store.lastError()));
    const auto ca = *store.conversation(a);
    const auto cb = *store.conversation(b);
    QCOMPARE(cb.title, ca.title);
    QCOMPARE(cb.settings, ca.settings);
    QCOMPARE(cb.createdAt, ca.createdAt);
    const QList<Message> ma = store.messages(a), mb = store.messages(b);
    QCOMPARE(mb.size(), ma.size());
    for (int i = 0; i < ma.size(); ++i) {
        QCOMPARE(mb[i].role, ma[i].role);
        QCOMPARE(mb[i].content, ma[i].content);
        QCOMPARE(mb[i].status, ma[i].status);
        QCOMPARE(mb[i].createdAt, ma[i].createdAt);
    }
    // Exporting the import gives the same document, apart from the conversation's own times.
    QJsonObject ja = QJsonDocument::fromJson(json).object(), jb = QJsonDocument::fromJson(store.exportJson(b)).object();
    ja.remove("updated_at");
    jb.remove("updated_at");
    QCOMPARE(jb, ja);
    QCOMPARE(store.conversations().first().id, b); // an import is the newest conversation
}

void StoreTest::importRejectsMalformedDocuments() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    const int before = store.conversations().size();
    QCOMPARE(store.importJson("{not json"), 0);
    QVERIFY(store.lastError().contains("not JSON"));
    QCOMPARE(store.importJson(R"({"format":"other","version":1,"messages":[]})"), 0);
    QVERIFY(store.lastError().contains("not a Parley conversation"));
    QCOMPARE(store.importJson(R"({"format":"parley-conversation","version":1,"messages":[{"role":"user","content":"ok"},{"role":"wizard","content":"x"}]})"), 0);
    QVERIFY2(store.lastError().contains("message 2"), qPrintable(store.lastError()));
    QCOMPARE(store.importJson(R"({"format":"parley-conversation","version":1,"messages":[{"role":"user","content":"ok","status":"weird"}]})"), 0);
    QCOMPARE(store.conversations().size(), before); // nothing half-imported
}

void StoreTest::markdownExportReadsLikeTheChat() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    ConversationSettings s;
    s.systemPrompt = "Be kind.";
    const qint64 a = store.createConversation("Greetings", s);
    store.appendMessage(a, "user", "Hi!");
    store.appendMessage(a, "assistant", "Hello — **welcome**.", MessageStatus::Interrupted);
    const QString md = store.exportMarkdown(a);
    QVERIFY(md.startsWith("# Greetings\n"));
    QVERIFY(md.contains("> **System:** Be kind."));
    QVERIFY(md.contains("## You\n\nHi!\n"));
    QVERIFY(md.contains("## Assistant (interrupted)\n\nHello — **welcome**.\n"));
    QVERIFY(md.indexOf("## You") < md.indexOf("## Assistant"));
}

void StoreTest::streamingRowsBecomeInterruptedOnOpen() {
    const QString path = tempDb();
    qint64 id;
    {
        ConversationStore store;
        QVERIFY(store.open(path));
        const qint64 c = store.createConversation("x");
        id = store.appendMessage(c, "assistant", "partial", MessageStatus::Streaming);
        QCOMPARE(store.recoveredReplies(), 0);
    }
    ConversationStore store;
    QVERIFY(store.open(path));
    QCOMPARE(store.recoveredReplies(), 1);
    QCOMPARE(store.message(id)->status, MessageStatus::Interrupted);
    QCOMPARE(store.message(id)->content, QString("partial"));
}

void StoreTest::secondStoreOnTheSameFileIsRefused() {
    const QString path = tempDb();
    ConversationStore first;
    QVERIFY(first.open(path));
    const qint64 c = first.createConversation("mine");
    first.appendMessage(c, "assistant", "still streaming", MessageStatus::Streaming);
    ConversationStore second;
    QVERIFY(!second.open(path));
    QVERIFY2(second.lastError().contains("in use by another Parley"), qPrintable(second.lastError()));
    // The first one's live reply was not touched by the refused second open.
    QCOMPARE(first.messages(c).first().status, MessageStatus::Streaming);
    first.close();
    QVERIFY(second.open(path));
    QCOMPARE(second.messages(c).first().status, MessageStatus::Interrupted);
}

void StoreTest::secondProcessIsRefusedWhileTheFirstRuns() {
    const QString path = tempDb();
    const QString writer = QString::fromStdString(parley::test::envPath("PARLEY_BIN_DIR", "parley-store-writer"));
    QVERIFY2(QFile::exists(writer), qPrintable(writer));
    auto probe = [&] {
        QProcess p;
        p.start(writer, {"probe", path});
        p.waitForFinished(20000);
        return std::make_pair(p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()));
    };
    {
        ConversationStore store;
        QVERIFY(store.open(path));
        const auto [code, out] = probe();
        QCOMPARE(code, 3);
        QVERIFY2(out.contains("in use by another Parley (process " + QString::number(QCoreApplication::applicationPid())), qPrintable(out));
    }
    QCOMPARE(probe().first, 0); // free again once the first closed
}

void StoreTest::streamingReplyExistsFromFirstPieceAndWritesInBatches() {
    ConversationStore store;
    QVERIFY(store.open(tempDb()));
    const qint64 c = store.createConversation("stream");
    const int intervalMs = 100;
    StreamingReply reply(store, c, std::chrono::milliseconds(intervalMs));
    QCOMPARE(reply.messageId(), 0);
    QVERIFY(reply.append("Hello"));
    QVERIFY(reply.messageId() != 0);
    QCOMPARE(store.message(reply.messageId())->content, QString("Hello"));
    QCOMPARE(store.message(reply.messageId())->status, MessageStatus::Streaming);

    // 60 pieces, 5 ms apart: the database trails the text by at most one interval (plus a piece).
    QElapsedTimer sinceCommit;
    sinceCommit.start();
    qsizetype lastCommitted = reply.committedLength();
    for (int i = 0; i < 60; ++i) {
        QThread::msleep(5);
        QVERIFY(reply.append(QString(" w%1").arg(i)));
        if (reply.committedLength() != lastCommitted) {
            lastCommitted = reply.committedLength();
            sinceCommit.restart();
            QCOMPARE(store.message(reply.messageId())->content, reply.text().left(lastCommitted));
        }
        QVERIFY2(sinceCommit.elapsed() <= intervalMs + 40, "text waited too long to be written");
    }
    QVERIFY2(reply.writes() >= 2 && reply.writes() <= 8, qPrintable(QString::number(reply.writes()))); // batches, not every piece
    QVERIFY(reply.finish(MessageStatus::Stopped));
    QCOMPARE(store.message(reply.messageId())->content, reply.text());
    QCOMPARE(store.message(reply.messageId())->status, MessageStatus::Stopped);

    // A reply stopped before its first piece still leaves a row saying so.
    StreamingReply empty(store, c);
    QVERIFY(empty.finish(MessageStatus::Stopped));
    QCOMPARE(store.message(empty.messageId())->content, QString());
    QCOMPARE(store.message(empty.messageId())->status, MessageStatus::Stopped);
}

void StoreTest::settingsRoundTripAndClamp() {
    const QString file = QString::fromStdString(parley::test::makeTempDir()) + "/parley.conf";
    SamplingSettings s;
    s.temperature = 0.3;
    s.topK = 5;
    s.seed = 1234;
    ModelSettings m;
    m.precision = "int8";
    m.backend = "cpu";
    m.contextLength = 4096;
    m.kvCache = "int8";
    {
        Settings settings(file);
        QCOMPARE(settings.sampling(), SamplingSettings{}); // defaults on a new file
        settings.setSampling(s);
        settings.setModel(m);
        settings.setSystemPrompt("Hi");
        settings.setLastModelPath("/x.gguf");
    }
    {
        Settings settings(file);
        QCOMPARE(settings.sampling(), s);
        QCOMPARE(settings.model(), m);
        QCOMPARE(settings.systemPrompt(), QString("Hi"));
        QCOMPARE(settings.lastModelPath(), QString("/x.gguf"));
        QCOMPARE(settings.newConversationDefaults().systemPrompt, QString("Hi"));
    }
    // A hand-edited file with nonsense falls back to sane values.
    QFile f(file);
    QVERIFY(f.open(QIODevice::WriteOnly | QIODevice::Truncate));
    f.write("[sampling]\ntemperature=-3\ntopP=7\n[model]\nprecision=int3\ncontextLength=5\nkvCache=int3\n");
    f.close();
    Settings settings(file);
    QCOMPARE(settings.sampling().temperature, 0.0);
    QCOMPARE(settings.sampling().topP, 1.0);
    QCOMPARE(settings.model().precision, QString("auto"));
    QCOMPARE(settings.model().contextLength, 128);
    QCOMPARE(settings.model().kvCache, QString("auto"));
}

QTEST_GUILESS_MAIN(StoreTest)
#include "test_app_store.moc"
