#pragma once
// The left side of the window: a search field over all messages (FTS5 through the store), a
// New chat button and the conversations, most recent first. Rename in place (F2 or double-click),
// delete after a confirmation, export from the context menu.
#include <QWidget>

class QLineEdit;
class QListWidget;
class QListWidgetItem;
class QPushButton;

namespace parley::app {
class ConversationStore;
}

namespace parley::ui {

class ConversationList : public QWidget {
    Q_OBJECT
public:
    explicit ConversationList(parley::app::ConversationStore& store, QWidget* parent = nullptr);

    void setCurrent(qint64 conversationId);
    void focusSearch();
    void refresh();
    // Starts renaming in place; asks before deleting (tests answer the dialog).
    void startRename(qint64 conversationId);
    void confirmDelete(qint64 conversationId);

    QLineEdit* searchField() const { return search_; }
    QListWidget* list() const { return list_; }
    QPushButton* newButton() const { return new_; }
    // The conversation ids shown, in order (for search results: the conversations of the hits).
    QList<qint64> shownIds() const;

signals:
    void conversationActivated(qint64 id);
    void newRequested();
    void renameRequested(qint64 id, const QString& title);
    void deleteRequested(qint64 id);
    void exportRequested(qint64 id, const QString& format); // "md" or "json"

private:
    void showContextMenu(const QPoint& pos);
    QListWidgetItem* itemFor(qint64 id) const;

    parley::app::ConversationStore& store_;
    QLineEdit* search_;
    QListWidget* list_;
    QPushButton* new_;
    qint64 current_ = 0;
    bool filling_ = false;
};

} // namespace parley::ui
