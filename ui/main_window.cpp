#include "ui/main_window.h"

#include "app/chat_controller.h"
#include "app/model_manager.h"
#include "app/paths.h"
#include "app/settings.h"
#include "ui/app_icon.h"
#include "ui/chat_view.h"
#include "ui/composer.h"
#include "ui/conversation_list.h"
#include "ui/message_widget.h"
#include "ui/settings_dialog.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QRegularExpression>
#include <QMessageBox>
#include <QMimeData>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QStatusBar>
#include <QVBoxLayout>

namespace parley::ui {

using parley::app::ChatController;
using parley::app::GenerationStats;
using parley::app::LoadedModel;
using parley::app::Message;
using parley::app::ModelManager;

MainWindow::MainWindow(ChatController& controller, QWidget* parent) : QMainWindow(parent), controller_(controller) {
    setObjectName("mainWindow");
    setWindowIcon(appIcon());
    setAcceptDrops(true);

    auto* splitter = new QSplitter(this);
    list_ = new ConversationList(controller_.store(), splitter);
    auto* centre = new QWidget(splitter);
    auto* column = new QVBoxLayout(centre);
    column->setContentsMargins(0, 0, 0, 0);
    column->setSpacing(0);
    chat_ = new ChatView(centre);
    composer_ = new Composer(centre);
    column->addWidget(chat_, 1);
    column->addWidget(composer_);
    splitter->addWidget(list_);
    splitter->addWidget(centre);
    splitter->setStretchFactor(0, 0);
    splitter->setStretchFactor(1, 1);
    splitter->setSizes({240, 760});
    setCentralWidget(splitter);

    buildMenus();
    buildStatusBar();
    connectController();

    const QByteArray geometry = controller_.settings().windowGeometry();
    if (geometry.isEmpty() || !restoreGeometry(geometry)) resize(1000, 700);
    updateTitle();
    composer_->editor()->setFocus();
}

MainWindow::~MainWindow() = default;

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    QAction* newChat = file->addAction(tr("&New chat"), &controller_, &ChatController::newConversation);
    newChat->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_N));
    file->addAction(tr("&Open model…"), QKeySequence(Qt::CTRL | Qt::Key_O), this, &MainWindow::openModelFile);
    file->addAction(tr("Open model &folder…"), this, &MainWindow::openModelFolder);
    file->addSeparator();
    file->addAction(tr("&Import conversation…"), this, &MainWindow::importConversation);
    file->addAction(tr("Export as &Markdown…"), this, [this] { exportConversation(controller_.currentConversationId(), "md"); });
    file->addAction(tr("Export as &JSON…"), this, [this] { exportConversation(controller_.currentConversationId(), "json"); });
    file->addSeparator();
    file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

    QMenu* edit = menuBar()->addMenu(tr("&Edit"));
    edit->addAction(tr("&Search conversations"), QKeySequence(Qt::CTRL | Qt::Key_F), list_, &ConversationList::focusSearch);
    QAction* settings = edit->addAction(tr("Se&ttings…"), this, &MainWindow::showSettings);
    settings->setShortcut(QKeySequence(Qt::CTRL | Qt::Key_Comma));
    settings->setMenuRole(QAction::PreferencesRole);

    QMenu* chat = menuBar()->addMenu(tr("&Chat"));
    stop_ = chat->addAction(tr("&Stop"), QKeySequence(Qt::Key_Escape), this, &MainWindow::escape);
    regenerate_ = chat->addAction(tr("&Regenerate"), QKeySequence(Qt::CTRL | Qt::Key_R), &controller_, &ChatController::regenerate);
    chat->addSeparator();
    chat->addAction(tr("Re&name"), QKeySequence(Qt::Key_F2), this, [this] {
        if (controller_.currentConversationId()) list_->startRename(controller_.currentConversationId());
    });
    chat->addAction(tr("&Delete…"), this, [this] {
        if (controller_.currentConversationId()) list_->confirmDelete(controller_.currentConversationId());
    });

    QMenu* help = menuBar()->addMenu(tr("&Help"));
    help->addAction(tr("&About Parley"), this, [this] {
        QMessageBox::about(this, tr("About Parley"),
                           tr("<b>Parley %1</b><p>Chat with a language model that runs on your own computer.</p>"
                              "<p>Conversations: %2<br>Models: %3</p>")
                               .arg(QApplication::applicationVersion(), controller_.store().path().toHtmlEscaped(),
                                    parley::app::modelsDir().toHtmlEscaped()));
    });
}

void MainWindow::buildStatusBar() {
    modelLabel_ = new QLabel(tr("No model"), this);
    modelLabel_->setObjectName("modelStatus");
    speedLabel_ = new QLabel(this);
    speedLabel_->setObjectName("speedStatus");
    ttftLabel_ = new QLabel(this);
    ttftLabel_->setObjectName("ttftStatus");
    contextLabel_ = new QLabel(this);
    contextLabel_->setObjectName("contextStatus");
    loadProgress_ = new QProgressBar(this);
    loadProgress_->setRange(0, 100);
    loadProgress_->setMaximumWidth(260);
    loadProgress_->setTextVisible(true);
    loadProgress_->hide();
    statusBar()->addPermanentWidget(modelLabel_, 1); // permanent: passing messages do not hide it
    statusBar()->addPermanentWidget(loadProgress_);
    statusBar()->addPermanentWidget(speedLabel_);
    statusBar()->addPermanentWidget(ttftLabel_);
    statusBar()->addPermanentWidget(contextLabel_);
}

