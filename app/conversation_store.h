#pragma once
// Conversations and their messages in one SQLite file (DESIGN.md §4).
//   - WAL journal, foreign keys on, schema versioned by PRAGMA user_version: migrations run in
//     order from whatever version the file has (0 = new file) up to latestSchemaVersion().
//   - An FTS5 index over message text (external content, kept by triggers) for search.
//   - Assistant replies are written while they stream (see StreamingReply): status `streaming`
//     until they end `complete`, `stopped`, `interrupted` or `failed`. open() turns rows left
//     `streaming` by a crash into `interrupted`.
//   - One writer: open() takes a lock file beside the database (QLockFile, "<db>.lock"). A second
//     store or a second Parley on the same file is refused with a clear error instead of racing
//     the first one's recovery and streaming writes. A lock left by a killed process is stale
//     (its PID is gone) and is taken over.
#include "app/generation_settings.h"

#include <QDateTime>
#include <QList>
#include <QObject>
#include <QString>

#include <memory>
#include <optional>

class QLockFile;
class QSqlQuery;

namespace parley::app {

enum class MessageStatus { Complete, Streaming, Stopped, Interrupted, Failed };
QString messageStatusName(MessageStatus s); // "complete", "streaming", ...
std::optional<MessageStatus> messageStatusFromName(const QString& name);

struct Conversation {
    qint64 id = 0;
    QString title;
    QDateTime createdAt;
    QDateTime updatedAt; // last message or settings change
    ConversationSettings settings;
};

struct Message {
    qint64 id = 0;
    qint64 conversationId = 0;
    int position = 0;  // 0, 1, 2, ... within the conversation
    QString role;      // "system", "user" or "assistant"
    QString content;
    MessageStatus status = MessageStatus::Complete;
    QDateTime createdAt;
    QDateTime updatedAt;
};

struct SearchHit {
    qint64 conversationId = 0;
    qint64 messageId = 0;
    QString conversationTitle;
    QString snippet; // plain text around the match, the matched words in [brackets]
};

class ConversationStore : public QObject {
    Q_OBJECT
public:
    explicit ConversationStore(QObject* parent = nullptr);
    ~ConversationStore() override;

    static int latestSchemaVersion();

    // Opens or creates the database: lock, pragmas, migrations, recovery. On failure returns false
    // and lastError() says why in one line naming the file.
    bool open(const QString& path);
    void close();
    bool isOpen() const;
    QString path() const { return path_; }
    QString lastError() const { return lastError_; }
    int schemaVersion() const;
    // How many `streaming` rows the last open() found and marked `interrupted`.
    int recoveredReplies() const { return recoveredReplies_; }
    // PRAGMA integrity_check's answer ("ok" when the file is sound).
    QString integrityCheck() const;

    // Conversations, most recently updated first.
    QList<Conversation> conversations() const;
    std::optional<Conversation> conversation(qint64 id) const;
    qint64 createConversation(const QString& title, const ConversationSettings& settings = {}); // 0 on failure
    bool renameConversation(qint64 id, const QString& title);
    bool deleteConversation(qint64 id); // and its messages
    bool setConversationSettings(qint64 id, const ConversationSettings& settings);

    // Messages of one conversation in order.
    QList<Message> messages(qint64 conversationId) const;
    std::optional<Message> message(qint64 id) const;
    // Appends at the end of the conversation and touches its updatedAt; returns the id, 0 on failure.
    qint64 appendMessage(qint64 conversationId, const QString& role, const QString& content,
                         MessageStatus status = MessageStatus::Complete);
    bool updateMessage(qint64 messageId, const QString& content, MessageStatus status);
    // Removes the messages at `position` and after (edit-and-resend, regenerate).
    bool deleteMessagesFrom(qint64 conversationId, int position);

    // Full-text search over all messages (FTS5). Words are matched as prefixes, all must occur;
    // punctuation in `text` is ignored rather than read as FTS5 syntax. Best matches first.
    QList<SearchHit> search(const QString& text, int limit = 50) const;

    // Export/import (DESIGN.md §4). The JSON carries the title, settings and messages with their
    // statuses and times; importJson creates a new conversation from it and returns its id (0 and
    // lastError() on a malformed document).
    QString exportMarkdown(qint64 conversationId) const;
    QByteArray exportJson(qint64 conversationId) const;
    qint64 importJson(const QByteArray& json);

signals:
    // A conversation was created, renamed, deleted, or got a new message.
    void conversationsChanged();

private:
    bool fail(const QString& what) const;
    bool fail(const QString& what, const QSqlQuery& q) const;
    bool exec(const QString& sql) const;
    bool prepareDatabase();
    bool migrate();
    bool touchConversation(qint64 id);
    std::optional<Conversation> readConversation(QSqlQuery& q) const;

    QString connectionName_;
    QString path_;
    mutable QString lastError_;
    std::unique_ptr<QLockFile> lock_;
    int recoveredReplies_ = 0;
};

} // namespace parley::app
