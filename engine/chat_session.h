#pragma once
// A multi-turn chat on top of Session: keeps the messages, renders them with the model's chat
// template, and when prompt + reply would not fit the context either stops or drops the oldest
// turns (DESIGN.md §2). Because the rendered history only grows at its end, Session reuses the
// cached K/V of everything said before, so each turn only runs its new tokens.
#include "engine/chat_template.h"
#include "engine/session.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace parley {

class Backend;
class Model;

class ChatSession {
public:
    ChatSession(const Model& model, Backend& backend);

    // Empty: the template's own default (if any).
    void setSystemPrompt(const std::string& text) { systemPrompt_ = text; }
    void setContextFullPolicy(ContextFullPolicy p) { policy_ = p; }
    // Replaces the conversation (e.g. one reopened from storage); the next reply reuses whatever
    // prefix of it is still cached.
    void setMessages(std::vector<ChatMessage> messages) { messages_ = std::move(messages); }
    const std::vector<ChatMessage>& messages() const { return messages_; }

    // Adds the user's message, generates the assistant's reply (streamed through onText) and
    // adds it too (also when stopped or cancelled, with the text produced so far).
    GenerateResult reply(const std::string& userText, const SamplingParams& sampling, GenerateOptions options,
                         const std::function<void(std::string_view)>& onText);

    // The token ids of the prompt for the current messages, ending at the assistant's turn.
    std::vector<int32_t> promptTokens() const;
    // How many leading messages were dropped to fit the context so far (DropOldest).
    int droppedMessages() const { return dropped_; }
    Session& session() { return session_; }

private:
    std::vector<ChatMessage> withSystem() const;

    const Model& model_;
    Session session_;
    std::string systemPrompt_;
    std::vector<ChatMessage> messages_;
    ContextFullPolicy policy_ = ContextFullPolicy::DropOldest;
    int dropped_ = 0;
    int maxContext_;
};

} // namespace parley
