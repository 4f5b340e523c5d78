#include "ui/composer.h"

#include <QHBoxLayout>
#include <QKeyEvent>
#include <QLabel>
#include <QPushButton>
#include <QTextDocument>
#include <QVBoxLayout>

#include <algorithm>

namespace parley::ui {

void PromptEdit::keyPressEvent(QKeyEvent* event) {
    const bool enter = event->key() == Qt::Key_Return || event->key() == Qt::Key_Enter;
    if (enter && !(event->modifiers() & Qt::ShiftModifier)) {
        emit submitted();
        return;
    }
    if (enter) { // Shift+Enter: a new line (a plain paragraph break, not a soft line separator)
        textCursor().insertText("\n");
        ensureCursorVisible();
        return;
    }
    QPlainTextEdit::keyPressEvent(event);
}

Composer::Composer(QWidget* parent) : QWidget(parent) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(8, 4, 8, 8);
    layout->setSpacing(4);
    auto* banner = new QHBoxLayout;
    editBanner_ = new QLabel(tr("Editing an earlier message: sending replaces it and everything after it."), this);
    editBanner_->setForegroundRole(QPalette::PlaceholderText);
    cancelEdit_ = new QPushButton(tr("Cancel edit"), this);
    banner->addWidget(editBanner_, 1);
    banner->addWidget(cancelEdit_);
    layout->addLayout(banner);
    editBanner_->hide();
    cancelEdit_->hide();

    auto* row = new QHBoxLayout;
    edit_ = new PromptEdit(this);
    edit_->setObjectName("prompt");
    edit_->setPlaceholderText(tr("Message Parley… (Enter sends, Shift+Enter adds a line)"));
    edit_->setTabChangesFocus(true);
    edit_->setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    // The field grows with what is typed, from two lines up to eight, then scrolls.
    auto fit = [this] {
        const int lines = std::clamp(int(edit_->document()->size().height()), 2, 8); // a plain text layout counts lines
        const QMargins m = edit_->contentsMargins();
        edit_->setFixedHeight(lines * edit_->fontMetrics().lineSpacing() + int(2 * edit_->document()->documentMargin()) +
                              m.top() + m.bottom() + 2);
    };
    connect(edit_->document(), &QTextDocument::contentsChanged, this, fit);
    fit();
    send_ = new QPushButton(tr("Send"), this);
    send_->setObjectName("sendButton");
    regenerate_ = new QPushButton(tr("Regenerate"), this);
    regenerate_->setObjectName("composerRegenerateButton");
    regenerate_->setEnabled(false);
    auto* buttons = new QVBoxLayout;
    buttons->addWidget(send_);
    buttons->addWidget(regenerate_);
    buttons->addStretch(1);
    row->addWidget(edit_, 1);
    row->addLayout(buttons);
    layout->addLayout(row);

    connect(edit_, &PromptEdit::submitted, this, &Composer::submit);
    connect(send_, &QPushButton::clicked, this, [this] {
        if (busy_) emit stopRequested();
        else submit();
    });
    connect(regenerate_, &QPushButton::clicked, this, &Composer::regenerateRequested);
    connect(cancelEdit_, &QPushButton::clicked, this, &Composer::cancelEdit);
}

void Composer::submit() {
    if (busy_) return; // Enter while a reply is written does nothing; Stop is the button
    const QString text = edit_->toPlainText().trimmed();
    if (text.isEmpty()) return;
    if (editingId_) emit editResendRequested(editingId_, text);
    else emit sendRequested(text);
}

void Composer::setBusy(bool busy) {
    busy_ = busy;
    send_->setText(busy ? tr("Stop") : tr("Send"));
    send_->setToolTip(busy ? tr("Stop the reply (Esc)") : tr("Send (Enter)"));
    regenerate_->setEnabled(!busy && canRegenerate_);
}

void Composer::setCanRegenerate(bool can) {
    canRegenerate_ = can;
    regenerate_->setEnabled(!busy_ && can);
}

void Composer::beginEdit(qint64 messageId, const QString& text) {
    editingId_ = messageId;
    edit_->setPlainText(text);
    edit_->moveCursor(QTextCursor::End);
    edit_->setFocus();
    editBanner_->show();
    cancelEdit_->show();
}

void Composer::cancelEdit() {
    if (editingId_) clearAfterSend();
}

} // namespace parley::ui

namespace parley::ui {
void Composer::clearAfterSend() {
    editingId_ = 0;
    edit_->clear();
    editBanner_->hide();
    cancelEdit_->hide();
}
} // namespace parley::ui
