#pragma once
// Where the user writes: Enter sends, Shift+Enter starts a new line. The Send button becomes Stop
// while a reply is written. Editing an earlier message puts its text here; sending then replaces
// that message and what followed it.
#include <QPlainTextEdit>
#include <QWidget>

class QLabel;
class QPushButton;

namespace parley::ui {

class PromptEdit : public QPlainTextEdit {
    Q_OBJECT
public:
    using QPlainTextEdit::QPlainTextEdit;
signals:
    void submitted();

protected:
    void keyPressEvent(QKeyEvent* event) override;
};

class Composer : public QWidget {
    Q_OBJECT
public:
    explicit Composer(QWidget* parent = nullptr);

    void setBusy(bool busy);
    bool isBusy() const { return busy_; }
    void beginEdit(qint64 messageId, const QString& text);
    void cancelEdit();
    // After a message went out: the field empties and an edit ends.
    void clearAfterSend();
    bool isEditing() const { return editingId_ != 0; }
    PromptEdit* editor() const { return edit_; }
    QPushButton* sendButton() const { return send_; }
    QPushButton* regenerateButton() const { return regenerate_; }
    void setCanRegenerate(bool can);

signals:
    void sendRequested(const QString& text);
    void editResendRequested(qint64 messageId, const QString& text);
    void stopRequested();
    void regenerateRequested();

private:
    void submit();

    PromptEdit* edit_;
    QPushButton* send_;
    QPushButton* regenerate_;
    QLabel* editBanner_;
    QPushButton* cancelEdit_;
    bool busy_ = false;
    bool canRegenerate_ = false;
    qint64 editingId_ = 0;
};

} // namespace parley::ui
