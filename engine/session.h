#pragma once
// A conversation with a model on a backend: owns the KV cache's contents, generates with a
// callback per piece of text, and reuses the cached prefix between turns (DESIGN.md §2).
#include "engine/sampler.h"

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

class Backend;
class Model;

enum class StopReason { EndOfText, StopString, MaxTokens, Cancelled, ContextFull };
const char* stopReasonName(StopReason r);

// What happens when prompt + reply would pass the context length.
enum class ContextFullPolicy {
    Stop,       // stop generating; the reply so far is kept; a prompt that alone does not fit is an Error
    DropOldest, // (chat) the caller drops the oldest turns and renders again — see generateChat
};

struct GenerateOptions {
    int maxTokens = 256;
    std::vector<std::string> stopStrings;      // text ends before the first occurrence
    const std::atomic<bool>* cancel = nullptr; // checked before every token, also before the first
};

struct GenerateResult {
    std::vector<int32_t> tokens; // generated ids
    std::string text;            // generated text (what the callback received)
    StopReason reason = StopReason::EndOfText;
    int promptTokens = 0;
    int reusedTokens = 0;        // prompt tokens whose K/V were already cached
    double prefillMs = 0;
    double ttftMs = 0;           // from the call to the first piece of text
    double decodeMs = 0;
    double prefillTokensPerSecond() const;
    double decodeTokensPerSecond() const;
};

class Session {
public:
    Session(const Model& model, Backend& backend);

    // Feeds the prompt (reusing the longest cached prefix), then samples until EOS, a stop string,
    // maxTokens, cancellation or a full context. onText gets each new piece of whole UTF-8 text.
    GenerateResult generate(const std::vector<int32_t>& prompt, const SamplingParams& sampling,
                            const GenerateOptions& options,
                            const std::function<void(std::string_view)>& onText);

    // Teacher-forced logits for every position: tokens.size() x vocab (perplexity, tests).
    std::vector<float> evaluate(const std::vector<int32_t>& tokens);

    // Forgets the cached tokens.
    void reset() { cached_.clear(); }
    const std::vector<int32_t>& cachedTokens() const { return cached_; }

private:
    const Model& model_;
    Backend& backend_;
    std::vector<int32_t> cached_; // tokens whose K/V are in the backend's cache, in order
};

} // namespace parley
