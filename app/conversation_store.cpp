#include "app/conversation_store.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLockFile>
#include <QRegularExpression>
#include <QSqlDatabase>
#include <QSqlError>
#include <QSqlQuery>
#include <QStringList>
#include <QUuid>
#include <QVariant>

namespace parley::app {

namespace {

// Each migration takes the schema from version i to i + 1 and runs in one transaction together
// with the user_version update, so a crash leaves the file at one version or the next.
const QList<QStringList>& migrations() {
    static const QList<QStringList> steps = {
        // 0 -> 1: conversations and messages.
        {
            R"(CREATE TABLE conversations (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, -- ids are never reused
                 title TEXT NOT NULL,
                 created_at INTEGER NOT NULL,            -- ms since the Unix epoch, UTC
                 updated_at INTEGER NOT NULL,
                 model TEXT NOT NULL DEFAULT '',
                 system_prompt TEXT NOT NULL DEFAULT '',
                 sampling TEXT NOT NULL DEFAULT '{}')    -- JSON, SamplingSettings::toJson
            )",
            R"(CREATE TABLE messages (
                 id INTEGER PRIMARY KEY AUTOINCREMENT, -- ids are never reused
                 conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
                 position INTEGER NOT NULL,
                 role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
                 content TEXT NOT NULL,
                 status TEXT NOT NULL CHECK (status IN ('complete', 'streaming', 'stopped', 'interrupted', 'failed')),
                 created_at INTEGER NOT NULL,
                 updated_at INTEGER NOT NULL,
                 UNIQUE (conversation_id, position))
            )",
            "CREATE INDEX conversations_by_update ON conversations(updated_at DESC)",
        },
        // 1 -> 2: full-text search over message text (FTS5 external content table, kept in step
        // by triggers; https://sqlite.org/fts5.html#external_content_tables), filled from the
        // messages already there.
        {
            R"(CREATE VIRTUAL TABLE messages_fts USING fts5(
                 content, content='messages', content_rowid='id', tokenize='unicode61 remove_diacritics 2'))",
            R"(CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
                 INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
               END)",
            R"(CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
                 INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
               END)",
            R"(CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
                 INSERT INTO messages_fts(messages_fts, rowid, content) VALUES ('delete', old.id, old.content);
                 INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
               END)",
            "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",
        },
    };
    return steps;
}

qint64 nowMs() { return QDateTime::currentMSecsSinceEpoch(); }
QDateTime fromMs(qint64 ms) { return QDateTime::fromMSecsSinceEpoch(ms, Qt::UTC); }

// A null QString binds as SQL NULL; text columns are NOT NULL, so empty text goes in as ''.
QVariant text(const QString& s) { return s.isNull() ? QVariant(QString("")) : QVariant(s); }

bool validRole(const QString& role) {
    return role == "system" || role == "user" || role == "assistant";
}

} // namespace

QString messageStatusName(MessageStatus s) {
    switch (s) {
    case MessageStatus::Complete: return "complete";
    case MessageStatus::Streaming: return "streaming";
    case MessageStatus::Stopped: return "stopped";
    case MessageStatus::Interrupted: return "interrupted";
    case MessageStatus::Failed: return "failed";
    }
    return "complete";
}

std::optional<MessageStatus> messageStatusFromName(const QString& name) {
    for (auto s : {MessageStatus::Complete, MessageStatus::Streaming, MessageStatus::Stopped,
                   MessageStatus::Interrupted, MessageStatus::Failed})
        if (messageStatusName(s) == name) return s;
    return std::nullopt;
}

ConversationStore::ConversationStore(QObject* parent)
    : QObject(parent), connectionName_("parley-store-" + QUuid::createUuid().toString(QUuid::WithoutBraces)) {}

ConversationStore::~ConversationStore() { close(); }

int ConversationStore::latestSchemaVersion() { return int(migrations().size()); }

bool ConversationStore::fail(const QString& what) const {
    lastError_ = what;
    qWarning("parley: %s", qPrintable(what));
    return false;
}

