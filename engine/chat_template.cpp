// Chat template families, recognised from the template text and written out by hand. Each
// render() writes what the family's reference Jinja template writes under Hugging Face's
// apply_chat_template (trim_blocks, lstrip_blocks); tests/data/chat_templates holds those
// templates and the texts jinja2 renders from them:
//   ChatML   SmolLM2-Instruct, Qwen2-Instruct  <|im_start|>role\ncontent<|im_end|>\n
//   Llama2   meta-llama/Llama-2-*-chat-hf      <s>[INST] <<SYS>>\nsys\n<</SYS>>\n\nuser [/INST] reply </s>
//   Llama3   meta-llama/Meta-Llama-3-*-Instruct <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>
//   Mistral  mistralai/Mistral-7B-Instruct-v0.1/v0.2  <s>[INST] user [/INST]reply</s>
//   Vicuna   v1.1 format (chujiezheng/chat_templates vicuna.jinja)  sys\n\nUSER: user\nASSISTANT: reply</s>\n
//   Zephyr   HuggingFaceH4/zephyr-7b-beta, TinyLlama-Chat  <|user|>\ncontent</s>\n
#include "engine/chat_template.h"

#include "engine/unicode.h"

#include <initializer_list>
#include <string_view>

namespace parley {

namespace {

bool contains(const std::string& text, const char* what) { return text.find(what) != std::string::npos; }

// Python's str.strip() (Jinja's trim and .strip()): Unicode white space, plus the four
// information separators U+001C..U+001F that str.isspace() also counts.
bool isPythonSpace(char32_t c) { return unicode::isWhiteSpace(c) || (c >= 0x1C && c <= 0x1F); }

std::string pythonStrip(const std::string& s) {
    size_t begin = 0, end = s.size();
    while (begin < end) {
        const auto d = unicode::decodeUtf8(s, begin);
        if (d.status != unicode::Utf8Status::Complete || !isPythonSpace(d.codePoint)) break;
        begin += d.lengthBytes;
    }
    // From the back: find the start of the last character each time.
    while (end > begin) {
        size_t start = end - 1;
        while (start > begin && (static_cast<uint8_t>(s[start]) & 0xC0) == 0x80) --start;
        const auto d = unicode::decodeUtf8(s, start);
        if (d.status != unicode::Utf8Status::Complete || start + d.lengthBytes != end || !isPythonSpace(d.codePoint)) break;
        end = start;
    }
    return s.substr(begin, end - begin);
}

// The system prompt a ChatML template writes when the conversation has none: the literal
// between "<|im_start|>system\n" and "<|im_end|>" in a Jinja string (SmolLM2, Qwen2).
std::string chatMlDefaultSystem(const std::string& tmpl) {
    for (const std::string opener : {"<|im_start|>system\\n", "<|im_start|>system\n"}) {
        for (size_t at = tmpl.find(opener); at != std::string::npos; at = tmpl.find(opener, at + 1)) {
            const size_t from = at + opener.size();
            const size_t to = tmpl.find("<|im_end|>", from);
            if (to == std::string::npos) break;
            const std::string literal = tmpl.substr(from, to - from);
            // An expression (messages[0]['content'], a variable) is no default prompt.
            if (literal.empty() || literal.find_first_of("'\"{}+") != std::string::npos) continue;
            // Undo the Jinja string escapes a prompt may use.
            std::string text;
            for (size_t i = 0; i < literal.size(); ++i) {
                if (literal[i] == '\\' && i + 1 < literal.size()) {
                    const char e = literal[++i];
                    text += e == 'n' ? '\n' : e == 't' ? '\t' : e;
                } else {
                    text += literal[i];
                }
            }
            return text;
        }
    }
    return {};
}

// Appends the parts in order (no temporaries from chained operator+).
void add(std::string& out, std::initializer_list<std::string_view> parts) {
    for (std::string_view p : parts) out += p;
}

} // namespace

const char* chatTemplateFamilyName(ChatTemplateFamily f) {
    switch (f) {
    case ChatTemplateFamily::Plain: return "plain";
    case ChatTemplateFamily::ChatML: return "chatml";
    case ChatTemplateFamily::Llama2: return "llama2";
    case ChatTemplateFamily::Llama3: return "llama3";
    case ChatTemplateFamily::Mistral: return "mistral";
    case ChatTemplateFamily::Vicuna: return "vicuna";
    case ChatTemplateFamily::Zephyr: return "zephyr";
    }
    return "?";
}

ChatTemplate ChatTemplate::detect(const std::string& t) {
    if (contains(t, "<|im_start|>")) {
        ChatTemplate c(ChatTemplateFamily::ChatML);
        c.defaultSystem_ = chatMlDefaultSystem(t);
        return c;
    }
    if (contains(t, "<|start_header_id|>")) return ChatTemplate(ChatTemplateFamily::Llama3);
    if (contains(t, "[INST]") && contains(t, "<<SYS>>")) return ChatTemplate(ChatTemplateFamily::Llama2);
    if (contains(t, "[INST]")) {
        ChatTemplate c(ChatTemplateFamily::Mistral);
        c.spaceAfterEos_ = contains(t, "eos_token + ' '");
        return c;
    }
    if (contains(t, "<|user|>") && contains(t, "<|assistant|>")) return ChatTemplate(ChatTemplateFamily::Zephyr);
    if (contains(t, "<|user|>") && contains(t, "'<|' + message['role'] + '|>")) return ChatTemplate(ChatTemplateFamily::Zephyr);
    if (contains(t, "USER:") && contains(t, "ASSISTANT:")) return ChatTemplate(ChatTemplateFamily::Vicuna);
    if (contains(t, "'<|' + message['role'] + '|>")) return ChatTemplate(ChatTemplateFamily::Zephyr);
    return ChatTemplate(ChatTemplateFamily::Plain);
}

bool ChatTemplate::rendersBos() const {
    return family_ == ChatTemplateFamily::Llama2 || family_ == ChatTemplateFamily::Llama3 ||
           family_ == ChatTemplateFamily::Mistral || family_ == ChatTemplateFamily::Vicuna;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool addAssistantStart) const {
    std::string out;
    // Templates that take the system prompt apart from the turns.
    const bool hasSystem = !messages.empty() && messages.front().role == "system";
    const size_t firstTurn = hasSystem ? 1 : 0;
    switch (family_) {
    case ChatTemplateFamily::ChatML:
        if (!defaultSystem_.empty() && !hasSystem && !messages.empty())
            add(out, {"<|im_start|>system\n", defaultSystem_, "<|im_end|>\n"});
        for (const ChatMessage& m : messages) add(out, {"<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n"});
        if (addAssistantStart) out += "<|im_start|>assistant\n";
        break;
    case ChatTemplateFamily::Llama2:
        // The system prompt goes inside the first [INST]; the template has no assistant opener
        // (the model's reply follows "[/INST]").
        for (size_t i = firstTurn; i < messages.size(); ++i) {
            std::string content = messages[i].content;
            if (i == firstTurn && hasSystem)
                content = std::string("<<SYS>>\n") + messages.front().content + "\n<</SYS>>\n\n" + content;
            if (messages[i].role == "user") add(out, {"<s>[INST] ", pythonStrip(content), " [/INST]"});
            else if (messages[i].role == "assistant") add(out, {" ", pythonStrip(content), " </s>"});
        }
        break;
    case ChatTemplateFamily::Llama3:
        out += "<|begin_of_text|>";
        for (const ChatMessage& m : messages)
            add(out, {"<|start_header_id|>", m.role, "<|end_header_id|>\n\n", pythonStrip(m.content), "<|eot_id|>"});
        if (addAssistantStart) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
        break;
    case ChatTemplateFamily::Mistral: {
        // Mistral's v0.1/v0.2 templates reject a system message; like its later templates, the
        // system prompt here opens the first user turn.
        out += "<s>";
        for (size_t i = firstTurn; i < messages.size(); ++i) {
            std::string content = messages[i].content;
            if (i == firstTurn && hasSystem) content = std::string(messages.front().content) + "\n\n" + content;
            if (messages[i].role == "user") add(out, {"[INST] ", content, " [/INST]"});
            else if (messages[i].role == "assistant") add(out, {content, spaceAfterEos_ ? "</s> " : "</s>"});
        }
        break;
    }
    case ChatTemplateFamily::Vicuna:
        for (size_t i = firstTurn; i < messages.size(); ++i) {
            if (i == firstTurn) {
                out += "<s>";
                if (hasSystem) add(out, {pythonStrip(messages.front().content), "\n\n"});
            }
            if (messages[i].role == "user") add(out, {"USER: ", pythonStrip(messages[i].content), "\n"});
            else if (messages[i].role == "assistant") add(out, {"ASSISTANT: ", pythonStrip(messages[i].content), "</s>\n"});
        }
        if (addAssistantStart) out += "ASSISTANT:";
        break;
    case ChatTemplateFamily::Zephyr:
        for (const ChatMessage& m : messages) add(out, {"<|", m.role, "|>\n", m.content, "</s>\n"});
        if (addAssistantStart && !messages.empty()) out += "<|assistant|>\n";
        break;
    case ChatTemplateFamily::Plain:
        // No template: the conversation's text as it is, one message after the other.
        for (size_t i = 0; i < messages.size(); ++i) {
            if (i) out += "\n\n";
            out += messages[i].content;
        }
        break;
    }
    return out;
}

std::vector<std::string> ChatTemplate::stopStrings() const {
    switch (family_) {
    case ChatTemplateFamily::ChatML: return {"<|im_end|>", "<|im_start|>"};
    case ChatTemplateFamily::Llama2: return {"</s>", "[INST]"};
    case ChatTemplateFamily::Llama3: return {"<|eot_id|>", "<|end_of_text|>", "<|start_header_id|>"};
    case ChatTemplateFamily::Mistral: return {"</s>", "[INST]"};
    case ChatTemplateFamily::Vicuna: return {"</s>", "USER:"};
    case ChatTemplateFamily::Zephyr: return {"</s>", "<|user|>"};
    case ChatTemplateFamily::Plain: return {};
    }
    return {};
}

} // namespace parley
