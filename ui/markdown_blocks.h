#pragma once
// Splits a message's Markdown into prose and fenced code blocks, so that code gets its own
// monospace box with a copy button while the prose goes to Qt's Markdown renderer (QTextDocument,
// md4c, GitHub dialect: headings, lists, tables, links). Fences follow CommonMark §4.5
// (https://spec.commonmark.org/0.31.2/#fenced-code-blocks): a line of at least three backticks or
// tildes, indented at most three spaces, opens a block with an optional info string (its first
// word is the language); a line of the same character, at least as long, closes it. A block still
// open at the end of the text (a reply that is still streaming) runs to the end.
#include <QList>
#include <QString>

namespace parley::ui {

struct MarkdownBlock {
    enum class Kind { Prose, Code };
    Kind kind = Kind::Prose;
    QString text;     // prose Markdown, or the code without its fences
    QString language; // code only: "cpp", "python", or empty
    bool closed = true;
    bool operator==(const MarkdownBlock&) const = default;
};

QList<MarkdownBlock> splitMarkdownBlocks(const QString& markdown);

} // namespace parley::ui
