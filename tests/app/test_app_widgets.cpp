// The widgets on their own (no engine): Markdown blocks and code boxes with copy buttons, the chat
// view's streaming (only the reply repaints; the view follows the bottom unless scrolled up), the
// composer's keys, the conversation list (order, search, rename, delete with confirmation) and the
// settings dialog. Offscreen platform.
#include "app/conversation_store.h"
#include "app/settings.h"
#include "support.h"
#include "ui/chat_view.h"
#include "ui/composer.h"
#include "ui/conversation_list.h"
#include "ui/markdown_blocks.h"
#include "ui/message_widget.h"
#include "ui/settings_dialog.h"

#include <QApplication>
#include <QClipboard>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QSignalSpy>
#include <QSpinBox>
#include <QComboBox>
#include <QTest>
#include <QTextDocument>
#include <QTextTable>
#include <QTimer>
#include <QToolButton>

using namespace parley::app;
using namespace parley::ui;
using Kind = MarkdownBlock::Kind;

namespace {
Message message(qint64 id, const QString& role, const QString& content, MessageStatus status = MessageStatus::Complete) {
    Message m;
    m.id = id;
    m.role = role;
    m.content = content;
    m.status = status;
    return m;
}

// Answers the next modal message box with `button`.
void answerNextMessageBox(QMessageBox::StandardButton button) {
    QTimer::singleShot(50, [button] {
        for (QWidget* w : QApplication::topLevelWidgets())
            if (auto* box = qobject_cast<QMessageBox*>(w); box && box->isVisible()) {
                box->button(button)->click();
                return;
            }
    });
}
} // namespace

class WidgetsTest : public QObject {
    Q_OBJECT
private slots:
    void markdownSplitsFencedCode();
    void assistantMessageRendersMarkdownAndCodeWithCopyButtons();
    void userMessageStaysPlainText();
    void streamingRepaintsOnlyTheReply();
    void viewFollowsBottomUnlessScrolledUp();
    void composerEnterSendsShiftEnterAddsLineStopWhileBusy();
    void composerEditModeResendsTheEditedMessage();
    void conversationListOrderSearchRenameDelete();
    void settingsDialogSavesDefaultsAndConversationPrompt();
};

void WidgetsTest::markdownSplitsFencedCode() {
    QCOMPARE(splitMarkdownBlocks("Just **prose**\n- a\n- b"),
             (QList<MarkdownBlock>{{Kind::Prose, "Just **prose**\n- a\n- b", {}, true}}));
    const auto blocks = splitMarkdownBlocks("Intro:\n```python title\nprint(1)\n\nprint(2)\n```\nAfter.\n~~~~\n```not a fence end\n~~~~\n");
    QCOMPARE(blocks.size(), 4);
    QCOMPARE(blocks[0], (MarkdownBlock{Kind::Prose, "Intro:", {}, true}));
    QCOMPARE(blocks[1], (MarkdownBlock{Kind::Code, "print(1)\n\nprint(2)", "python", true}));
    QCOMPARE(blocks[2], (MarkdownBlock{Kind::Prose, "After.", {}, true}));
    QCOMPARE(blocks[3], (MarkdownBlock{Kind::Code, "```not a fence end", {}, true}));
    // Still streaming: the open block runs to the end.
    const auto open = splitMarkdownBlocks("Here:\n```cpp\nint main() {");
    QCOMPARE(open.size(), 2);
    QCOMPARE(open[1], (MarkdownBlock{Kind::Code, "int main() {", "cpp", false}));
    // Two backticks, or four spaces of indent, are not fences.
    QCOMPARE(splitMarkdownBlocks("``x``\n    ```\n").size(), 1);
    // A closing fence must be at least as long as the opening one.
    QCOMPARE(splitMarkdownBlocks("````\na\n```\nb\n````").first().text, QString("a\n```\nb"));
}