bool ConversationStore::fail(const QString& what, const QSqlQuery& q) const {
    return fail(QStringLiteral("%1: %2 (%3)").arg(path_, what, q.lastError().text()));
}

bool ConversationStore::exec(const QString& sql) const {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    if (!q.exec(sql)) return fail(sql.simplified().left(60), q);
    return true;
}

bool ConversationStore::open(const QString& path) {
    close();
    path_ = QFileInfo(path).absoluteFilePath();
    lastError_.clear();
    recoveredReplies_ = 0;
    if (!QDir().mkpath(QFileInfo(path_).absolutePath()))
        return fail(QStringLiteral("%1: cannot create the folder").arg(path_));

    lock_ = std::make_unique<QLockFile>(path_ + ".lock");
    lock_->setStaleLockTime(0); // only a lock whose process is gone is stale, however old
    if (!lock_->tryLock(0)) {
        qint64 pid = 0;
        QString host, app;
        const bool known = lock_->getLockInfo(&pid, &host, &app);
        const auto error = lock_->error();
        lock_.reset();
        if (error == QLockFile::LockFailedError)
            return fail(known ? QStringLiteral("%1 is in use by another Parley (process %2)").arg(path_).arg(pid)
                              : QStringLiteral("%1 is in use by another Parley").arg(path_));
        return fail(QStringLiteral("%1: cannot create the lock file %1.lock").arg(path_));
    }

    {
        QSqlDatabase db = QSqlDatabase::addDatabase("QSQLITE", connectionName_);
        db.setDatabaseName(path_);
        db.setConnectOptions("QSQLITE_BUSY_TIMEOUT=5000");
        if (!db.open()) {
            const QString why = db.lastError().text();
            close();
            return fail(QStringLiteral("%1: cannot open the database (%2)").arg(path, why));
        }
    }
    if (!prepareDatabase()) {
        const QString why = lastError_;
        close();
        return fail(why);
    }
    return true;
}

bool ConversationStore::prepareDatabase() {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    // WAL: readers never block the writer and a killed writer loses only its open transaction.
    // synchronous=NORMAL is durable against process crashes (the WAL is in the OS's hands as soon
    // as a transaction commits); https://sqlite.org/wal.html, https://sqlite.org/pragma.html#pragma_synchronous
    if (!q.exec("PRAGMA journal_mode=WAL") || !q.next() || q.value(0).toString() != "wal") {
        const QString why = q.lastError().isValid() ? q.lastError().text() : "WAL mode refused";
        return fail(QStringLiteral("%1: not a usable SQLite database (%2)").arg(path_, why));
    }
    q.finish();
    if (!exec("PRAGMA synchronous=NORMAL") || !exec("PRAGMA foreign_keys=ON") || !migrate()) return false;
    // Replies that were streaming when the last process died.
    if (!q.exec("UPDATE messages SET status = 'interrupted' WHERE status = 'streaming'"))
        return fail("recovering interrupted replies", q);
    recoveredReplies_ = q.numRowsAffected();
    return true;
}

void ConversationStore::close() {
    if (QSqlDatabase::contains(connectionName_)) {
        {
            QSqlDatabase db = QSqlDatabase::database(connectionName_, false);
            if (db.isOpen()) db.close();
        }
        QSqlDatabase::removeDatabase(connectionName_);
    }
    lock_.reset();
}

bool ConversationStore::isOpen() const {
    return QSqlDatabase::contains(connectionName_) && QSqlDatabase::database(connectionName_, false).isOpen();
}

int ConversationStore::schemaVersion() const {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    if (!q.exec("PRAGMA user_version") || !q.next()) return -1;
    return q.value(0).toInt();
}

