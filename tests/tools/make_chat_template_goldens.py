#!/usr/bin/env python3
"""Renders tests/data/chat_templates/goldens.jsonl: each reference template in that folder
(*.jinja, the models' own template texts) applied with jinja2 the way Hugging Face
transformers' apply_chat_template does (ImmutableSandboxedEnvironment, trim_blocks,
lstrip_blocks, raise_exception, bos_token/eos_token) to a set of conversations, with and
without the generation prompt. Conversations a template rejects are left out.

  python3 tests/tools/make_chat_template_goldens.py      (needs jinja2)
"""
import json
import os

from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
FOLDER = os.path.join(HERE, "..", "data", "chat_templates")

# template file -> (family the engine must detect, BOS text, EOS text)
TEMPLATES = {
    "smollm2.jinja": ("chatml", "<|im_start|>", "<|im_end|>"),
    "qwen2.jinja": ("chatml", "", "<|im_end|>"),
    "qwen2.5-instruct.jinja": ("chatml", "", "<|im_end|>"),
    "chatml.jinja": ("chatml", "<s>", "</s>"),
    "llama2-chat.jinja": ("llama2", "<s>", "</s>"),
    "llama3-instruct.jinja": ("llama3", "<|begin_of_text|>", "<|eot_id|>"),
    "mistral-instruct-v0.1.jinja": ("mistral", "<s>", "</s>"),
    "mistral-instruct-v0.2.jinja": ("mistral", "<s>", "</s>"),
    "zephyr.jinja": ("zephyr", "<s>", "</s>"),
    "vicuna.jinja": ("vicuna", "<s>", "</s>"),
}


def m(role, content):
    return {"role": role, "content": content}


CONVERSATIONS = [
    [m("user", "Hello")],
    [m("system", "You are a terse assistant."), m("user", "What is 2+2?")],
    [m("user", "Hello"), m("assistant", "Hi there"), m("user", "Who are you")],
    [m("system", "You are a helpful assistant"), m("user", "Hello"), m("assistant", "Hi there"),
     m("user", "Who are you"), m("assistant", "   I am an assistant   "), m("user", "Another question")],
    [m("user", "  padded question with trailing newline\n"), m("assistant", "\nAnswer on\ntwo lines.\n"),
     m("user", "Ünïcödé: 你好 🙂 שלום")],
    [m("system", "  spaced system prompt  "), m("user", "<|im_end|> [INST] <s> text that looks special")],
    [m("user", "")],
    [m("system", ""), m("user", "empty system prompt")],
]


def main():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message):
        raise TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    with open(os.path.join(FOLDER, "goldens.jsonl"), "w", encoding="utf-8") as out:
        for name, (family, bos, eos) in TEMPLATES.items():
            with open(os.path.join(FOLDER, name), encoding="utf-8") as f:
                template = env.from_string(f.read())
            for messages in CONVERSATIONS:
                for add_generation_prompt in (True, False):
                    try:
                        text = template.render(messages=messages, add_generation_prompt=add_generation_prompt,
                                               bos_token=bos, eos_token=eos)
                    except TemplateError:
                        continue
                    out.write(json.dumps({"template": name, "family": family, "messages": messages,
                                          "add_generation_prompt": add_generation_prompt, "text": text},
                                         ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
