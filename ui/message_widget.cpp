#include "ui/message_widget.h"

#include <QApplication>
#include <QClipboard>
#include <QFontDatabase>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QScrollBar>
#include <QTimer>
#include <QToolButton>
#include <QVBoxLayout>

namespace parley::ui {

using parley::app::MessageStatus;

namespace {
void flashCopied(QToolButton* button) {
    const QString label = button->text();
    if (label == QObject::tr("Copied")) return;
    button->setText(QObject::tr("Copied"));
    QTimer::singleShot(1200, button, [button, label] { button->setText(label); });
}

QLabel* makeProseLabel(QWidget* parent, Qt::TextFormat format) {
    auto* label = new QLabel(parent);
    label->setTextFormat(format);
    label->setWordWrap(true);
    label->setOpenExternalLinks(true);
    label->setTextInteractionFlags(Qt::TextBrowserInteraction);
    label->setSizePolicy(QSizePolicy::Preferred, QSizePolicy::Minimum);
    return label;
}
} // namespace

CodeBlockWidget::CodeBlockWidget(QWidget* parent) : QFrame(parent) {
    setObjectName("codeBlock");
    setFrameShape(QFrame::StyledPanel);
    setBackgroundRole(QPalette::AlternateBase);
    setAutoFillBackground(true);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 4, 6, 6);
    layout->setSpacing(2);
    auto* header = new QHBoxLayout;
    language_ = new QLabel(this);
    language_->setForegroundRole(QPalette::PlaceholderText);
    copy_ = new QToolButton(this);
    copy_->setObjectName("copyCodeButton");
    copy_->setText(tr("Copy code"));
    copy_->setToolTip(tr("Copy this code block to the clipboard"));
    copy_->setAutoRaise(true);
    header->addWidget(language_);
    header->addStretch(1);
    header->addWidget(copy_);
    layout->addLayout(header);
    view_ = new QPlainTextEdit(this);
    view_->setReadOnly(true);
    view_->setFrameShape(QFrame::NoFrame);
    view_->setLineWrapMode(QPlainTextEdit::NoWrap);
    view_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
    view_->setVerticalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    view_->setBackgroundRole(QPalette::AlternateBase);
    view_->setTextInteractionFlags(Qt::TextSelectableByMouse | Qt::TextSelectableByKeyboard);
    layout->addWidget(view_);
    connect(copy_, &QToolButton::clicked, this, [this] {
        QApplication::clipboard()->setText(code_);
        flashCopied(copy_);
    });
}

void CodeBlockWidget::setCode(const QString& code, const QString& language) {
    language_->setText(language.isEmpty() ? tr("code") : language);
    if (code == code_) return;
    // A streaming block grows at its end: append instead of resetting the document.
    if (!code_.isEmpty() && code.startsWith(code_)) {
        QTextCursor c(view_->document());
        c.movePosition(QTextCursor::End);
        c.insertText(code.mid(code_.size()));
    } else {
        view_->setPlainText(code);
    }
    code_ = code;
    fitHeight();
}

void CodeBlockWidget::fitHeight() {
    const int lines = std::max<qsizetype>(1, code_.count('\n') + 1);
    const int scrollbar = view_->horizontalScrollBar()->isVisible() ? view_->horizontalScrollBar()->sizeHint().height() : 0;
    const int margins = int(view_->document()->documentMargin() * 2) + view_->contentsMargins().top() + view_->contentsMargins().bottom();
    view_->setFixedHeight(lines * view_->fontMetrics().lineSpacing() + margins + scrollbar + 2);
}