bool ConversationStore::migrate() {
    const int from = schemaVersion();
    if (from < 0) return fail(QStringLiteral("%1: cannot read the schema version").arg(path_));
    if (from > latestSchemaVersion())
        return fail(QStringLiteral("%1 was written by a newer Parley (schema version %2, this one knows up to %3)")
                        .arg(path_).arg(from).arg(latestSchemaVersion()));
    QSqlDatabase db = QSqlDatabase::database(connectionName_, false);
    for (int version = from; version < latestSchemaVersion(); ++version) {
        if (!db.transaction()) return fail(QStringLiteral("%1: cannot begin a migration").arg(path_));
        bool ok = true;
        for (const QString& sql : migrations()[version]) {
            if (!(ok = exec(sql))) break;
        }
        ok = ok && exec(QStringLiteral("PRAGMA user_version = %1").arg(version + 1));
        if (!ok || !db.commit()) {
            const QString why = lastError_;
            db.rollback();
            return fail(QStringLiteral("%1: migration to schema version %2 failed: %3").arg(path_).arg(version + 1).arg(why));
        }
    }
    return true;
}

QString ConversationStore::integrityCheck() const {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    if (!q.exec("PRAGMA integrity_check")) return q.lastError().text();
    QStringList lines;
    while (q.next()) lines << q.value(0).toString();
    return lines.join('\n');
}

std::optional<Conversation> ConversationStore::readConversation(QSqlQuery& q) const {
    Conversation c;
    c.id = q.value(0).toLongLong();
    c.title = q.value(1).toString();
    c.createdAt = fromMs(q.value(2).toLongLong());
    c.updatedAt = fromMs(q.value(3).toLongLong());
    c.settings.modelPath = q.value(4).toString();
    c.settings.systemPrompt = q.value(5).toString();
    c.settings.sampling = SamplingSettings::fromJson(QJsonDocument::fromJson(q.value(6).toByteArray()).object());
    return c;
}

static const char* kConversationColumns = "id, title, created_at, updated_at, model, system_prompt, sampling";

QList<Conversation> ConversationStore::conversations() const {
    QList<Conversation> out;
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    if (!q.exec(QStringLiteral("SELECT %1 FROM conversations ORDER BY updated_at DESC, id DESC").arg(kConversationColumns))) {
        fail("listing conversations", q);
        return out;
    }
    while (q.next()) out << *readConversation(q);
    return out;
}

std::optional<Conversation> ConversationStore::conversation(qint64 id) const {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare(QStringLiteral("SELECT %1 FROM conversations WHERE id = ?").arg(kConversationColumns));
    q.addBindValue(id);
    if (!q.exec()) {
        fail("reading a conversation", q);
        return std::nullopt;
    }
    if (!q.next()) return std::nullopt;
    return readConversation(q);
}

// updated_at only grows: the conversation touched last is first in the list even when two
// changes fall into the same millisecond.
static const char* kNextStamp = "max(?, (SELECT coalesce(max(updated_at), 0) + 1 FROM conversations))";

qint64 ConversationStore::createConversation(const QString& title, const ConversationSettings& settings) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare(QStringLiteral("INSERT INTO conversations (title, created_at, updated_at, model, system_prompt, sampling) "
                             "VALUES (?, ?, %1, ?, ?, ?)").arg(kNextStamp));
    const qint64 now = nowMs();
    q.addBindValue(text(title));
    q.addBindValue(now);
    q.addBindValue(now);
    q.addBindValue(text(settings.modelPath));
    q.addBindValue(text(settings.systemPrompt));
    q.addBindValue(QJsonDocument(settings.sampling.toJson()).toJson(QJsonDocument::Compact));
    if (!q.exec()) {
        fail("creating a conversation", q);
        return 0;
    }
    emit conversationsChanged();
    return q.lastInsertId().toLongLong();
}

bool ConversationStore::renameConversation(qint64 id, const QString& title) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare("UPDATE conversations SET title = ? WHERE id = ?");
    q.addBindValue(text(title));
    q.addBindValue(id);
    if (!q.exec()) return fail("renaming a conversation", q);
    if (q.numRowsAffected() != 1) return fail(QStringLiteral("%1: no conversation %2").arg(path_).arg(id));
    emit conversationsChanged();
    return true;
}

