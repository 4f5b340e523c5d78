// A conversation with a model on a backend (session.h): prompt prefill that reuses the cached
// prefix, the decode loop with sampling, streaming text, stop strings and stop conditions.
#include "engine/session.h"

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"

#include <algorithm>
#include <chrono>
#include <random>

namespace parley {
namespace {

// Prompts are fed in chunks so that the backend's activation buffers stay small for long prompts.
constexpr int kPrefillChunk = 512;

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The length of the longest suffix of `text` that is a proper prefix of some stop string: text
// that must be held back because the next token could complete a stop string.
size_t heldBackLength(const std::string& text, const std::vector<std::string>& stops) {
    size_t held = 0;
    for (const std::string& s : stops) {
        for (size_t len = std::min(text.size(), s.size() - 1); len > held; --len) {
            if (text.compare(text.size() - len, len, s, 0, len) == 0) {
                held = len;
                break;
            }
        }
    }
    return held;
}

} // namespace

const char* stopReasonName(StopReason r) {
    switch (r) {
    case StopReason::EndOfText: return "end-of-text";
    case StopReason::StopString: return "stop-string";
    case StopReason::MaxTokens: return "max-tokens";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::ContextFull: return "context-full";
    }
    return "?";
}

double GenerateResult::prefillTokensPerSecond() const {
    const int fed = promptTokens - reusedTokens;
    return prefillMs > 0 ? fed * 1000.0 / prefillMs : 0;
}

double GenerateResult::decodeTokensPerSecond() const {
    // The first token comes from the prefill's logits; each later one costs one decode step.
    const double steps = tokens.size() > 1 ? double(tokens.size() - 1) : 0;
    return decodeMs > 0 ? steps * 1000.0 / decodeMs : 0;
}

Session::Session(const Model& model, Backend& backend) : model_(model), backend_(backend) {}

GenerateResult Session::generate(const std::vector<int32_t>& prompt, const SamplingParams& sampling,
                                 const GenerateOptions& options,
                                 const std::function<void(std::string_view)>& onText) {
    const auto start = Clock::now();
    GenerateResult result;
    result.promptTokens = static_cast<int>(prompt.size());
    const int maxContext = backend_.maxContext();
    if (prompt.empty()) throw Error("generate: the prompt is empty");
    if (static_cast<int64_t>(prompt.size()) > maxContext)
        throw Error("the prompt of " + std::to_string(prompt.size()) + " tokens does not fit the context of " +
                    std::to_string(maxContext) + " tokens");
    auto cancelled = [&] { return options.cancel && options.cancel->load(std::memory_order_relaxed); };
    if (cancelled()) {
        result.reason = StopReason::Cancelled;
        return result;
    }

    // Reuse the longest common prefix of the cached tokens; at least the last prompt token is
    // run again, since its logits are needed for the first new token.
    size_t reused = 0;
    while (reused < cached_.size() && reused < prompt.size() && cached_[reused] == prompt[reused]) ++reused;
    reused = std::min(reused, prompt.size() - 1);
    cached_.resize(reused);
    result.reusedTokens = static_cast<int>(reused);

    const int vocab = model_.config().vocabSize;
    std::vector<float> logits(vocab); // [vocab] of the newest token
    Sampler sampler(sampling);
    std::vector<int32_t> history = prompt; // for the repetition penalty
    // A backend that samples where its logits are (the GPU) returns only the next token's id;
    // otherwise the logits come back and the Sampler picks. Either way the draw comes from a
    // generator seeded with sampling.seed, so the same seed gives the same text on one backend.
    const bool sampleOnDevice = backend_.samplesOnDevice();
    std::mt19937_64 deviceDraws(sampling.seed);
    std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
    // Runs n tokens from position pos and returns the token that follows them.
    auto runAndPick = [&](const int32_t* tokens, int n, int pos) -> int32_t {
        if (sampleOnDevice)
            return backend_.forwardAndSample(tokens, n, pos, sampling, history.data(), static_cast<int>(history.size()),
                                             uniform(deviceDraws));
        backend_.forward(tokens, n, pos, false, logits.data());
        return sampler.sample(logits, history);
    };
    int32_t next = -1; // the token sampled after the last one run
    for (size_t pos = reused; pos < prompt.size(); pos += kPrefillChunk) {
        const int n = static_cast<int>(std::min<size_t>(kPrefillChunk, prompt.size() - pos));
        if (pos + n == prompt.size()) {
            next = runAndPick(prompt.data() + pos, n, static_cast<int>(pos));
        } else {
            backend_.forward(prompt.data() + pos, n, static_cast<int>(pos), false, logits.data());
        }
        cached_.insert(cached_.end(), prompt.begin() + pos, prompt.begin() + pos + n);
    }
    result.prefillMs = msSince(start);

    const Tokenizer& tokenizer = model_.tokenizer();
    // The reply continues the prompt's text, so SPM's leading space of its first piece is kept.
    StreamingDetokenizer detokenizer(tokenizer, /*atTextStart=*/false);
    std::string unsent; // text produced but held back: it could be the start of a stop string
    Clock::time_point firstToken{};
    auto send = [&](const std::string& text) {
        if (text.empty()) return;
        if (result.text.empty()) result.ttftMs = msSince(start);
        result.text += text;
        if (onText) onText(text);
    };
    // Appends text; true when a stop string has appeared (the text before it is sent).
    auto emit = [&](const std::string& text) {
        unsent += text;
        size_t cut = std::string::npos;
        for (const std::string& s : options.stopStrings)
            if (!s.empty()) cut = std::min(cut, unsent.find(s));
        if (cut != std::string::npos) {
            send(unsent.substr(0, cut));
            unsent.clear();
            return true;
        }
        const size_t held = heldBackLength(unsent, options.stopStrings);
        send(unsent.substr(0, unsent.size() - held));
        unsent.erase(0, unsent.size() - held);
        return false;
    };

    bool stoppedByString = false;
    if (options.maxTokens <= 0) result.reason = StopReason::MaxTokens;
    while (options.maxTokens > 0) {
        if (cancelled()) {
            result.reason = StopReason::Cancelled;
            break;
        }
        const int32_t token = next;
        if (result.tokens.empty()) firstToken = Clock::now();
        result.tokens.push_back(token);
        history.push_back(token);
        if (token == tokenizer.eos() || tokenizer.isControl(token)) {
            result.reason = StopReason::EndOfText; // EOS, <|im_end|>, <|eot_id|>...: the turn is over
            break;
        }
        if (emit(detokenizer.push(token))) {
            stoppedByString = true;
            result.reason = StopReason::StopString;
            break;
        }
        if (static_cast<int>(result.tokens.size()) >= options.maxTokens) {
            result.reason = StopReason::MaxTokens;
            break;
        }
        if (static_cast<int64_t>(cached_.size()) >= maxContext) {
            result.reason = StopReason::ContextFull;
            break;
        }
        next = runAndPick(&token, 1, static_cast<int>(cached_.size()));
        cached_.push_back(token);
    }
    if (!stoppedByString) {
        // Nothing follows: text held back for a stop string that never came is the reply's end.
        if (emit(detokenizer.flush())) result.reason = StopReason::StopString;
        send(unsent);
    }
    if (!result.tokens.empty()) result.decodeMs = std::chrono::duration<double, std::milli>(Clock::now() - firstToken).count();
    return result;
}

std::vector<float> Session::evaluate(const std::vector<int32_t>& tokens) {
    const int maxContext = backend_.maxContext();
    if (static_cast<int64_t>(tokens.size()) > maxContext)
        throw Error("evaluate: " + std::to_string(tokens.size()) + " tokens do not fit the context of " +
                    std::to_string(maxContext) + " tokens");
    const size_t vocab = model_.config().vocabSize;
    std::vector<float> logits(tokens.size() * vocab); // [tokens][vocab]
    cached_.clear();
    for (size_t pos = 0; pos < tokens.size(); pos += kPrefillChunk) {
        const int n = static_cast<int>(std::min<size_t>(kPrefillChunk, tokens.size() - pos));
        backend_.forward(tokens.data() + pos, n, static_cast<int>(pos), true, logits.data() + pos * vocab);
        cached_.insert(cached_.end(), tokens.begin() + pos, tokens.begin() + pos + n);
    }
    return logits;
}

} // namespace parley
