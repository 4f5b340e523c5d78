#include "ui/chat_view.h"

#include "ui/message_widget.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QScrollBar>
#include <QVBoxLayout>

namespace parley::ui {

using parley::app::Message;
using parley::app::MessageStatus;

ChatView::ChatView(QWidget* parent) : QScrollArea(parent) {
    setObjectName("chatView");
    setWidgetResizable(true);
    setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    setFrameShape(QFrame::NoFrame);
    content_ = new QWidget;
    content_->setBackgroundRole(QPalette::Base);
    content_->setAutoFillBackground(true);
    layout_ = new QVBoxLayout(content_);
    layout_->setContentsMargins(0, 0, 0, 0);
    layout_->setSpacing(1);
    layout_->addStretch(1);
    setWidget(content_);

    // Follow the bottom: when the content grows and the view was at the bottom, go to the new
    // bottom. A user who scrolls up leaves the bottom and the view stays put.
    QScrollBar* bar = verticalScrollBar();
    connect(bar, &QScrollBar::valueChanged, this, [this, bar](int value) { followBottom_ = value >= bar->maximum() - 8; });
    connect(bar, &QScrollBar::rangeChanged, this, [this, bar](int, int max) {
        if (followBottom_) bar->setValue(max);
    });
    repaintTimer_.setSingleShot(true);
    repaintTimer_.setInterval(kRepaintMs);
    connect(&repaintTimer_, &QTimer::timeout, this, &ChatView::repaintReply);
}

void ChatView::clear() {
    repaintTimer_.stop();
    for (MessageWidget* m : messages_) delete m;
    for (QWidget* n : notices_) delete n;
    messages_.clear();
    notices_.clear();
    streaming_ = nullptr;
    streamingText_.clear();
    followBottom_ = true;
}

MessageWidget* ChatView::insertMessage(const QString& role) {
    auto* w = new MessageWidget(role, content_);
    layout_->insertWidget(layout_->count() - 1, w); // before the stretch
    messages_ << w;
    connect(w, &MessageWidget::editRequested, this, &ChatView::editRequested);
    connect(w, &MessageWidget::regenerateRequested, this, &ChatView::regenerateRequested);
    return w;
}

void ChatView::showConversation(const QList<Message>& messages) {
    clear();
    for (const Message& m : messages) {
        MessageWidget* w = insertMessage(m.role);
        w->setMessageId(m.id);
        w->setContent(m.content, m.status);
    }
    updateButtons();
}

void ChatView::addMessage(const Message& m) {
    MessageWidget* w = insertMessage(m.role);
    w->setMessageId(m.id);
    w->setContent(m.content, m.status);
    followBottom_ = true; // the user just sent something: show it
    updateButtons();
}

void ChatView::beginReply() {
    streamingText_.clear();
    streaming_ = insertMessage("assistant");
    streaming_->setStreaming(true);
    streaming_->setContent({}, MessageStatus::Streaming);
    updateButtons();
}

void ChatView::appendReply(const QString& piece) {
    if (!streaming_) return;
    streamingText_ += piece;
    if (!repaintTimer_.isActive()) repaintTimer_.start();
}

void ChatView::repaintReply() {
    if (streaming_) streaming_->setContent(streamingText_, MessageStatus::Streaming);
}

void ChatView::finishReply(const Message& m) {
    repaintTimer_.stop();
    if (!streaming_) return;
    streaming_->setMessageId(m.id);
    streaming_->setStreaming(false);
    streaming_->setContent(m.content, m.status);
    streaming_ = nullptr;
    streamingText_.clear();
    updateButtons();
}

QPushButton* ChatView::addNotice(const QString& text, const QString& buttonText) {
    auto* box = new QWidget(content_);
    auto* row = new QHBoxLayout(box);
    row->setContentsMargins(14, 8, 14, 8);
    auto* label = new QLabel(text, box);
    label->setObjectName("notice");
    label->setWordWrap(true);
    label->setForegroundRole(QPalette::PlaceholderText);
    QFont italic = label->font();
    italic.setItalic(true);
    label->setFont(italic);
    row->addWidget(label, 1);
    QPushButton* button = nullptr;
    if (!buttonText.isEmpty()) {
        button = new QPushButton(buttonText, box);
        row->addWidget(button);
    }
    layout_->insertWidget(layout_->count() - 1, box);
    notices_ << box;
    return button;
}

void ChatView::setBusy(bool busy) {
    busy_ = busy;
    updateButtons();
}

void ChatView::updateButtons() {
    MessageWidget* lastAssistant = nullptr;
    for (MessageWidget* m : messages_)
        if (m->role() == "assistant") lastAssistant = m;
    if (!messages_.isEmpty() && messages_.last() != lastAssistant) lastAssistant = nullptr; // the last reply only
    for (MessageWidget* m : messages_) {
        m->setCanRegenerate(!busy_ && m == lastAssistant && m != streaming_);
        m->setCanEdit(!busy_ && m->role() == "user" && m->messageId() != 0);
    }
}

} // namespace parley::ui
