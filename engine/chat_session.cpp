#include "engine/chat_session.h"

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/model.h"

namespace parley {

ChatSession::ChatSession(const Model& model, Backend& backend)
    : model_(model), session_(model, backend), maxContext_(backend.maxContext()) {}

std::vector<ChatMessage> ChatSession::withSystem() const {
    std::vector<ChatMessage> all;
    if (!systemPrompt_.empty()) all.push_back({"system", systemPrompt_});
    all.insert(all.end(), messages_.begin(), messages_.end());
    return all;
}

std::vector<int32_t> ChatSession::promptTokens() const {
    const Tokenizer& tok = model_.tokenizer();
    const ChatTemplate& tmpl = model_.chatTemplate();
    std::string text = tmpl.render(withSystem(), /*addAssistantStart=*/true);
    // Templates of the Llama-2/3, Mistral and Vicuna families write BOS into the text themselves.
    return tok.encode(text, tok.addsBosByDefault() && !tmpl.rendersBos(), /*parseSpecial=*/true);
}

GenerateResult ChatSession::reply(const std::string& userText, const SamplingParams& sampling, GenerateOptions options,
                                  const std::function<void(std::string_view)>& onText) {
    messages_.push_back({"user", userText});
    std::vector<int32_t> prompt = promptTokens();
    // Room for at least a short reply; with DropOldest, drop whole turns from the front (never the
    // message just added) until the prompt and the reply budget fit.
    const int replyBudget = std::max(1, std::min(options.maxTokens, maxContext_ / 4));
    while (static_cast<int>(prompt.size()) + replyBudget > maxContext_) {
        if (policy_ != ContextFullPolicy::DropOldest || messages_.size() <= 1) break;
        messages_.erase(messages_.begin());
        ++dropped_;
        // A conversation resumes with a user turn.
        while (messages_.size() > 1 && messages_.front().role != "user") {
            messages_.erase(messages_.begin());
            ++dropped_;
        }
        prompt = promptTokens();
    }
    if (static_cast<int>(prompt.size()) >= maxContext_) {
        messages_.pop_back();
        throw Error("the message does not fit the context of " + std::to_string(maxContext_) + " tokens (" +
                    std::to_string(prompt.size()) + " tokens with the conversation)");
    }
    for (const std::string& s : model_.chatTemplate().stopStrings()) options.stopStrings.push_back(s);
    GenerateResult r = session_.generate(prompt, sampling, options, onText);
    messages_.push_back({"assistant", r.text});
    return r;
}

} // namespace parley
