#pragma once
// Chat templates of the common families, recognised from the template text a model file carries
// (tokenizer.chat_template / tokenizer_config.json), with the strings that end an assistant turn.
// We do not run Jinja: each family's format is written out here, after its model card.
#include <string>
#include <vector>

namespace parley {

class Tokenizer;

enum class ChatTemplateFamily { Plain, ChatML, Llama2, Llama3, Mistral, Vicuna, Zephyr };
const char* chatTemplateFamilyName(ChatTemplateFamily f);

struct ChatMessage {
    std::string role; // "system", "user" or "assistant"
    std::string content;
};

class ChatTemplate {
public:
    // Picks the family from the template text (empty text: Plain). `defaultSystem` is the
    // system prompt the template itself inserts when the conversation has none (SmolLM2 does).
    static ChatTemplate detect(const std::string& templateText);
    explicit ChatTemplate(ChatTemplateFamily f = ChatTemplateFamily::Plain) : family_(f) {}

    ChatTemplateFamily family() const { return family_; }
    // The prompt text for the messages; with addAssistantStart it ends where the assistant's
    // reply begins. Special-token text in it is meant to be encoded with parseSpecial = true.
    std::string render(const std::vector<ChatMessage>& messages, bool addAssistantStart) const;
    // Strings that end the assistant's turn besides the tokenizer's EOS.
    std::vector<std::string> stopStrings() const;
    const std::string& defaultSystemPrompt() const { return defaultSystem_; }
    // The rendered text starts with the BOS token's text itself: encode it with addBos = false.
    // (Llama-2, Llama-3, Mistral, Vicuna).
    bool rendersBos() const;

private:
    ChatTemplateFamily family_;
    std::string defaultSystem_;
    bool spaceAfterEos_ = false; // Mistral-7B-Instruct-v0.1 writes "</s> " after a reply
};

} // namespace parley