void WidgetsTest::assistantMessageRendersMarkdownAndCodeWithCopyButtons() {
    const QString prose = "# Title\n\nSome *text* with a [link](https://example.org).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
    const QString code = "for i in range(3):\n    print(i)";
    const QString text = prose + "```python\n" + code + "\n```\nThat's all.";
    MessageWidget w("assistant");
    w.resize(600, 400);
    w.setContent(text, MessageStatus::Complete);
    w.show();
    QVERIFY(QTest::qWaitForWindowExposed(&w));

    const QList<QLabel*> labels = w.findChildren<QLabel*>();
    QLabel* first = nullptr;
    for (QLabel* l : labels)
        if (l->text().startsWith("# Title")) first = l;
    QVERIFY(first);
    QCOMPARE(first->textFormat(), Qt::MarkdownText);
    // The renderer behind Qt::MarkdownText reads headings and tables (GitHub dialect).
    QTextDocument doc;
    doc.setMarkdown(first->text());
    QCOMPARE(doc.begin().blockFormat().headingLevel(), 1);
    bool table = false;
    for (QTextFrame* f : doc.rootFrame()->childFrames()) table = table || qobject_cast<QTextTable*>(f);
    QVERIFY(table);

    QCOMPARE(w.codeBlocks().size(), 1);
    CodeBlockWidget* box = w.codeBlocks().first();
    QCOMPARE(box->code(), code);
    QCOMPARE(box->findChild<QPlainTextEdit*>()->font().fixedPitch() || QFontInfo(box->findChild<QPlainTextEdit*>()->font()).fixedPitch(), true);
    QApplication::clipboard()->clear();
    QTest::mouseClick(box->copyButton(), Qt::LeftButton);
    QCOMPARE(QApplication::clipboard()->text(), code);
    QTest::mouseClick(w.copyButton(), Qt::LeftButton);
    QCOMPARE(QApplication::clipboard()->text(), text);
}

void WidgetsTest::userMessageStaysPlainText() {
    MessageWidget w("user");
    w.setContent("What does `**this**` do?\n```\nnot code\n```", MessageStatus::Complete);
    QCOMPARE(w.codeBlocks().size(), 0);
    QLabel* body = nullptr;
    for (QLabel* l : w.findChildren<QLabel*>())
        if (l->text().startsWith("What does")) body = l;
    QVERIFY(body);
    QCOMPARE(body->textFormat(), Qt::PlainText);
}

void WidgetsTest::streamingRepaintsOnlyTheReply() {
    ChatView view;
    view.resize(700, 500);
    view.show();
    QList<Message> history;
    for (int i = 0; i < 40; ++i)
        history << message(i + 1, i % 2 ? "assistant" : "user", QString("Message %1 with `code` and **bold**").arg(i));
    view.showConversation(history);
    QTest::qWait(50);
    QList<int> before;
    for (MessageWidget* m : view.messageWidgets()) before << m->renderCount();

    view.beginReply();
    MessageWidget* reply = view.streamingWidget();
    QVERIFY(reply);
    QString expected;
    for (int i = 0; i < 150; ++i) {
        const QString piece = i == 50 ? "\n```cpp\n" : i == 120 ? "\n```\n" : QString("w%1 ").arg(i);
        expected += piece;
        view.appendReply(piece);
        if (i % 10 == 0) QTest::qWait(5);
    }
    QTRY_COMPARE(reply->text(), expected);
    for (int i = 0; i < before.size(); ++i) QCOMPARE(view.messageWidgets()[i]->renderCount(), before[i]);
    QVERIFY2(reply->renderCount() < 60, qPrintable(QString::number(reply->renderCount()))); // pieces are gathered
    QCOMPARE(reply->codeBlocks().size(), 1);
    QCOMPARE(reply->status(), MessageStatus::Streaming);

    view.finishReply(message(99, "assistant", expected, MessageStatus::Stopped));
    QCOMPARE(reply->messageId(), 99);
    QCOMPARE(reply->status(), MessageStatus::Stopped);
    QVERIFY(!view.streamingWidget());
    QVERIFY(reply->regenerateButton()->isVisibleTo(reply)); // the last reply can be written again
}

