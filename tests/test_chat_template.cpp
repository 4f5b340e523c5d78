// Chat templates: the family is recognised from each model's real template text
// (tests/data/chat_templates/*.jinja), and render() writes exactly what jinja2 renders from that
// template (goldens.jsonl, from tests/tools/make_chat_template_goldens.py) for conversations
// with and without system prompts, odd white space, Unicode and special-looking text.
#include "engine/chat_template.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "support.h"

#include <QTest>
#include <nlohmann/json.hpp>

#include <fstream>
#include <set>

using namespace parley;
using namespace parley::test;
using nlohmann::json;

namespace {

std::string templatePath(const std::string& name) { return envPath("PARLEY_TEST_DATA", "chat_templates/" + name); }

std::vector<json> readGoldens() {
    std::ifstream in(templatePath("goldens.jsonl"), std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + templatePath("goldens.jsonl"));
    std::vector<json> lines;
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) lines.push_back(json::parse(line));
    return lines;
}

} // namespace

class TestChatTemplate : public QObject {
    Q_OBJECT
private slots:
    void rendersLikeTheReferenceTemplates() {
        const std::vector<json> goldens = readGoldens();
        QVERIFY(goldens.size() >= 100);
        for (const json& g : goldens) {
            const std::string name = g["template"];
            const ChatTemplate t = ChatTemplate::detect(readFileText(templatePath(name)));
            QCOMPARE(std::string(chatTemplateFamilyName(t.family())), g["family"].get<std::string>());
            std::vector<ChatMessage> messages;
            for (const json& m : g["messages"]) messages.push_back({m["role"], m["content"]});
            const std::string text = t.render(messages, g["add_generation_prompt"]);
            QVERIFY2(text == g["text"].get<std::string>(),
                     qPrintable(QString("%1 on %2:\n got %3\nwant %4")
                                    .arg(QString::fromStdString(name), QString::fromStdString(g["messages"].dump()),
                                         QString::fromStdString(json(text).dump()),
                                         QString::fromStdString(g["text"].dump()))));
        }
    }

    void everyFamilyIsCovered() {
        std::set<std::string> families;
        for (const json& g : readGoldens()) families.insert(g["family"]);
        for (const char* f : {"chatml", "llama2", "llama3", "mistral", "vicuna", "zephyr"})
            QVERIFY2(families.count(f), f);
    }

    void defaultSystemPrompts() {
        const ChatTemplate smol = ChatTemplate::detect(readFileText(templatePath("smollm2.jinja")));
        QCOMPARE(smol.defaultSystemPrompt(), std::string("You are a helpful AI assistant named SmolLM, trained by Hugging Face"));
        const std::string rendered = smol.render({{"user", "Hi"}}, true);
        QCOMPARE(rendered, std::string("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                                       "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
        const ChatTemplate qwen = ChatTemplate::detect(readFileText(templatePath("qwen2.jinja")));
        QCOMPARE(qwen.defaultSystemPrompt(), std::string("You are a helpful assistant."));
        const ChatTemplate plainChatMl = ChatTemplate::detect(readFileText(templatePath("chatml.jinja")));
        QCOMPARE(plainChatMl.defaultSystemPrompt(), std::string());
    }

    void defaultModelTemplate() {
        const std::string model = defaultModelPath();
        if (model.empty()) QSKIP("the default model is not installed (scripts/setup.sh fetches it)");
        GgufFile file(model);
        const ChatTemplate t = ChatTemplate::detect(file.getString("tokenizer.chat_template"));
        QCOMPARE(t.family(), ChatTemplateFamily::ChatML);
        QVERIFY(!t.rendersBos());
        // The stop string is a token of the model, and the rendered prompt encodes to its
        // special tokens.
        auto tok = Tokenizer::fromGguf(file);
        QCOMPARE(t.stopStrings().front(), std::string("<|im_end|>"));
        QVERIFY(tok->findToken(t.stopStrings().front()).has_value());
        const std::vector<int32_t> ids = tok->encode(t.render({{"user", "Hi"}}, true), false, true);
        QCOMPARE(ids.front(), *tok->findToken("<|im_start|>"));
        QCOMPARE(std::count(ids.begin(), ids.end(), *tok->findToken("<|im_end|>")), 2L);
    }

    void stopStringsPerFamily() {
        auto stops = [](const char* file) { return ChatTemplate::detect(readFileText(templatePath(file))).stopStrings(); };
        QCOMPARE(stops("llama3-instruct.jinja").front(), std::string("<|eot_id|>"));
        QCOMPARE(stops("llama2-chat.jinja").front(), std::string("</s>"));
        QCOMPARE(stops("mistral-instruct-v0.2.jinja").front(), std::string("</s>"));
        QCOMPARE(stops("zephyr.jinja").front(), std::string("</s>"));
        QCOMPARE(stops("vicuna.jinja").front(), std::string("</s>"));
        QVERIFY(ChatTemplate::detect("").stopStrings().empty());
    }

    void unknownTemplatesArePlain() {
        QCOMPARE(ChatTemplate::detect("").family(), ChatTemplateFamily::Plain);
        const ChatTemplate alpaca = ChatTemplate::detect(
            "{% for message in messages %}{% if message['role'] == 'user' %}{{ '### Instruction:\\n' + message['content'] }}"
            "{% endif %}{% endfor %}{{ '### Response:' }}");
        QCOMPARE(alpaca.family(), ChatTemplateFamily::Plain);
        QCOMPARE(alpaca.render({{"system", "Be brief."}, {"user", "Write a haiku."}}, true),
                 std::string("Be brief.\n\nWrite a haiku."));
        QVERIFY(!alpaca.rendersBos());
    }

    void mistralFoldsTheSystemPromptIntoTheFirstTurn() {
        // Mistral's own templates reject a system message; the engine keeps it, in the first [INST].
        const ChatTemplate t = ChatTemplate::detect(readFileText(templatePath("mistral-instruct-v0.2.jinja")));
        QCOMPARE(t.render({{"system", "Be brief."}, {"user", "Hi"}}, true), std::string("<s>[INST] Be brief.\n\nHi [/INST]"));
        QVERIFY(t.rendersBos());
    }
};

QTEST_GUILESS_MAIN(TestChatTemplate)
#include "test_chat_template.moc"
