#include "ui/markdown_blocks.h"

#include <QStringList>

namespace parley::ui {

namespace {
struct Fence {
    QChar character;
    int length = 0;
    QString info;
};

// A fence line: up to three spaces, then >= 3 of ` or ~. A backtick fence's info has no backtick.
bool parseFence(const QString& line, Fence& fence) {
    int i = 0;
    while (i < line.size() && i < 4 && line[i] == ' ') ++i;
    if (i > 3 || i >= line.size() || (line[i] != '`' && line[i] != '~')) return false;
    const QChar c = line[i];
    int n = 0;
    while (i + n < line.size() && line[i + n] == c) ++n;
    if (n < 3) return false;
    const QString info = line.mid(i + n).trimmed();
    if (c == '`' && info.contains('`')) return false;
    fence = {c, n, info};
    return true;
}

bool closesFence(const QString& line, const Fence& open) {
    Fence f;
    return parseFence(line, f) && f.character == open.character && f.length >= open.length && f.info.isEmpty();
}
} // namespace

QList<MarkdownBlock> splitMarkdownBlocks(const QString& markdown) {
    QList<MarkdownBlock> blocks;
    QStringList prose;
    QStringList code;
    Fence open;
    bool inCode = false;
    auto flushProse = [&] {
        const QString text = prose.join('\n');
        if (!text.trimmed().isEmpty()) blocks.append({MarkdownBlock::Kind::Prose, text, {}, true});
        prose.clear();
    };
    const QStringList lines = markdown.split('\n');
    for (const QString& line : lines) {
        if (!inCode) {
            Fence f;
            if (parseFence(line, f)) {
                flushProse();
                open = f;
                inCode = true;
                code.clear();
            } else {
                prose << line;
            }
        } else if (closesFence(line, open)) {
            blocks.append({MarkdownBlock::Kind::Code, code.join('\n'), open.info.section(' ', 0, 0), true});
            inCode = false;
        } else {
            code << line;
        }
    }
    if (inCode) blocks.append({MarkdownBlock::Kind::Code, code.join('\n'), open.info.section(' ', 0, 0), false});
    else flushProse();
    return blocks;
}

} // namespace parley::ui