bool ConversationStore::deleteConversation(qint64 id) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare("DELETE FROM conversations WHERE id = ?"); // messages go by ON DELETE CASCADE
    q.addBindValue(id);
    if (!q.exec()) return fail("deleting a conversation", q);
    if (q.numRowsAffected() != 1) return fail(QStringLiteral("%1: no conversation %2").arg(path_).arg(id));
    emit conversationsChanged();
    return true;
}

bool ConversationStore::setConversationSettings(qint64 id, const ConversationSettings& settings) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare("UPDATE conversations SET model = ?, system_prompt = ?, sampling = ? WHERE id = ?");
    q.addBindValue(text(settings.modelPath));
    q.addBindValue(text(settings.systemPrompt));
    q.addBindValue(QJsonDocument(settings.sampling.toJson()).toJson(QJsonDocument::Compact));
    q.addBindValue(id);
    if (!q.exec()) return fail("saving conversation settings", q);
    return q.numRowsAffected() == 1 || fail(QStringLiteral("%1: no conversation %2").arg(path_).arg(id));
}

bool ConversationStore::touchConversation(qint64 id) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare(QStringLiteral("UPDATE conversations SET updated_at = %1 WHERE id = ?").arg(kNextStamp));
    q.addBindValue(nowMs());
    q.addBindValue(id);
    return q.exec() || fail("touching a conversation", q);
}

static const char* kMessageColumns = "id, conversation_id, position, role, content, status, created_at, updated_at";

static Message readMessage(const QSqlQuery& q) {
    Message m;
    m.id = q.value(0).toLongLong();
    m.conversationId = q.value(1).toLongLong();
    m.position = q.value(2).toInt();
    m.role = q.value(3).toString();
    m.content = q.value(4).toString();
    m.status = messageStatusFromName(q.value(5).toString()).value_or(MessageStatus::Interrupted);
    m.createdAt = fromMs(q.value(6).toLongLong());
    m.updatedAt = fromMs(q.value(7).toLongLong());
    return m;
}

QList<Message> ConversationStore::messages(qint64 conversationId) const {
    QList<Message> out;
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare(QStringLiteral("SELECT %1 FROM messages WHERE conversation_id = ? ORDER BY position").arg(kMessageColumns));
    q.addBindValue(conversationId);
    if (!q.exec()) {
        fail("reading messages", q);
        return out;
    }
    while (q.next()) out << readMessage(q);
    return out;
}

std::optional<Message> ConversationStore::message(qint64 id) const {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare(QStringLiteral("SELECT %1 FROM messages WHERE id = ?").arg(kMessageColumns));
    q.addBindValue(id);
    if (!q.exec() || !q.next()) return std::nullopt;
    return readMessage(q);
}

qint64 ConversationStore::appendMessage(qint64 conversationId, const QString& role, const QString& content,
                                        MessageStatus status) {
    if (!validRole(role)) {
        fail(QStringLiteral("%1: '%2' is not a message role").arg(path_, role));
        return 0;
    }
    QSqlDatabase db = QSqlDatabase::database(connectionName_, false);
    if (!db.transaction()) {
        fail(QStringLiteral("%1: cannot begin a transaction (%2)").arg(path_, db.lastError().text()));
        return 0;
    }
    QSqlQuery q(db);
    q.prepare("INSERT INTO messages (conversation_id, position, role, content, status, created_at, updated_at) "
              "VALUES (?, (SELECT coalesce(max(position) + 1, 0) FROM messages WHERE conversation_id = ?), ?, ?, ?, ?, ?)");
    const qint64 now = nowMs();
    q.addBindValue(conversationId);
    q.addBindValue(conversationId);
    q.addBindValue(role);
    q.addBindValue(text(content));
    q.addBindValue(messageStatusName(status));
    q.addBindValue(now);
    q.addBindValue(now);
    if (!q.exec()) {
        fail("adding a message", q);
        db.rollback();
        return 0;
    }
    const qint64 id = q.lastInsertId().toLongLong();
    if (!touchConversation(conversationId) || !db.commit()) {
        db.rollback();
        return 0;
    }
    emit conversationsChanged();
    return id;
}

