#pragma once
// The chat's logic between the window and the engine (DESIGN.md §1): stores what the user types,
// asks the worker for a reply built from the conversation, streams the reply into the database
// (StreamingReply) and tells the view what changed. Widgets talk only to this, never to the
// engine or the database directly. Lives on the GUI thread.
#include "app/conversation_store.h"
#include "app/engine_worker.h"

#include <QObject>
#include <QStringList>
#include <QTimer>

#include <memory>

namespace parley::app {

class Settings;
class StreamingReply;

class ChatController : public QObject {
    Q_OBJECT
public:
    ChatController(ConversationStore& store, Settings& settings, EngineWorker& worker, QObject* parent = nullptr);
    ~ChatController() override;

    ConversationStore& store() { return store_; }
    Settings& settings() { return settings_; }

    bool hasModel() const { return hasModel_; }
    bool isLoadingModel() const { return loading_; }
    bool isGenerating() const { return bool(reply_); }
    const LoadedModel& model() const { return model_; }
    const GenerationStats& lastStats() const { return lastStats_; }
    qint64 currentConversationId() const { return currentId_; }
    std::optional<Conversation> currentConversation() const;
    // The reply streaming now: its conversation and the text so far.
    qint64 streamingConversationId() const;
    QString streamingText() const;
    // Milliseconds between a batch of reply text arriving and it being written (at most).
    static constexpr int kReplyFlushMs = 200;

public slots:
    // Loads the model to start with (the last one used, else the default), or says none is installed.
    void start();
    void loadModel(const QString& path);
    // Sends a user message in the current conversation (a new one is created for the first
    // message) and asks for a reply. False (and error()) when nothing can answer or a reply runs.
    bool send(const QString& text);
    void stop();
    // Replaces the last reply of the current conversation with a new one.
    bool regenerate();
    // Replaces an earlier user message and everything after it, then asks for a new reply.
    bool editAndResend(qint64 messageId, const QString& text);
    void newConversation();
    void openConversation(qint64 id);
    bool renameConversation(qint64 id, const QString& title);
    bool deleteConversation(qint64 id);
    // Saves the current conversation's system prompt and sampling settings.
    bool setCurrentConversationSettings(const QString& systemPrompt, const SamplingSettings& sampling);
    // After the settings dialog: a changed precision/backend/context reloads the model.
    void applyModelSettings(const ModelSettings& before);

signals:
    void conversationOpened(qint64 id, const QList<parley::app::Message>& messages); // id 0: a new, empty chat
    void messageAdded(const parley::app::Message& message);                           // a user message
    void replyStarted(qint64 conversationId);
    void replyPiece(qint64 conversationId, const QString& piece);
    void replyFinished(qint64 conversationId, const parley::app::Message& message);
    void busyChanged(bool generating);
    void modelLoading(double progress, const QString& stage);
    void modelChanged(const parley::app::LoadedModel& model);
    void statsChanged(const parley::app::GenerationStats& stats);
    void notice(const QString& text);       // welcome line, information
    void error(const QString& text);        // something the user must know went wrong
    void noModelInstalled(const QString& modelsDir);

private:
    void onModelLoaded(const LoadedModel& info);
    void onLoadFailed(const QString& message);
    void onToken(const QString& piece);
    void onFinished(const GenerationStats& stats);
    bool startReply();
    QList<ChatTurn> turnsFor(qint64 conversationId) const;

    ConversationStore& store_;
    Settings& settings_;
    EngineWorker& worker_;
    qint64 currentId_ = 0;
    bool hasModel_ = false;
    bool loading_ = false;
    bool welcomed_ = false;
    LoadedModel model_;
    GenerationStats lastStats_;
    std::unique_ptr<StreamingReply> reply_;
    // The worker answers in the order it was asked: the loads ('L') and generations ('G') still
    // owed an answer, oldest first. It tells a load's failed() from a generation's.
    QList<char> pendingJobs_;
    QTimer flushTimer_;
};

} // namespace parley::app
