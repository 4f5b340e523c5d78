#include "app/streaming_reply.h"

namespace parley::app {

StreamingReply::StreamingReply(ConversationStore& store, qint64 conversationId, std::chrono::milliseconds flushInterval)
    : store_(store), conversationId_(conversationId), flushInterval_(flushInterval) {}

bool StreamingReply::append(const QString& piece) {
    if (finished_ || piece.isEmpty()) return true;
    if (committedLength_ == text_.size()) oldestPending_.start();
    text_ += piece;
    if (messageId_ == 0) return flush(); // the row exists from the first token
    return flushIfDue();
}

bool StreamingReply::flushIfDue() {
    if (committedLength_ == text_.size() || !oldestPending_.isValid()) return true;
    if (oldestPending_.elapsed() < flushInterval_.count()) return true;
    return flush();
}

bool StreamingReply::flush() {
    if (finished_) return true;
    if (messageId_ == 0) {
        messageId_ = store_.appendMessage(conversationId_, "assistant", text_, MessageStatus::Streaming);
        if (messageId_ == 0) return false;
    } else if (committedLength_ != text_.size()) {
        if (!store_.updateMessage(messageId_, text_, MessageStatus::Streaming)) return false;
    } else {
        return true;
    }
    committedLength_ = text_.size();
    oldestPending_.invalidate();
    ++writes_;
    return true;
}

bool StreamingReply::finish(MessageStatus status) {
    if (finished_) return true;
    bool ok;
    if (messageId_ == 0) {
        messageId_ = store_.appendMessage(conversationId_, "assistant", text_, status);
        ok = messageId_ != 0;
    } else {
        ok = store_.updateMessage(messageId_, text_, status);
    }
    if (ok) {
        committedLength_ = text_.size();
        ++writes_;
        finished_ = true;
    }
    return ok;
}

} // namespace parley::app