bool ConversationStore::updateMessage(qint64 messageId, const QString& content, MessageStatus status) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare("UPDATE messages SET content = ?, status = ?, updated_at = ? WHERE id = ?");
    q.addBindValue(text(content));
    q.addBindValue(messageStatusName(status));
    q.addBindValue(nowMs());
    q.addBindValue(messageId);
    if (!q.exec()) return fail("updating a message", q);
    return q.numRowsAffected() == 1 || fail(QStringLiteral("%1: no message %2").arg(path_).arg(messageId));
}

bool ConversationStore::deleteMessagesFrom(qint64 conversationId, int position) {
    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare("DELETE FROM messages WHERE conversation_id = ? AND position >= ?");
    q.addBindValue(conversationId);
    q.addBindValue(position);
    if (!q.exec()) return fail("removing messages", q);
    touchConversation(conversationId);
    emit conversationsChanged();
    return true;
}

QList<SearchHit> ConversationStore::search(const QString& text, int limit) const {
    QList<SearchHit> hits;
    // Each word becomes a quoted prefix term, so quotes, stars, NEAR or a '-' in the user's text
    // are ordinary characters, not FTS5 query syntax (https://sqlite.org/fts5.html#full_text_query_syntax).
    static const QRegularExpression word(R"([\p{L}\p{N}_]+)", QRegularExpression::UseUnicodePropertiesOption);
    QStringList terms;
    for (auto it = word.globalMatch(text); it.hasNext();) terms << '"' + it.next().captured(0) + "\"*";
    if (terms.isEmpty()) return hits;

    QSqlQuery q(QSqlDatabase::database(connectionName_, false));
    q.prepare("SELECT m.conversation_id, m.id, c.title, snippet(messages_fts, 0, '[', ']', '…', 12) "
              "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid "
              "JOIN conversations c ON c.id = m.conversation_id "
              "WHERE messages_fts MATCH ? ORDER BY rank LIMIT ?");
    q.addBindValue(terms.join(' '));
    q.addBindValue(limit);
    if (!q.exec()) {
        fail("searching", q);
        return hits;
    }
    while (q.next()) {
        SearchHit h;
        h.conversationId = q.value(0).toLongLong();
        h.messageId = q.value(1).toLongLong();
        h.conversationTitle = q.value(2).toString();
        h.snippet = q.value(3).toString().simplified();
        hits << h;
    }
    return hits;
}

QString ConversationStore::exportMarkdown(qint64 conversationId) const {
    const auto c = conversation(conversationId);
    if (!c) return {};
    QString md = "# " + c->title + "\n\n";
    if (!c->settings.modelPath.isEmpty()) md += "*Model:* `" + QFileInfo(c->settings.modelPath).fileName() + "`  \n";
    md += "*Started:* " + c->createdAt.toLocalTime().toString(Qt::ISODate) + "\n\n";
    if (!c->settings.systemPrompt.isEmpty()) md += "> **System:** " + QString(c->settings.systemPrompt).replace('\n', "\n> ") + "\n\n";
    for (const Message& m : messages(conversationId)) {
        const QString who = m.role == "user" ? "You" : m.role == "assistant" ? "Assistant" : "System";
        md += "## " + who;
        if (m.status != MessageStatus::Complete) md += " (" + messageStatusName(m.status) + ")";
        md += "\n\n" + m.content + "\n\n";
    }
    return md;
}

QByteArray ConversationStore::exportJson(qint64 conversationId) const {
    const auto c = conversation(conversationId);
    if (!c) return {};
    QJsonArray list;
    for (const Message& m : messages(conversationId))
        list << QJsonObject{{"role", m.role},
                            {"content", m.content},
                            {"status", messageStatusName(m.status)},
                            {"created_at", m.createdAt.toString(Qt::ISODateWithMs)},
                            {"updated_at", m.updatedAt.toString(Qt::ISODateWithMs)}};
    const QJsonObject doc{{"format", "parley-conversation"},
                          {"version", 1},
                          {"title", c->title},
                          {"created_at", c->createdAt.toString(Qt::ISODateWithMs)},
                          {"updated_at", c->updatedAt.toString(Qt::ISODateWithMs)},
                          {"model", c->settings.modelPath},
                          {"system_prompt", c->settings.systemPrompt},
                          {"sampling", c->settings.sampling.toJson()},
                          {"messages", list}};
    return QJsonDocument(doc).toJson(QJsonDocument::Indented);
}

