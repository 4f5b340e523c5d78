#include "app/engine_worker.h"

#include "app/backend_choice.h"
#include "app/model_manager.h"
#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"
#include "engine/chat_session.h"

#include <QElapsedTimer>
#include <QFileInfo>
#include <QRandomGenerator>
#include <QSet>
#include <QThread>

#include <new>

namespace parley::app {

namespace {

// The precisions the transformer layers ended up in ("int4", or "int4 + int8" for a mix).
QString layerPrecision(const parley::ModelWeights& w) {
    QStringList names;
    for (const auto& layer : w.layers)
        for (const parley::WeightMatrix* m : {&layer.wq, &layer.wk, &layer.wv, &layer.wo, &layer.wGate, &layer.wUp, &layer.wDown}) {
            const QString n = QString::fromLatin1(parley::precisionName(m->precision));
            if (!names.contains(n)) names << n;
        }
    return names.join(" + ");
}

} // namespace

EngineWorker::EngineWorker(QObject* parent) : QObject(parent) {
    qRegisterMetaType<parley::app::LoadedModel>();
    qRegisterMetaType<parley::app::GenerationStats>();
    thread_ = new QThread;
    thread_->setObjectName("parley-engine");
    threadContext_ = new QObject;
    threadContext_->moveToThread(thread_);
    thread_->start();
}

EngineWorker::~EngineWorker() {
    stop();
    thread_->quit(); // work still queued is dropped; the running call finishes (stop() cut a generation short)
    thread_->wait();
    delete threadContext_;
    delete thread_;
    chat_.reset(); // it refers to the model and the backend
    backend_.reset();
    model_.reset();
}

void EngineWorker::loadModel(const LoadRequest& request) {
    stop(); // a model switch while generating: the reply ends `stopped`, then the switch happens
    QMetaObject::invokeMethod(threadContext_, [this, request] { runLoad(request); }, Qt::QueuedConnection);
}

quint64 EngineWorker::generate(const GenerationRequest& request) {
    const quint64 id = ++lastIssued_;
    QMetaObject::invokeMethod(threadContext_, [this, id, request] { runGenerate(id, request); }, Qt::QueuedConnection);
    return id;
}

void EngineWorker::stop() {
    // Order matters against runGenerate's start (clear flag, then compare ids): whichever way the
    // two interleave, a generation issued before this call ends up cancelled.
    cancelUpTo_.store(lastIssued_.load());
    cancel_.store(true);
}

void EngineWorker::runLoad(const LoadRequest& request) {
    const QString file = QFileInfo(request.path).fileName();
    QElapsedTimer clock;
    clock.start();
    emit modelLoading(0.0, QStringLiteral("Reading %1").arg(file));
    try {
        // The context asked for, within what the model was trained for.
        parley::ModelOptions header;
        header.metadataOnly = true;
        const auto metadata = parley::Model::open(request.path.toStdString(), header);
        const int trained = metadata->config().contextLength;
        const int context = std::max(16, trained > 0 ? std::min(request.options.contextLength, trained) : request.options.contextLength);
        BackendChoice choice = chooseBackend(request.options, *metadata, context);
        emit modelLoading(0.1, QStringLiteral("Reading %1").arg(file));
        parley::ModelOptions options;
        options.precision = choice.precision;
        auto model = parley::Model::open(request.path.toStdString(), options);
        emit modelLoading(0.6, QStringLiteral("Preparing %1 on %2").arg(file, QString::fromStdString(choice.backend->name())));
        choice.backend->load(model->config(), model->weights(), context);
        auto chat = std::make_unique<parley::ChatSession>(*model, *choice.backend);

        // Only now is the old model let go: a load that fails above leaves it in place.
        chat_.reset();
        backend_.reset();
        model_.reset();
        model_ = std::move(model);
        backend_ = std::move(choice.backend);
        chat_ = std::move(chat);

        LoadedModel info;
        info.path = request.path;
        info.name = QString::fromStdString(model_->config().name);
        if (info.name.isEmpty()) info.name = ModelManager::displayName(request.path);
        info.architecture = QString::fromStdString(model_->config().architecture);
        info.chatTemplate = QString::fromLatin1(parley::chatTemplateFamilyName(model_->chatTemplate().family()));
        info.parameters = model_->info().parameterCount;
        info.precision = layerPrecision(model_->weights());
        info.device = QString::fromStdString(backend_->name());
        info.reason = choice.reason;
        info.contextSize = backend_->maxContext();
        info.loadSeconds = clock.elapsed() / 1000.0;
        emit modelLoading(1.0, QStringLiteral("Loaded %1").arg(file));
        emit modelLoaded(info);
    } catch (const parley::Error& e) {
        emit failed(QStringLiteral("Could not load %1: %2").arg(file, QString::fromUtf8(e.what())));
    } catch (const std::bad_alloc&) {
        emit failed(QStringLiteral("Could not load %1: not enough memory").arg(file));
    } catch (const std::exception& e) {
        emit failed(QStringLiteral("Could not load %1: %2").arg(file, QString::fromUtf8(e.what())));
    }
}

void EngineWorker::runGenerate(quint64 id, const GenerationRequest& request) {
    cancel_.store(false);
    if (id <= cancelUpTo_.load()) cancel_.store(true);

    GenerationStats stats;
    stats.requestId = id;
    auto finishWithError = [&](const QString& message) {
        stats.error = message;
        stats.stopReason = "error";
        emit failed(message);
        emit generationFinished(stats);
    };
    if (!chat_) return finishWithError("No model is loaded.");

    try {
        const int context = backend_->maxContext();
        const SamplingSettings sampling = request.sampling.clamped();
        // The conversation: an optional system turn first, the user's new message last.
        QList<ChatTurn> turns = request.turns;
        if (turns.isEmpty() || turns.last().role != "user") return finishWithError("There is no message to answer.");
        const std::string userText = turns.takeLast().content.toStdString();
        std::string systemPrompt;
        if (!turns.isEmpty() && turns.first().role == "system") systemPrompt = turns.takeFirst().content.toStdString();
        std::vector<parley::ChatMessage> history;
        for (const ChatTurn& t : turns) history.push_back({t.role.toStdString(), t.content.toStdString()});
        // When the conversation outgrows the context, the oldest turns are left out
        // (DESIGN.md §2, ContextFullPolicy::DropOldest); the system prompt stays.
        chat_->setSystemPrompt(systemPrompt);
        chat_->setContextFullPolicy(parley::ContextFullPolicy::DropOldest);
        chat_->setMessages(std::move(history));
        const int droppedBefore = chat_->droppedMessages();

        parley::SamplingParams params;
        params.temperature = float(sampling.temperature);
        params.topK = sampling.topK;
        params.topP = float(sampling.topP);
        params.minP = float(sampling.minP);
        params.repeatPenalty = float(sampling.repeatPenalty);
        params.seed = sampling.seed >= 0 ? quint64(sampling.seed) : QRandomGenerator::global()->generate64();
        parley::GenerateOptions options;
        options.maxTokens = sampling.maxNewTokens; // the session stops earlier where the context is full
        options.cancel = &cancel_;

        const parley::GenerateResult result = chat_->reply(userText, params, options, [this](std::string_view piece) {
            if (!piece.empty()) emit tokenGenerated(QString::fromUtf8(piece.data(), qsizetype(piece.size())));
        });
        stats.droppedTurns = chat_->droppedMessages() - droppedBefore;
        stats.promptTokens = result.promptTokens;
        stats.reusedTokens = result.reusedTokens;
        stats.generatedTokens = int(result.tokens.size());
        stats.ttftMs = result.ttftMs;
        stats.prefillTokensPerSecond = result.prefillTokensPerSecond();
        stats.decodeTokensPerSecond = result.decodeTokensPerSecond();
        stats.stopReason = QString::fromLatin1(parley::stopReasonName(result.reason));
        stats.cancelled = result.reason == parley::StopReason::Cancelled;
        stats.contextUsed = int(chat_->session().cachedTokens().size());
        stats.contextSize = context;
        emit generationFinished(stats);
    } catch (const parley::Error& e) {
        chat_->session().reset(); // the cache may hold half a step
        finishWithError(QString::fromUtf8(e.what()));
    } catch (const std::bad_alloc&) {
        chat_->session().reset();
        finishWithError("Not enough memory to generate.");
    }
}

} // namespace parley::app