void MainWindow::connectController() {
    ChatController* c = &controller_;
    connect(c, &ChatController::conversationOpened, this, [this](qint64 id, const QList<Message>& messages) {
        chat_->showConversation(messages);
        // A reply still streaming into this conversation (it was opened again) shows from here on.
        if (controller_.isGenerating() && controller_.streamingConversationId() == id && id) {
            chat_->beginReply();
            chat_->appendReply(controller_.streamingText());
        }
        list_->setCurrent(id);
        composer_->cancelEdit();
        updateTitle();
        updateRegenerate();
    });
    connect(c, &ChatController::messageAdded, this, [this](const Message& m) {
        if (m.conversationId == controller_.currentConversationId()) chat_->addMessage(m);
        updateTitle();
    });
    connect(c, &ChatController::replyStarted, this, [this](qint64 id) {
        if (id == controller_.currentConversationId()) chat_->beginReply();
    });
    connect(c, &ChatController::replyPiece, this, [this](qint64 id, const QString& piece) {
        if (id == controller_.currentConversationId()) chat_->appendReply(piece);
    });
    connect(c, &ChatController::replyFinished, this, [this](qint64 id, const Message& m) {
        if (id == controller_.currentConversationId()) chat_->finishReply(m);
        updateRegenerate();
    });
    connect(c, &ChatController::busyChanged, this, [this](bool busy) {
        composer_->setBusy(busy);
        chat_->setBusy(busy);
        updateRegenerate();
        if (busy) speedLabel_->setText(tr("writing…"));
    });
    connect(c, &ChatController::modelLoading, this, [this](double progress, const QString& stage) {
        loadProgress_->setVisible(progress < 1.0);
        loadProgress_->setValue(int(progress * 100));
        loadProgress_->setFormat(stage);
        loadProgress_->setToolTip(stage);
    });
    connect(c, &ChatController::modelChanged, this, &MainWindow::showModel);
    connect(c, &ChatController::statsChanged, this, &MainWindow::showStats);
    connect(c, &ChatController::notice, this, [this](const QString& text) { chat_->addNotice(text); });
    connect(c, &ChatController::error, this, [this](const QString& text) {
        loadProgress_->hide();
        chat_->addNotice("⚠ " + text);
    });
    connect(c, &ChatController::noModelInstalled, this, [this](const QString& dir) {
        QPushButton* open = chat_->addNotice(
            tr("No model is installed yet. Open a GGUF file or a Hugging Face model folder with File → Open model…, "
               "or drop it onto this window. Models placed in %1 are found at start.").arg(dir),
            tr("Open model…"));
        connect(open, &QPushButton::clicked, this, &MainWindow::openModelFile);
    });

    connect(composer_, &Composer::sendRequested, this, [this](const QString& text) {
        if (controller_.send(text)) composer_->clearAfterSend();
    });
    connect(composer_, &Composer::editResendRequested, this, [this](qint64 id, const QString& text) {
        if (controller_.editAndResend(id, text)) composer_->clearAfterSend();
    });
    connect(composer_, &Composer::stopRequested, c, &ChatController::stop);
    connect(composer_, &Composer::regenerateRequested, c, &ChatController::regenerate);
    connect(chat_, &ChatView::editRequested, composer_, &Composer::beginEdit);
    connect(chat_, &ChatView::regenerateRequested, c, &ChatController::regenerate);

    connect(list_, &ConversationList::conversationActivated, c, &ChatController::openConversation);
    connect(list_, &ConversationList::newRequested, c, &ChatController::newConversation);
    connect(list_, &ConversationList::renameRequested, c, &ChatController::renameConversation);
    connect(list_, &ConversationList::deleteRequested, c, &ChatController::deleteConversation);
    connect(list_, &ConversationList::exportRequested, this, &MainWindow::exportConversation);
    connect(&controller_.store(), &parley::app::ConversationStore::conversationsChanged, this, &MainWindow::updateTitle);
}

void MainWindow::showModel(const LoadedModel& m) {
    loadProgress_->hide();
    modelLabel_->setText(tr("%1 · %2 · %3").arg(ModelManager::displayName(m.path), m.precision, m.device));
    modelLabel_->setToolTip(tr("%1 (%2)\n%3\n%4: %5\nContext %6 tokens, loaded in %7 s")
                                .arg(m.name, m.architecture, m.path, m.precision, m.reason)
                                .arg(m.contextSize)
                                .arg(m.loadSeconds, 0, 'f', 1));
    contextLabel_->setText(tr("context 0 / %1").arg(m.contextSize));
    speedLabel_->clear();
    ttftLabel_->clear();
}