qint64 ConversationStore::importJson(const QByteArray& json) {
    QJsonParseError parseError;
    const QJsonDocument doc = QJsonDocument::fromJson(json, &parseError);
    auto bad = [&](const QString& why) {
        fail("cannot import the conversation: " + why);
        return qint64(0);
    };
    if (doc.isNull()) return bad(QStringLiteral("not JSON (%1 at byte %2)").arg(parseError.errorString()).arg(parseError.offset));
    const QJsonObject o = doc.object();
    if (o.value("format").toString() != "parley-conversation") return bad("not a Parley conversation (no \"format\": \"parley-conversation\")");
    if (o.value("version").toInt() != 1) return bad(QStringLiteral("unknown version %1").arg(o.value("version").toInt()));
    if (!o.value("messages").isArray()) return bad("\"messages\" is not a list");
    const QJsonArray list = o.value("messages").toArray();
    for (int i = 0; i < list.size(); ++i) {
        const QJsonObject m = list[i].toObject();
        if (!validRole(m.value("role").toString())) return bad(QStringLiteral("message %1 has no valid role").arg(i + 1));
        if (!m.value("content").isString()) return bad(QStringLiteral("message %1 has no text").arg(i + 1));
        const QString status = m.value("status").toString("complete");
        if (!messageStatusFromName(status)) return bad(QStringLiteral("message %1 has an unknown status '%2'").arg(i + 1).arg(status));
    }
    auto stamp = [](const QJsonValue& v, qint64 fallback) {
        const QDateTime t = QDateTime::fromString(v.toString(), Qt::ISODateWithMs);
        return t.isValid() ? t.toMSecsSinceEpoch() : fallback;
    };

    QSqlDatabase db = QSqlDatabase::database(connectionName_, false);
    if (!db.transaction()) return bad(db.lastError().text());
    QSqlQuery q(db);
    const qint64 now = nowMs();
    q.prepare(QStringLiteral("INSERT INTO conversations (title, created_at, updated_at, model, system_prompt, sampling) "
                             "VALUES (?, ?, %1, ?, ?, ?)").arg(kNextStamp));
    q.addBindValue(o.value("title").toString("Imported conversation"));
    q.addBindValue(stamp(o.value("created_at"), now));
    q.addBindValue(now);
    q.addBindValue(text(o.value("model").toString()));
    q.addBindValue(text(o.value("system_prompt").toString()));
    q.addBindValue(QJsonDocument(SamplingSettings::fromJson(o.value("sampling").toObject()).toJson()).toJson(QJsonDocument::Compact));
    if (!q.exec()) {
        db.rollback();
        fail("importing a conversation", q);
        return 0;
    }
    const qint64 id = q.lastInsertId().toLongLong();
    for (int i = 0; i < list.size(); ++i) {
        const QJsonObject m = list[i].toObject();
        auto status = *messageStatusFromName(m.value("status").toString("complete"));
        if (status == MessageStatus::Streaming) status = MessageStatus::Interrupted; // nothing streams into an import
        QSqlQuery insert(db);
        insert.prepare("INSERT INTO messages (conversation_id, position, role, content, status, created_at, updated_at) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)");
        insert.addBindValue(id);
        insert.addBindValue(i);
        insert.addBindValue(m.value("role").toString());
        insert.addBindValue(text(m.value("content").toString()));
        insert.addBindValue(messageStatusName(status));
        insert.addBindValue(stamp(m.value("created_at"), now));
        insert.addBindValue(stamp(m.value("updated_at"), now));
        if (!insert.exec()) {
            db.rollback();
            fail("importing a message", insert);
            return 0;
        }
    }
    if (!db.commit()) {
        db.rollback();
        return bad(db.lastError().text());
    }
    emit conversationsChanged();
    return id;
}

} // namespace parley::app