MessageWidget::MessageWidget(const QString& role, QWidget* parent) : QFrame(parent), role_(role) {
    setObjectName(role == "user" ? "userMessage" : "assistantMessage");
    setFrameShape(QFrame::NoFrame);
    setAutoFillBackground(true);
    // Colours come from the palette, so light and dark themes both work.
    setBackgroundRole(role == "user" ? QPalette::AlternateBase : QPalette::Base);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(14, 8, 14, 10);
    layout->setSpacing(4);

    auto* header = new QHBoxLayout;
    auto* who = new QLabel(role == "user" ? tr("You") : role == "assistant" ? tr("Assistant") : tr("System"), this);
    QFont bold = who->font();
    bold.setBold(true);
    who->setFont(bold);
    statusLabel_ = new QLabel(this);
    statusLabel_->setObjectName("statusLabel");
    statusLabel_->setForegroundRole(QPalette::PlaceholderText);
    auto makeButton = [this](const QString& text, const QString& tip, const char* name) {
        auto* b = new QToolButton(this);
        b->setText(text);
        b->setToolTip(tip);
        b->setObjectName(name);
        b->setAutoRaise(true);
        return b;
    };
    copy_ = makeButton(tr("Copy"), tr("Copy this message"), "copyMessageButton");
    edit_ = makeButton(tr("Edit"), tr("Edit this message and send it again"), "editMessageButton");
    regenerate_ = makeButton(tr("Regenerate"), tr("Write this reply again"), "regenerateButton");
    edit_->setVisible(false);
    regenerate_->setVisible(false);
    header->addWidget(who);
    header->addWidget(statusLabel_);
    header->addStretch(1);
    header->addWidget(edit_);
    header->addWidget(regenerate_);
    header->addWidget(copy_);
    layout->addLayout(header);
    body_ = new QVBoxLayout;
    body_->setSpacing(6);
    layout->addLayout(body_);

    connect(copy_, &QToolButton::clicked, this, [this] {
        QApplication::clipboard()->setText(text_);
        flashCopied(copy_);
    });
    connect(edit_, &QToolButton::clicked, this, [this] { emit editRequested(messageId_, text_); });
    connect(regenerate_, &QToolButton::clicked, this, &MessageWidget::regenerateRequested);
}

void MessageWidget::setContent(const QString& text, MessageStatus status) {
    status_ = status;
    updateStatusLabel();
    if (text == text_ && !blockWidgets_.isEmpty()) return;
    text_ = text;
    // The user's own words are shown as typed; the model's as Markdown.
    const QList<MarkdownBlock> blocks = role_ == "assistant" ? splitMarkdownBlocks(text)
                                                             : QList<MarkdownBlock>{{MarkdownBlock::Kind::Prose, text, {}, true}};
    int i = 0;
    for (; i < blocks.size(); ++i) {
        const MarkdownBlock& b = blocks[i];
        if (i < blockWidgets_.size() && blocks_[i].kind == b.kind) {
            if (blocks_[i] == b) continue; // unchanged: not touched
        } else {
            while (blockWidgets_.size() > i) delete blockWidgets_.takeLast();
            blocks_.resize(i);
            QWidget* w = b.kind == MarkdownBlock::Kind::Code
                             ? static_cast<QWidget*>(new CodeBlockWidget(this))
                             : makeProseLabel(this, role_ == "assistant" ? Qt::MarkdownText : Qt::PlainText);
            body_->addWidget(w);
            blockWidgets_ << w;
            blocks_ << MarkdownBlock{};
        }
        if (b.kind == MarkdownBlock::Kind::Code) static_cast<CodeBlockWidget*>(blockWidgets_[i])->setCode(b.text, b.language);
        else static_cast<QLabel*>(blockWidgets_[i])->setText(b.text);
        blocks_[i] = b;
        ++renderCount_;
    }
    while (blockWidgets_.size() > i) delete blockWidgets_.takeLast();
    blocks_.resize(i);
}

void MessageWidget::setStreaming(bool streaming) {
    streaming_ = streaming;
    copy_->setEnabled(!streaming);
    updateStatusLabel();
}

void MessageWidget::setCanRegenerate(bool can) { regenerate_->setVisible(can); }
void MessageWidget::setCanEdit(bool can) { edit_->setVisible(can); }

void MessageWidget::updateStatusLabel() {
    QString s;
    if (streaming_) s = tr("writing…");
    else if (status_ == MessageStatus::Stopped) s = tr("stopped");
    else if (status_ == MessageStatus::Interrupted) s = tr("interrupted — Parley was closed while writing this");
    else if (status_ == MessageStatus::Failed) s = tr("failed");
    else if (status_ == MessageStatus::Streaming) s = tr("writing…");
    statusLabel_->setText(s);
}

QList<CodeBlockWidget*> MessageWidget::codeBlocks() const {
    QList<CodeBlockWidget*> out;
    for (QWidget* w : blockWidgets_)
        if (auto* c = qobject_cast<CodeBlockWidget*>(w)) out << c;
    return out;
}

} // namespace parley::ui