void WidgetsTest::viewFollowsBottomUnlessScrolledUp() {
    ChatView view;
    view.resize(600, 300);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QList<Message> history;
    for (int i = 0; i < 30; ++i) history << message(i + 1, i % 2 ? "assistant" : "user", QString("Line %1\n\nmore text").arg(i));
    view.showConversation(history);
    QScrollBar* bar = view.verticalScrollBar();
    QTRY_VERIFY(bar->maximum() > 0);
    QTRY_COMPARE(bar->value(), bar->maximum());

    view.beginReply();
    for (int i = 0; i < 40; ++i) {
        view.appendReply(QString("token %1\n\n").arg(i));
        QTest::qWait(3);
    }
    QTRY_COMPARE(view.streamingWidget()->text(), view.streamingText());
    QTest::qWait(50);
    QCOMPARE(bar->value(), bar->maximum()); // followed the growing reply

    bar->setValue(bar->maximum() / 3); // the user scrolls up to read
    QVERIFY(!view.followsBottom());
    const int readingAt = bar->value();
    const int maxBefore = bar->maximum();
    for (int i = 0; i < 40; ++i) view.appendReply(QString("more %1\n\n").arg(i));
    QTRY_VERIFY(bar->maximum() > maxBefore);
    QCOMPARE(bar->value(), readingAt); // left alone

    bar->setValue(bar->maximum()); // back at the bottom: following again
    QVERIFY(view.followsBottom());
    const int maxNow = bar->maximum();
    for (int i = 0; i < 20; ++i) view.appendReply(QString("again %1\n\n").arg(i));
    QTRY_VERIFY(bar->maximum() > maxNow);
    QTRY_COMPARE(bar->value(), bar->maximum());
}

void WidgetsTest::composerEnterSendsShiftEnterAddsLineStopWhileBusy() {
    Composer composer;
    composer.show();
    QSignalSpy sent(&composer, &Composer::sendRequested);
    QSignalSpy stopped(&composer, &Composer::stopRequested);
    QTest::keyClicks(composer.editor(), "first line");
    QTest::keyClick(composer.editor(), Qt::Key_Return, Qt::ShiftModifier);
    QTest::keyClicks(composer.editor(), "second line");
    QCOMPARE(sent.count(), 0);
    QTest::keyClick(composer.editor(), Qt::Key_Return);
    QCOMPARE(sent.count(), 1);
    QCOMPARE(sent.first().first().toString(), QString("first line\nsecond line"));

    composer.setBusy(true);
    QCOMPARE(composer.sendButton()->text(), QString("Stop"));
    QTest::keyClick(composer.editor(), Qt::Key_Return); // no second send while a reply is written
    QCOMPARE(sent.count(), 1);
    QTest::mouseClick(composer.sendButton(), Qt::LeftButton);
    QCOMPARE(stopped.count(), 1);
    composer.setBusy(false);
    QCOMPARE(composer.sendButton()->text(), QString("Send"));
    composer.clearAfterSend();
    QTest::keyClick(composer.editor(), Qt::Key_Return); // empty: nothing to send
    QCOMPARE(sent.count(), 1);
}

void WidgetsTest::composerEditModeResendsTheEditedMessage() {
    Composer composer;
    composer.show();
    QSignalSpy resent(&composer, &Composer::editResendRequested);
    QSignalSpy sent(&composer, &Composer::sendRequested);
    composer.beginEdit(42, "old question");
    QVERIFY(composer.isEditing());
    QCOMPARE(composer.editor()->toPlainText(), QString("old question"));
    QTest::keyClicks(composer.editor(), " - better");
    QTest::keyClick(composer.editor(), Qt::Key_Return);
    QCOMPARE(sent.count(), 0);
    QCOMPARE(resent.count(), 1);
    QCOMPARE(resent.first()[0].toLongLong(), 42);
    QCOMPARE(resent.first()[1].toString(), QString("old question - better"));
    composer.cancelEdit();
    QVERIFY(!composer.isEditing());
    QVERIFY(composer.editor()->toPlainText().isEmpty());
}