void MainWindow::showStats(const GenerationStats& s) {
    speedLabel_->setText(tr("%1 tokens/s").arg(s.decodeTokensPerSecond, 0, 'f', 1));
    speedLabel_->setToolTip(tr("%1 tokens written; prompt %2 tokens (%3 reused) read at %4 tokens/s; stopped by %5")
                                .arg(s.generatedTokens)
                                .arg(s.promptTokens)
                                .arg(s.reusedTokens)
                                .arg(s.prefillTokensPerSecond, 0, 'f', 0)
                                .arg(s.stopReason));
    ttftLabel_->setText(tr("first token %1 ms").arg(s.ttftMs, 0, 'f', 0));
    contextLabel_->setText(tr("context %1 / %2").arg(s.contextUsed).arg(s.contextSize));
    if (s.droppedTurns > 0) statusBar()->showMessage(tr("%n old message(s) no longer fit the context and were left out", nullptr, s.droppedTurns), 8000);
}

void MainWindow::escape() {
    if (controller_.isGenerating()) controller_.stop();
    else if (composer_->isEditing()) composer_->cancelEdit();
    else if (list_->searchField()->hasFocus()) list_->searchField()->clear();
}

void MainWindow::updateTitle() {
    const auto c = controller_.currentConversation();
    setWindowTitle(c ? c->title : tr("New chat"));
}

void MainWindow::updateRegenerate() {
    const auto widgets = chat_->messageWidgets();
    const bool can = !controller_.isGenerating() && !widgets.isEmpty() && widgets.last()->role() == "assistant";
    composer_->setCanRegenerate(can);
    regenerate_->setEnabled(can);
}

void MainWindow::openModelFile() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Open model"), parley::app::modelsDir(),
                                                      tr("GGUF models (*.gguf);;All files (*)"));
    if (!path.isEmpty()) controller_.loadModel(path);
}

void MainWindow::openModelFolder() {
    const QString path = QFileDialog::getExistingDirectory(this, tr("Open a Hugging Face model folder"), parley::app::modelsDir());
    if (!path.isEmpty()) controller_.loadModel(path);
}

void MainWindow::showSettings() {
    SettingsDialog dialog(controller_.settings(),
                          controller_.currentConversation() ? std::optional(controller_.currentConversation()->settings)
                                                            : std::nullopt,
                          this);
    if (dialog.exec() != QDialog::Accepted) return;
    const parley::app::ModelSettings before = controller_.settings().model();
    dialog.saveTo(controller_.settings());
    if (dialog.hasConversation()) controller_.setCurrentConversationSettings(dialog.conversationSystemPrompt(), dialog.sampling());
    controller_.applyModelSettings(before);
}

void MainWindow::importConversation() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Import conversation"), QString(), tr("Parley conversations (*.json)"));
    if (path.isEmpty()) return;
    QFile f(path);
    if (!f.open(QIODevice::ReadOnly)) {
        statusBar()->showMessage(tr("Cannot read %1").arg(path), 8000);
        return;
    }
    const qint64 id = controller_.store().importJson(f.readAll());
    if (!id) chat_->addNotice("⚠ " + QFileInfo(path).fileName() + ": " + controller_.store().lastError());
    else controller_.openConversation(id);
}

void MainWindow::exportConversation(qint64 id, const QString& format) {
    const auto c = controller_.store().conversation(id);
    if (!c) return;
    QString name = c->title;
    name.replace(QRegularExpression(R"([/\\:*?"<>|])"), "_");
    const QString path = QFileDialog::getSaveFileName(this, tr("Export conversation"), name + "." + format,
                                                      format == "md" ? tr("Markdown (*.md)") : tr("JSON (*.json)"));
    if (path.isEmpty()) return;
    QFile f(path);
    const QByteArray bytes = format == "md" ? controller_.store().exportMarkdown(id).toUtf8() : controller_.store().exportJson(id);
    if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate) || f.write(bytes) != bytes.size())
        statusBar()->showMessage(tr("Cannot write %1").arg(path), 8000);
    else
        statusBar()->showMessage(tr("Exported to %1").arg(path), 5000);
}

void MainWindow::bringToFront() {
    if (isMinimized()) showNormal();
    show();
    raise();
    activateWindow();
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
    for (const QUrl& url : event->mimeData()->urls())
        if (url.isLocalFile() && ModelManager::looksLikeModel(url.toLocalFile())) {
            event->acceptProposedAction();
            return;
        }
}

void MainWindow::dropEvent(QDropEvent* event) {
    for (const QUrl& url : event->mimeData()->urls())
        if (url.isLocalFile() && ModelManager::looksLikeModel(url.toLocalFile())) {
            controller_.loadModel(url.toLocalFile()); // the engine validates it; a bad file keeps the current model
            event->acceptProposedAction();
            return;
        }
}

void MainWindow::closeEvent(QCloseEvent* event) {
    controller_.settings().setWindowGeometry(saveGeometry());
    controller_.settings().sync();
    QMainWindow::closeEvent(event);
}

} // namespace parley::ui
