#pragma once
// One message in the chat: a header (who, status, copy/edit/regenerate buttons) and the text.
// Assistant text is Markdown: prose blocks render through QLabel's Markdown support, fenced code
// blocks in a monospace box with their own copy button (CodeBlockWidget). setContent() updates
// only the blocks whose text changed, so a streaming reply repaints its last block, not itself
// whole and never the rest of the conversation.
#include "app/conversation_store.h"
#include "ui/markdown_blocks.h"

#include <QFrame>
#include <QList>

class QLabel;
class QPlainTextEdit;
class QToolButton;
class QVBoxLayout;

namespace parley::ui {

class CodeBlockWidget : public QFrame {
    Q_OBJECT
public:
    explicit CodeBlockWidget(QWidget* parent = nullptr);
    void setCode(const QString& code, const QString& language);
    QString code() const { return code_; }
    QToolButton* copyButton() const { return copy_; }

private:
    void fitHeight();
    QLabel* language_;
    QToolButton* copy_;
    QPlainTextEdit* view_;
    QString code_;
};

class MessageWidget : public QFrame {
    Q_OBJECT
public:
    MessageWidget(const QString& role, QWidget* parent = nullptr);

    void setContent(const QString& text, parley::app::MessageStatus status);
    void setMessageId(qint64 id) { messageId_ = id; }
    void setStreaming(bool streaming);
    void setCanRegenerate(bool can);
    void setCanEdit(bool can);

    qint64 messageId() const { return messageId_; }
    const QString& role() const { return role_; }
    const QString& text() const { return text_; }
    parley::app::MessageStatus status() const { return status_; }
    // How many times a block of this message was (re)rendered; tests check that history stays put.
    int renderCount() const { return renderCount_; }
    QList<CodeBlockWidget*> codeBlocks() const;
    QToolButton* copyButton() const { return copy_; }
    QToolButton* editButton() const { return edit_; }
    QToolButton* regenerateButton() const { return regenerate_; }

signals:
    void editRequested(qint64 messageId, const QString& text);
    void regenerateRequested();

private:
    void updateStatusLabel();

    QString role_;
    qint64 messageId_ = 0;
    QString text_;
    parley::app::MessageStatus status_ = parley::app::MessageStatus::Complete;
    bool streaming_ = false;
    int renderCount_ = 0;
    QLabel* statusLabel_;
    QToolButton* copy_;
    QToolButton* edit_;
    QToolButton* regenerate_;
    QVBoxLayout* body_;
    QList<MarkdownBlock> blocks_;
    QList<QWidget*> blockWidgets_;
};

} // namespace parley::ui
