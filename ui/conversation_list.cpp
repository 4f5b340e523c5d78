#include "ui/conversation_list.h"

#include "app/conversation_store.h"

#include <QAction>
#include <QHBoxLayout>
#include <QLineEdit>
#include <QListWidget>
#include <QMenu>
#include <QMessageBox>
#include <QPushButton>
#include <QVBoxLayout>

namespace parley::ui {

namespace {
constexpr int kIdRole = Qt::UserRole + 1;
constexpr int kTitleRole = Qt::UserRole + 2;
}

ConversationList::ConversationList(parley::app::ConversationStore& store, QWidget* parent)
    : QWidget(parent), store_(store) {
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(6, 6, 0, 6);
    search_ = new QLineEdit(this);
    search_->setObjectName("searchField");
    search_->setPlaceholderText(tr("Search all messages (Ctrl+F)"));
    search_->setClearButtonEnabled(true);
    new_ = new QPushButton(tr("New chat"), this);
    new_->setObjectName("newChatButton");
    new_->setToolTip(tr("Start a new conversation (Ctrl+N)"));
    list_ = new QListWidget(this);
    list_->setObjectName("conversationList");
    list_->setContextMenuPolicy(Qt::CustomContextMenu);
    list_->setEditTriggers(QAbstractItemView::EditKeyPressed | QAbstractItemView::DoubleClicked);
    list_->setWordWrap(true);
    list_->setTextElideMode(Qt::ElideRight);
    layout->addWidget(search_);
    layout->addWidget(new_);
    layout->addWidget(list_, 1);

    connect(search_, &QLineEdit::textChanged, this, &ConversationList::refresh);
    connect(new_, &QPushButton::clicked, this, &ConversationList::newRequested);
    connect(&store_, &parley::app::ConversationStore::conversationsChanged, this, &ConversationList::refresh);
    connect(list_, &QListWidget::currentItemChanged, this, [this](QListWidgetItem* item) {
        if (filling_ || !item) return;
        const qint64 id = item->data(kIdRole).toLongLong();
        if (id != current_) {
            current_ = id;
            emit conversationActivated(id);
        }
    });
    connect(list_, &QListWidget::itemChanged, this, [this](QListWidgetItem* item) {
        if (filling_) return;
        const QString title = item->text().simplified();
        if (!title.isEmpty() && title != item->data(kTitleRole).toString())
            emit renameRequested(item->data(kIdRole).toLongLong(), title);
    });
    connect(list_, &QListWidget::customContextMenuRequested, this, &ConversationList::showContextMenu);
    auto* remove = new QAction(tr("Delete"), list_);
    remove->setShortcut(QKeySequence::Delete);
    remove->setShortcutContext(Qt::WidgetShortcut);
    connect(remove, &QAction::triggered, this, [this] {
        if (auto* item = list_->currentItem()) confirmDelete(item->data(kIdRole).toLongLong());
    });
    list_->addAction(remove);
    refresh();
}

QList<qint64> ConversationList::shownIds() const {
    QList<qint64> ids;
    for (int i = 0; i < list_->count(); ++i) ids << list_->item(i)->data(kIdRole).toLongLong();
    return ids;
}

QListWidgetItem* ConversationList::itemFor(qint64 id) const {
    for (int i = 0; i < list_->count(); ++i)
        if (list_->item(i)->data(kIdRole).toLongLong() == id) return list_->item(i);
    return nullptr;
}

void ConversationList::refresh() {
    filling_ = true;
    list_->clear();
    const QString query = search_->text().trimmed();
    if (query.isEmpty()) {
        for (const auto& c : store_.conversations()) {
            auto* item = new QListWidgetItem(c.title, list_);
            item->setData(kIdRole, c.id);
            item->setData(kTitleRole, c.title);
            item->setToolTip(tr("%1\nLast message %2").arg(c.title, c.updatedAt.toLocalTime().toString("yyyy-MM-dd hh:mm")));
            item->setFlags(item->flags() | Qt::ItemIsEditable);
        }
    } else {
        // One row per conversation, with its best-ranked snippet.
        QList<qint64> seen;
        for (const auto& hit : store_.search(query)) {
            if (seen.contains(hit.conversationId)) continue;
            seen << hit.conversationId;
            auto* item = new QListWidgetItem(hit.conversationTitle + "\n" + hit.snippet, list_);
            item->setData(kIdRole, hit.conversationId);
            item->setData(kTitleRole, hit.conversationTitle);
            item->setToolTip(hit.snippet);
        }
        if (seen.isEmpty()) {
            auto* item = new QListWidgetItem(tr("No message matches “%1”").arg(query), list_);
            item->setFlags(Qt::NoItemFlags);
            item->setData(kIdRole, 0);
        }
    }
    if (auto* item = itemFor(current_)) list_->setCurrentItem(item);
    filling_ = false;
}

void ConversationList::setCurrent(qint64 id) {
    current_ = id;
    filling_ = true;
    if (auto* item = itemFor(id)) list_->setCurrentItem(item);
    else list_->clearSelection(), list_->setCurrentItem(nullptr);
    filling_ = false;
}

void ConversationList::focusSearch() {
    search_->setFocus();
    search_->selectAll();
}

void ConversationList::startRename(qint64 id) {
    if (!search_->text().isEmpty()) search_->clear();
    if (auto* item = itemFor(id)) {
        list_->setCurrentItem(item);
        list_->editItem(item);
    }
}

void ConversationList::confirmDelete(qint64 id) {
    const auto c = store_.conversation(id);
    if (!c) return;
    QMessageBox box(QMessageBox::Question, tr("Delete conversation"),
                    tr("Delete “%1” and all its messages? This cannot be undone.").arg(c->title),
                    QMessageBox::Yes | QMessageBox::Cancel, window());
    box.setObjectName("confirmDelete");
    box.setDefaultButton(QMessageBox::Cancel);
    if (box.exec() == QMessageBox::Yes) emit deleteRequested(id);
}

void ConversationList::showContextMenu(const QPoint& pos) {
    QListWidgetItem* item = list_->itemAt(pos);
    if (!item || !item->data(kIdRole).toLongLong()) return;
    const qint64 id = item->data(kIdRole).toLongLong();
    QMenu menu(this);
    menu.addAction(tr("Rename"), this, [this, id] { startRename(id); });
    menu.addAction(tr("Export as Markdown…"), this, [this, id] { emit exportRequested(id, "md"); });
    menu.addAction(tr("Export as JSON…"), this, [this, id] { emit exportRequested(id, "json"); });
    menu.addSeparator();
    menu.addAction(tr("Delete…"), this, [this, id] { confirmDelete(id); });
    menu.exec(list_->viewport()->mapToGlobal(pos));
}

} // namespace parley::ui
