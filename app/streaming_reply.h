#pragma once
// An assistant reply kept in the database while it streams (DESIGN.md §4, issue 4): the row is
// created with the first piece of text (status `streaming`), the text is rewritten in batches so
// that at most `flushInterval` of it (plus one timer tick, see ChatController) is only in memory,
// and finish() writes the whole text with its final status. A crash leaves the row `streaming`
// with the last batch; ConversationStore::open marks it `interrupted`.
#include "app/conversation_store.h"

#include <QElapsedTimer>
#include <QString>

#include <chrono>

namespace parley::app {

class StreamingReply {
public:
    StreamingReply(ConversationStore& store, qint64 conversationId,
                   std::chrono::milliseconds flushInterval = std::chrono::milliseconds(200));

    // Adds text; writes the row on the first piece and whenever the oldest unwritten text is
    // flushInterval old. Returns false when the database refused a write.
    bool append(const QString& piece);
    // Writes pending text if the oldest of it is flushInterval old (for a timer between pieces).
    bool flushIfDue();
    bool flush();
    // Writes the full text with its final status (creating the row if no piece came).
    bool finish(MessageStatus status);

    qint64 conversationId() const { return conversationId_; }
    qint64 messageId() const { return messageId_; } // 0 until the first piece
    const QString& text() const { return text_; }
    qsizetype committedLength() const { return committedLength_; } // characters already in the database
    int writes() const { return writes_; }
    bool finished() const { return finished_; }

private:
    ConversationStore& store_;
    qint64 conversationId_;
    std::chrono::milliseconds flushInterval_;
    qint64 messageId_ = 0;
    QString text_;
    qsizetype committedLength_ = 0;
    QElapsedTimer oldestPending_; // started when text is added after a write
    int writes_ = 0;
    bool finished_ = false;
};

} // namespace parley::app
