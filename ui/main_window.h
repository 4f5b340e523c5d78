#pragma once
// Parley's window (issue 4): conversations on the left, the chat in the centre, the composer
// below it, the model and the last reply's speed in the status bar. Everything goes through the
// ChatController; the window holds no chat state of its own.
#include <QMainWindow>

class QAction;
class QLabel;
class QProgressBar;

namespace parley::app {
class ChatController;
struct GenerationStats;
struct LoadedModel;
} // namespace parley::app

namespace parley::ui {

class ChatView;
class Composer;
class ConversationList;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    explicit MainWindow(parley::app::ChatController& controller, QWidget* parent = nullptr);
    ~MainWindow() override;

    ChatView* chatView() const { return chat_; }
    Composer* composer() const { return composer_; }
    ConversationList* conversationList() const { return list_; }
    QLabel* modelStatus() const { return modelLabel_; }
    QLabel* speedStatus() const { return speedLabel_; }
    QLabel* contextStatus() const { return contextLabel_; }
    QAction* stopAction() const { return stop_; }

public slots:
    void openModelFile();
    void openModelFolder();
    void showSettings();
    void importConversation();
    void exportConversation(qint64 id, const QString& format);
    void bringToFront();

protected:
    void dragEnterEvent(QDragEnterEvent* event) override;
    void dropEvent(QDropEvent* event) override;
    void closeEvent(QCloseEvent* event) override;

private:
    void buildMenus();
    void buildStatusBar();
    void connectController();
    void updateTitle();
    void updateRegenerate();
    void showModel(const parley::app::LoadedModel& model);
    void showStats(const parley::app::GenerationStats& stats);
    void escape();

    parley::app::ChatController& controller_;
    ConversationList* list_;
    ChatView* chat_;
    Composer* composer_;
    QLabel* modelLabel_;
    QLabel* speedLabel_;
    QLabel* ttftLabel_;
    QLabel* contextLabel_;
    QProgressBar* loadProgress_;
    QAction* stop_ = nullptr;
    QAction* regenerate_ = nullptr;
};

} // namespace parley::ui
