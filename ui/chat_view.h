#pragma once
// The conversation in the centre of the window: one MessageWidget per message in a scroll area.
// A streaming reply is one widget at the end whose text grows; pieces are gathered and shown at
// most every kRepaintMs, and only that widget changes. The view stays at the bottom while it is
// there and stays where the user scrolled to otherwise.
#include "app/conversation_store.h"

#include <QList>
#include <QScrollArea>
#include <QTimer>

class QVBoxLayout;
class QPushButton;

namespace parley::ui {

class MessageWidget;

class ChatView : public QScrollArea {
    Q_OBJECT
public:
    explicit ChatView(QWidget* parent = nullptr);
    static constexpr int kRepaintMs = 33;

    void showConversation(const QList<parley::app::Message>& messages);
    void addMessage(const parley::app::Message& message);
    void beginReply();
    void appendReply(const QString& piece);
    void finishReply(const parley::app::Message& message);
    // A line from Parley itself (welcome, notices), not part of the conversation; optionally
    // with a button.
    QPushButton* addNotice(const QString& text, const QString& buttonText = {});
    void setBusy(bool busy);

    QList<MessageWidget*> messageWidgets() const { return messages_; }
    MessageWidget* streamingWidget() const { return streaming_; }
    bool followsBottom() const { return followBottom_; }
    QString streamingText() const { return streamingText_; }

signals:
    void editRequested(qint64 messageId, const QString& text);
    void regenerateRequested();

private:
    MessageWidget* insertMessage(const QString& role);
    void updateButtons();
    void repaintReply();
    void clear();

    QWidget* content_;
    QVBoxLayout* layout_;
    QList<MessageWidget*> messages_;
    QList<QWidget*> notices_;
    MessageWidget* streaming_ = nullptr;
    QString streamingText_;
    QTimer repaintTimer_;
    bool followBottom_ = true;
    bool busy_ = false;
};

} // namespace parley::ui
