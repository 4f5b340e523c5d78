#pragma once
// The engine on its own thread (DESIGN.md §1, §4). Every engine call — loading, tokenizing,
// prefill, decoding — runs on the worker's QThread; the methods below only post work there and
// return at once, so the GUI thread never waits on the engine. Work runs in the order it was asked
// for. Signals are emitted from the worker thread; receivers on the GUI thread get them queued,
// in order.
//
//   loadModel   → modelLoading(progress, stage)… → modelLoaded(info)  | failed(message)
//   generate    → tokenGenerated(piece)… → generationFinished(stats)  (failed(message) before it on an error)
//
// stop() may be called from any thread: it cancels the running generation and every generation
// asked for before the call; the engine checks the flag before each token, so at most the token
// being computed still arrives. loadModel() stops first, then switches; a load that fails keeps
// the model that was loaded before.
#include "app/generation_settings.h"
#include "app/settings.h"

#include <QList>
#include <QMetaType>
#include <QObject>
#include <QString>

#include <atomic>
#include <memory>

class QThread;

namespace parley {
class Backend;
class Model;
class ChatSession;
} // namespace parley

namespace parley::app {

struct LoadRequest {
    QString path;          // a .gguf file or a Hugging Face folder
    ModelSettings options; // precision, backend, context length, threads
};

struct LoadedModel {
    QString path;
    QString name;          // from the file, else the file name
    QString architecture;
    QString chatTemplate;  // template family
    qint64 parameters = 0;
    QString precision;     // what the weights are in now: "int4", "int8", "fp16" (or a mix)
    QString device;        // the backend's name: "cpu (2 threads, AVX2)"
    QString reason;        // why this precision and device
    int contextSize = 0;   // tokens the KV cache holds
    double loadSeconds = 0;
};

struct ChatTurn {
    QString role; // "system", "user", "assistant"
    QString content;
};

struct GenerationRequest {
    QList<ChatTurn> turns; // the conversation so far, oldest first; the reply follows the last
    SamplingSettings sampling;
};

struct GenerationStats {
    quint64 requestId = 0;
    int promptTokens = 0;
    int reusedTokens = 0;     // prompt tokens whose K/V were cached from the previous turn
    int generatedTokens = 0;
    int droppedTurns = 0;     // oldest turns left out so that the prompt fits the context
    double ttftMs = 0;        // from the start of the request to the first piece of text
    double prefillTokensPerSecond = 0;
    double decodeTokensPerSecond = 0;
    QString stopReason;       // "end-of-text", "cancelled", ... (engine::stopReasonName)
    bool cancelled = false;
    QString error;            // set when the generation failed
    int contextUsed = 0;      // tokens in the KV cache after the reply
    int contextSize = 0;
};

class EngineWorker : public QObject {
    Q_OBJECT
public:
    explicit EngineWorker(QObject* parent = nullptr);
    ~EngineWorker() override; // stops, waits for the thread, frees the engine

    void loadModel(const LoadRequest& request);
    quint64 generate(const GenerationRequest& request); // returns the request's id
    void stop();

signals:
    void modelLoading(double progress, const QString& stage);
    void modelLoaded(const parley::app::LoadedModel& info);
    void tokenGenerated(const QString& piece);
    void generationFinished(const parley::app::GenerationStats& stats);
    void failed(const QString& message);

private:
    void runLoad(const LoadRequest& request);
    void runGenerate(quint64 id, const GenerationRequest& request);

    QThread* thread_ = nullptr;
    QObject* threadContext_ = nullptr; // lives on thread_: queued work runs through it
    std::atomic<quint64> lastIssued_{0};
    std::atomic<quint64> cancelUpTo_{0}; // generations with id <= this are cancelled
    std::atomic<bool> cancel_{false};    // the running generation's flag, read by the engine
    // Owned and used on the worker thread only.
    std::unique_ptr<parley::Model> model_;
    std::unique_ptr<parley::Backend> backend_;
    std::unique_ptr<parley::ChatSession> chat_;
};

} // namespace parley::app

Q_DECLARE_METATYPE(parley::app::LoadedModel)
Q_DECLARE_METATYPE(parley::app::GenerationStats)
