#include "app/chat_controller.h"

#include "app/model_manager.h"
#include "app/paths.h"
#include "app/settings.h"
#include "app/streaming_reply.h"

#include <QFileInfo>

namespace parley::app {

namespace {
QString titleFrom(const QString& text) {
    QString line = text.trimmed().section('\n', 0, 0).simplified();
    if (line.size() > 48) line = line.left(47).trimmed() + "…";
    return line.isEmpty() ? QStringLiteral("New chat") : line;
}

QString parameterCount(qint64 n) {
    if (n >= 1'000'000'000) return QString::number(n / 1e9, 'f', 1) + "B";
    if (n >= 1'000'000) return QString::number(qRound64(n / 1e6)) + "M";
    return QString::number(n);
}
} // namespace

ChatController::ChatController(ConversationStore& store, Settings& settings, EngineWorker& worker, QObject* parent)
    : QObject(parent), store_(store), settings_(settings), worker_(worker) {
    connect(&worker_, &EngineWorker::modelLoading, this, &ChatController::modelLoading);
    connect(&worker_, &EngineWorker::modelLoaded, this, &ChatController::onModelLoaded);
    connect(&worker_, &EngineWorker::failed, this, &ChatController::onLoadFailed);
    connect(&worker_, &EngineWorker::tokenGenerated, this, &ChatController::onToken);
    connect(&worker_, &EngineWorker::generationFinished, this, &ChatController::onFinished);
    // Between pieces (a slow model, a long prefill) the pending text still reaches the disk.
    flushTimer_.setInterval(50);
    connect(&flushTimer_, &QTimer::timeout, this, [this] {
        if (reply_) reply_->flushIfDue();
    });
}

ChatController::~ChatController() {
    // The window is closing while a reply streams: keep what came, marked stopped.
    if (reply_) reply_->finish(MessageStatus::Stopped);
}

std::optional<Conversation> ChatController::currentConversation() const {
    return currentId_ ? store_.conversation(currentId_) : std::nullopt;
}

qint64 ChatController::streamingConversationId() const { return reply_ ? reply_->conversationId() : 0; }
QString ChatController::streamingText() const { return reply_ ? reply_->text() : QString(); }

void ChatController::start() {
    if (store_.recoveredReplies() > 0)
        emit notice(tr("%n reply(s) were cut off when Parley last stopped; they are marked interrupted.", nullptr,
                       store_.recoveredReplies()));
    const ModelManager models(modelsDir());
    const QString path = models.startupModel(settings_.lastModelPath());
    if (path.isEmpty()) {
        emit noModelInstalled(models.modelsDir());
        return;
    }
    loadModel(path);
}

void ChatController::loadModel(const QString& path) {
    loading_ = true;
    pendingJobs_ << 'L';
    worker_.loadModel({path, settings_.model()}); // stops a running reply first
}

void ChatController::onModelLoaded(const LoadedModel& info) {
    if (!pendingJobs_.isEmpty()) pendingJobs_.removeFirst();
    loading_ = pendingJobs_.contains('L');
    const bool first = !hasModel_;
    hasModel_ = true;
    model_ = info;
    settings_.setLastModelPath(info.path);
    emit modelChanged(info);
    const QString what = tr("%1 (%2 parameters, %3 on %4, context %5 tokens)")
                             .arg(ModelManager::displayName(info.path), parameterCount(info.parameters), info.precision, info.device)
                             .arg(info.contextSize);
    if (first && !welcomed_) {
        welcomed_ = true;
        emit notice(tr("Welcome to Parley. %1 is ready — type a message below.").arg(what));
    } else {
        emit notice(tr("Switched to %1.").arg(what));
    }
}

void ChatController::onLoadFailed(const QString& message) {
    // The worker reports a failed generation with failed() and then generationFinished(); those
    // are handled in onFinished. Here only load failures: the oldest job owed an answer is a load.
    if (pendingJobs_.isEmpty() || pendingJobs_.first() != 'L') return;
    pendingJobs_.removeFirst();
    loading_ = pendingJobs_.contains('L');
    emit error(hasModel_ ? message + tr(" — still using %1.").arg(ModelManager::displayName(model_.path)) : message);
}

bool ChatController::send(const QString& rawText) {
    const QString text = rawText.trimmed();
    if (text.isEmpty()) return false;
    if (reply_) {
        emit error(tr("A reply is still being written — stop it first."));
        return false;
    }
    if (!hasModel_ && !loading_) {
        emit error(tr("No model is loaded. Open one with File → Open model…"));
        return false;
    }
    if (!currentId_) {
        ConversationSettings defaults = settings_.newConversationDefaults();
        defaults.modelPath = model_.path;
        currentId_ = store_.createConversation(titleFrom(text), defaults);
        if (!currentId_) {
            emit error(store_.lastError());
            return false;
        }
        emit conversationOpened(currentId_, {});
    }
    const qint64 id = store_.appendMessage(currentId_, "user", text);
    if (!id) {
        emit error(store_.lastError());
        return false;
    }
    emit messageAdded(*store_.message(id));
    return startReply();
}

QList<ChatTurn> ChatController::turnsFor(qint64 conversationId) const {
    QList<ChatTurn> turns;
    const auto conversation = store_.conversation(conversationId);
    if (conversation && !conversation->settings.systemPrompt.trimmed().isEmpty())
        turns << ChatTurn{"system", conversation->settings.systemPrompt};
    for (const Message& m : store_.messages(conversationId))
        if (!m.content.isEmpty()) turns << ChatTurn{m.role, m.content};
    return turns;
}

bool ChatController::startReply() {
    auto conversation = store_.conversation(currentId_);
    if (!conversation) return false;
    if (hasModel_ && conversation->settings.modelPath != model_.path) {
        conversation->settings.modelPath = model_.path; // the conversation remembers its model
        store_.setConversationSettings(currentId_, conversation->settings);
    }
    GenerationRequest request;
    request.turns = turnsFor(currentId_);
    request.sampling = conversation->settings.sampling;
    reply_ = std::make_unique<StreamingReply>(store_, currentId_, std::chrono::milliseconds(kReplyFlushMs));
    pendingJobs_ << 'G';
    worker_.generate(request);
    flushTimer_.start();
    emit replyStarted(currentId_);
    emit busyChanged(true);
    return true;
}

void ChatController::onToken(const QString& piece) {
    if (!reply_) return;
    if (!reply_->append(piece)) emit error(store_.lastError());
    emit replyPiece(reply_->conversationId(), piece);
}

void ChatController::onFinished(const GenerationStats& stats) {
    if (!pendingJobs_.isEmpty()) pendingJobs_.removeFirst();
    if (!reply_) return;
    flushTimer_.stop();
    const MessageStatus status = !stats.error.isEmpty() ? MessageStatus::Failed
                                 : stats.cancelled     ? MessageStatus::Stopped
                                                       : MessageStatus::Complete;
    if (!reply_->finish(status)) emit error(store_.lastError());
    const qint64 conversationId = reply_->conversationId();
    const auto message = store_.message(reply_->messageId());
    reply_.reset();
    if (!stats.error.isEmpty()) emit error(stats.error);
    if (stats.error.isEmpty()) {
        lastStats_ = stats;
        emit statsChanged(stats);
    }
    if (message) emit replyFinished(conversationId, *message);
    emit busyChanged(false);
}

void ChatController::stop() { worker_.stop(); }

bool ChatController::regenerate() {
    if (reply_ || !currentId_) return false;
    const QList<Message> messages = store_.messages(currentId_);
    // Everything after the last user message goes; the reply is asked for again.
    int lastUser = -1;
    for (int i = 0; i < messages.size(); ++i)
        if (messages[i].role == "user") lastUser = i;
    if (lastUser < 0) return false;
    if (lastUser + 1 < messages.size() && !store_.deleteMessagesFrom(currentId_, messages[lastUser + 1].position)) {
        emit error(store_.lastError());
        return false;
    }
    emit conversationOpened(currentId_, store_.messages(currentId_));
    return startReply();
}

bool ChatController::editAndResend(qint64 messageId, const QString& rawText) {
    const QString text = rawText.trimmed();
    const auto m = store_.message(messageId);
    if (reply_ || text.isEmpty() || !m || m->role != "user" || m->conversationId != currentId_) return false;
    if (!store_.deleteMessagesFrom(currentId_, m->position) || !store_.appendMessage(currentId_, "user", text)) {
        emit error(store_.lastError());
        return false;
    }
    emit conversationOpened(currentId_, store_.messages(currentId_));
    return startReply();
}

void ChatController::newConversation() {
    if (reply_) stop(); // the reply keeps what it has, marked stopped
    currentId_ = 0;
    emit conversationOpened(0, {});
}

void ChatController::openConversation(qint64 id) {
    if (id == currentId_) return;
    if (reply_) stop();
    if (!store_.conversation(id)) return;
    currentId_ = id;
    emit conversationOpened(id, store_.messages(id));
}

bool ChatController::renameConversation(qint64 id, const QString& title) {
    const QString t = title.simplified();
    if (t.isEmpty()) return false;
    if (!store_.renameConversation(id, t)) {
        emit error(store_.lastError());
        return false;
    }
    return true;
}

bool ChatController::deleteConversation(qint64 id) {
    if (reply_ && reply_->conversationId() == id) {
        emit error(tr("This conversation is still receiving a reply — stop it first."));
        return false;
    }
    if (!store_.deleteConversation(id)) {
        emit error(store_.lastError());
        return false;
    }
    if (id == currentId_) {
        currentId_ = 0;
        emit conversationOpened(0, {});
    }
    return true;
}

bool ChatController::setCurrentConversationSettings(const QString& systemPrompt, const SamplingSettings& sampling) {
    auto c = currentConversation();
    if (!c) return false;
    c->settings.systemPrompt = systemPrompt;
    c->settings.sampling = sampling.clamped();
    if (!store_.setConversationSettings(c->id, c->settings)) {
        emit error(store_.lastError());
        return false;
    }
    return true;
}

void ChatController::applyModelSettings(const ModelSettings& before) {
    if (settings_.model() == before) return;
    const QString path = hasModel_ ? model_.path : QString();
    if (!path.isEmpty()) loadModel(path);
}

} // namespace parley::app