void WidgetsTest::conversationListOrderSearchRenameDelete() {
    ConversationStore store;
    QVERIFY(store.open(QString::fromStdString(parley::test::makeTempDir()) + "/parley.db"));
    const qint64 a = store.createConversation("Pasta");
    store.appendMessage(a, "user", "How much salt for the water?");
    const qint64 b = store.createConversation("Rust");
    store.appendMessage(b, "user", "What is a borrow checker?");
    const qint64 c = store.createConversation("Empty");

    ConversationList list(store);
    list.show();
    QCOMPARE(list.shownIds(), (QList<qint64>{c, b, a}));
    store.appendMessage(a, "assistant", "A tablespoon of salt.");
    QCOMPARE(list.shownIds(), (QList<qint64>{a, c, b})); // refreshed, most recent first

    QSignalSpy activated(&list, &ConversationList::conversationActivated);
    list.list()->setCurrentRow(2);
    QCOMPARE(activated.count(), 1);
    QCOMPARE(activated.first().first().toLongLong(), b);

    QTest::keyClicks(list.searchField(), "borrow");
    QCOMPARE(list.shownIds(), (QList<qint64>{b}));
    QVERIFY(list.list()->item(0)->text().contains("[borrow]"));
    list.searchField()->clear();
    QTest::keyClicks(list.searchField(), "salt");
    QCOMPARE(list.shownIds(), (QList<qint64>{a})); // two messages match, one row
    list.searchField()->clear();
    QCOMPARE(list.shownIds().size(), 3);

    QSignalSpy renamed(&list, &ConversationList::renameRequested);
    list.list()->item(0)->setText("Pasta night"); // what the in-place editor does on Enter
    QCOMPARE(renamed.count(), 1);
    QCOMPARE(renamed.first()[0].toLongLong(), a);
    QCOMPARE(renamed.first()[1].toString(), QString("Pasta night"));

    QSignalSpy deleted(&list, &ConversationList::deleteRequested);
    answerNextMessageBox(QMessageBox::Cancel);
    list.confirmDelete(b);
    QCOMPARE(deleted.count(), 0);
    answerNextMessageBox(QMessageBox::Yes);
    list.confirmDelete(b);
    QCOMPARE(deleted.count(), 1);
    QCOMPARE(deleted.first().first().toLongLong(), b);
}

void WidgetsTest::settingsDialogSavesDefaultsAndConversationPrompt() {
    Settings settings(QString::fromStdString(parley::test::makeTempDir()) + "/parley.conf");
    ConversationSettings conversation;
    conversation.systemPrompt = "Talk like a pirate.";
    conversation.sampling.temperature = 0.1;
    SettingsDialog dialog(settings, conversation);
    QCOMPARE(dialog.conversationSystemPrompt(), QString("Talk like a pirate."));
    QCOMPARE(dialog.sampling().temperature, 0.1);
    dialog.findChild<QPlainTextEdit*>("defaultSystemPrompt")->setPlainText("Be concise.");
    dialog.findChild<QPlainTextEdit*>("conversationSystemPrompt")->setPlainText("Talk like a robot.");
    auto* temperature = dialog.findChildren<QDoubleSpinBox*>().first();
    temperature->setValue(1.25);
    auto* kvCache = dialog.findChild<QComboBox*>("kvCache");
    QVERIFY(kvCache);
    QCOMPARE(kvCache->currentData().toString(), QString("auto"));
    kvCache->setCurrentIndex(kvCache->findData("int8"));
    dialog.saveTo(settings);
    QCOMPARE(settings.systemPrompt(), QString("Be concise."));
    QCOMPARE(settings.sampling().temperature, 1.25);
    QCOMPARE(settings.model().kvCache, QString("int8"));
    QCOMPARE(dialog.conversationSystemPrompt(), QString("Talk like a robot."));
    QCOMPARE(dialog.sampling().temperature, 1.25);

    SettingsDialog noConversation(settings, std::nullopt);
    QVERIFY(!noConversation.hasConversation());
    QVERIFY(!noConversation.findChild<QPlainTextEdit*>("conversationSystemPrompt")->isEnabled());
}

QTEST_MAIN(WidgetsTest)
#include "test_app_widgets.moc"
