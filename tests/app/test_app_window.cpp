// The real window with the real default model, driven by QTest as a user would: the first start
// loads the model by itself with a welcome line; a question typed into the composer and sent with
// Enter streams its reply into the view; Esc stops it; Regenerate and editing an earlier message
// replace what followed; the conversation is listed and comes back, intact, after the window is
// destroyed and a new one opens the same database. Also: no model installed (the offer to open
// one, drag and drop), keyboard shortcuts, and (with PARLEY_SCREENSHOT=file) a screenshot.
#include "app/chat_controller.h"
#include "app/conversation_store.h"
#include "app/engine_worker.h"
#include "app/settings.h"
#include "support.h"
#include "ui/chat_view.h"
#include "ui/composer.h"
#include "ui/conversation_list.h"
#include "ui/main_window.h"
#include "ui/message_widget.h"

#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QDialog>
#include <QElapsedTimer>
#include <QFileInfo>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QMessageBox>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QTest>
#include <QTimer>
#include <QToolButton>

#include <csignal>

using namespace parley::app;
using namespace parley::ui;

namespace {
// One run of Parley on a database, put together as main.cpp does.
struct Parley {
    Parley(const QString& db, const QString& conf) {
        QVERIFY2(store.open(db), qPrintable(store.lastError()));
        settings = std::make_unique<Settings>(conf);
        ModelSettings m;
        m.backend = "cpu";
        m.contextLength = 1024;
        settings->setModel(m);
        SamplingSettings s;
        s.temperature = 0; // the same words every run
        s.maxNewTokens = 300;
        settings->setSampling(s);
        controller = std::make_unique<ChatController>(store, *settings, worker);
        window = std::make_unique<MainWindow>(*controller);
        window->resize(1100, 720);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window.get()));
        window->activateWindow();
    }
    ~Parley() {
        window.reset();
        controller.reset();
    }
    ConversationStore store;
    std::unique_ptr<Settings> settings;
    EngineWorker worker;
    std::unique_ptr<ChatController> controller;
    std::unique_ptr<MainWindow> window;
};

QStringList notices(const MainWindow& w) {
    QStringList out;
    for (QLabel* l : w.chatView()->findChildren<QLabel*>("notice")) out << l->text();
    return out;
}

void type(MainWindow& w, const QString& text) {
    QPlainTextEdit* editor = w.composer()->editor();
    editor->setFocus();
    QTest::keyClicks(editor, text);
    QTest::keyClick(editor, Qt::Key_Return);
}

bool waitIdle(ChatController& c, int ms = 90000) {
    return QTest::qWaitFor([&] { return !c.isGenerating(); }, ms);
}

const char* kLong = "Write a long, detailed story about a dragon who learns to bake bread in a small village.";
} // namespace

class WindowTest : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void chatStreamsStopsAndComesBackAfterRestart();
    void shortcutsOpenSearchSettingsAndNewChat();
    void withoutAModelParleyOffersToOpenOneAndAcceptsADrop();
    void theParleyProgramNamesItselfAndRunsOncePerDatabase();
    void screenshot();

private:
    QString model_;
    QString dir_;
};

void WindowTest::initTestCase() {
    model_ = QString::fromStdString(parley::test::defaultModelPath());
    if (model_.isEmpty()) QSKIP("the default model is not installed (scripts/setup.sh fetches it)");
    // The models folder the app looks in at start is where the default model is.
    qputenv("PARLEY_MODELS_DIR", QFileInfo(model_).absolutePath().toUtf8());
    dir_ = QString::fromStdString(parley::test::makeTempDir());
}

void WindowTest::chatStreamsStopsAndComesBackAfterRestart() {
    const QString db = dir_ + "/parley.db", conf = dir_ + "/parley.conf";
    QList<Message> before;
    qint64 conversation = 0;
    {
        Parley app(db, conf);
        MainWindow& w = *app.window;
        ChatController& c = *app.controller;
        QCOMPARE(w.windowIcon().isNull(), false);

        // First start: the default model loads by itself and Parley says so.
        c.start();
        QTRY_VERIFY_WITH_TIMEOUT(c.hasModel(), 60000);
        QVERIFY2(w.modelStatus()->text().contains("SmolLM2-135M-Instruct"), qPrintable(w.modelStatus()->text()));
        QVERIFY(w.modelStatus()->text().contains("int4"));
        QVERIFY(w.modelStatus()->text().contains("cpu"));
        QVERIFY(!w.modelStatus()->toolTip().isEmpty()); // the reason for precision and device
        QVERIFY2(notices(w).join(QChar(10)).contains("Welcome to Parley. SmolLM2-135M-Instruct.Q4_1 (135M parameters"), qPrintable(notices(w).join('\n')));

        // Type a question, press Enter: the reply streams into the view.
        type(w, kLong);
        QTRY_COMPARE(w.chatView()->messageWidgets().size(), 2);
        QCOMPARE(w.chatView()->messageWidgets()[0]->text(), QString(kLong));
        QCOMPARE(w.composer()->sendButton()->text(), QString("Stop"));
        QVERIFY(w.composer()->editor()->toPlainText().isEmpty());
        MessageWidget* reply = w.chatView()->streamingWidget();
        QVERIFY(reply);
        QTRY_VERIFY_WITH_TIMEOUT(reply->text().size() > 40, 60000);
        QVERIFY(c.isGenerating());
        // The reply is already in the database, marked streaming.
        conversation = c.currentConversationId();
        QVERIFY(conversation);
        QTRY_VERIFY(app.store.messages(conversation).size() == 2);
        QCOMPARE(app.store.messages(conversation)[1].status, MessageStatus::Streaming);

        // Esc stops it.
        QElapsedTimer stopClock;
        stopClock.start();
        QTest::keyClick(w.composer()->editor(), Qt::Key_Escape);
        QVERIFY(waitIdle(c, 5000));
        QVERIFY2(stopClock.elapsed() < 1500, qPrintable(QString::number(stopClock.elapsed())));
        QCOMPARE(w.composer()->sendButton()->text(), QString("Send"));
        const Message stopped = app.store.messages(conversation)[1];
        QCOMPARE(stopped.status, MessageStatus::Stopped);
        QCOMPARE(reply->status(), MessageStatus::Stopped);
        QCOMPARE(reply->text(), stopped.content);
        QVERIFY(reply->findChild<QLabel*>("statusLabel")->text().contains("stopped"));
        QVERIFY2(w.speedStatus()->text().contains("tokens/s"), qPrintable(w.speedStatus()->text()));
        QVERIFY2(w.contextStatus()->text().contains("/ 1024"), qPrintable(w.contextStatus()->text()));

        // The conversation is listed first, titled by the question.
        QCOMPARE(w.conversationList()->shownIds().first(), conversation);
        QVERIFY(w.conversationList()->list()->item(0)->text().startsWith("Write a long, detailed story"));

        // A second question is answered in full.
        type(w, "What is the capital of France? Answer in one sentence.");
        QTRY_VERIFY(c.isGenerating());
        QVERIFY(waitIdle(c));
        QList<Message> m = app.store.messages(conversation);
        QCOMPARE(m.size(), 4);
        QCOMPARE(m[3].status, MessageStatus::Complete);
        QVERIFY2(m[3].content.contains("Paris"), qPrintable(m[3].content));
        QCOMPARE(w.chatView()->messageWidgets().last()->text(), m[3].content);

        // Regenerate replaces the last reply.
        const qint64 firstAnswer = m[3].id;
        QVERIFY(w.composer()->regenerateButton()->isEnabled());
        QTest::mouseClick(w.composer()->regenerateButton(), Qt::LeftButton);
        QTRY_VERIFY(c.isGenerating());
        QVERIFY(waitIdle(c));
        m = app.store.messages(conversation);
        QCOMPARE(m.size(), 4);
        QVERIFY(m[3].id != firstAnswer);
        QVERIFY(!app.store.message(firstAnswer));
        QVERIFY2(m[3].content.contains("Paris"), qPrintable(m[3].content));

        // Edit the second question and send it again: it and its reply are replaced.
        MessageWidget* question = w.chatView()->messageWidgets()[2];
        QCOMPARE(question->role(), QString("user"));
        QVERIFY(question->editButton()->isVisible());
        QTest::mouseClick(question->editButton(), Qt::LeftButton);
        QVERIFY(w.composer()->isEditing());
        QCOMPARE(w.composer()->editor()->toPlainText(), QString("What is the capital of France? Answer in one sentence."));
        w.composer()->editor()->selectAll();
        type(w, "What is the capital of Italy? Answer in one sentence.");
        QTRY_VERIFY(c.isGenerating());
        QVERIFY(waitIdle(c));
        m = app.store.messages(conversation);
        QCOMPARE(m.size(), 4);
        QCOMPARE(m[2].content, QString("What is the capital of Italy? Answer in one sentence."));
        QVERIFY2(m[3].content.contains("Rome"), qPrintable(m[3].content));
        QCOMPARE(w.chatView()->messageWidgets().size(), 4);

        // Copy a message.
        QTest::mouseClick(w.chatView()->messageWidgets()[3]->copyButton(), Qt::LeftButton);
        QCOMPARE(QApplication::clipboard()->text(), m[3].content);
        before = m;
    } // the window, the worker and the database close

    // A new window on the same database: the conversation is listed and opens intact.
    Parley app(db, conf);
    MainWindow& w = *app.window;
    QCOMPARE(w.conversationList()->shownIds(), (QList<qint64>{conversation}));
    w.conversationList()->list()->setCurrentRow(0);
    QCOMPARE(app.controller->currentConversationId(), conversation);
    const QList<MessageWidget*> shown = w.chatView()->messageWidgets();
    QCOMPARE(shown.size(), before.size());
    for (int i = 0; i < before.size(); ++i) {
        QCOMPARE(shown[i]->role(), before[i].role);
        QCOMPARE(shown[i]->text(), before[i].content);
        QCOMPARE(shown[i]->status(), before[i].status);
    }
    QCOMPARE(shown[1]->status(), MessageStatus::Stopped);
    QVERIFY(w.windowTitle().contains("Write a long, detailed story"));
}

void WindowTest::shortcutsOpenSearchSettingsAndNewChat() {
    const QString dir = QString::fromStdString(parley::test::makeTempDir());
    Parley app(dir + "/parley.db", dir + "/parley.conf");
    MainWindow& w = *app.window;
    const qint64 a = app.store.createConversation("Bread");
    app.store.appendMessage(a, "user", "How do I knead dough?");
    const qint64 b = app.store.createConversation("Stars");
    app.store.appendMessage(b, "user", "Why do stars twinkle?");
    w.conversationList()->list()->setCurrentRow(1);
    QCOMPARE(app.controller->currentConversationId(), a);
    QCOMPARE(w.chatView()->messageWidgets().size(), 1);

    QVERIFY(QTest::qWaitForWindowActive(&w));
    QTest::keyClick(&w, Qt::Key_N, Qt::ControlModifier); // Ctrl+N: a new, empty chat
    QCOMPARE(app.controller->currentConversationId(), 0);
    QCOMPARE(w.chatView()->messageWidgets().size(), 0);

    QTest::keyClick(&w, Qt::Key_F, Qt::ControlModifier); // Ctrl+F: search
    QVERIFY(w.conversationList()->searchField()->hasFocus());
    QTest::keyClicks(w.conversationList()->searchField(), "twinkle");
    QCOMPARE(w.conversationList()->shownIds(), (QList<qint64>{b}));
    QTest::keyClick(w.conversationList()->searchField(), Qt::Key_Escape); // Esc clears the search
    QCOMPARE(w.conversationList()->shownIds().size(), 2);

    bool opened = false;
    QTimer::singleShot(200, [&] {
        for (QWidget* top : QApplication::topLevelWidgets())
            if (top->objectName() == "settingsDialog" && top->isVisible()) {
                opened = true;
                static_cast<QDialog*>(top)->reject();
            }
    });
    QTest::keyClick(&w, Qt::Key_Comma, Qt::ControlModifier); // Ctrl+,: settings
    QVERIFY(opened);

    // Delete asks first.
    QTimer::singleShot(100, [] {
        for (QWidget* top : QApplication::topLevelWidgets())
            if (auto* box = qobject_cast<QMessageBox*>(top); box && box->isVisible()) box->button(QMessageBox::Yes)->click();
    });
    w.conversationList()->confirmDelete(a);
    QVERIFY(!app.store.conversation(a));
    QCOMPARE(w.conversationList()->shownIds(), (QList<qint64>{b}));
}

void WindowTest::withoutAModelParleyOffersToOpenOneAndAcceptsADrop() {
    const QString dir = QString::fromStdString(parley::test::makeTempDir());
    const QByteArray modelsBefore = qgetenv("PARLEY_MODELS_DIR");
    qputenv("PARLEY_MODELS_DIR", (dir + "/no-models-here").toUtf8());
    Parley app(dir + "/parley.db", dir + "/parley.conf");
    MainWindow& w = *app.window;
    app.controller->start();
    qputenv("PARLEY_MODELS_DIR", modelsBefore);
    QTRY_VERIFY(notices(w).join('\n').contains("No model is installed"));
    bool hasOpenButton = false;
    for (QPushButton* b : w.chatView()->findChildren<QPushButton*>()) hasOpenButton = hasOpenButton || b->text() == "Open model…";
    QVERIFY(hasOpenButton);
    // Sending now says what to do instead of failing silently.
    type(w, "Hello?");
    QVERIFY(notices(w).join('\n').contains("No model is loaded"));
    QVERIFY(!app.controller->isGenerating());

    // A bad file dropped on the window is refused by the engine with its name.
    const QString junk = dir + "/notamodel.gguf";
    parley::test::writeFileBytes(junk.toStdString(), std::vector<uint8_t>(1000, 0x42));
    auto drop = [&](const QString& path) {
        QMimeData mime;
        mime.setUrls({QUrl::fromLocalFile(path)});
        QDragEnterEvent enter(QPoint(300, 300), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(&w, &enter);
        if (!enter.isAccepted()) return false;
        QDropEvent dropEvent(QPointF(300, 300), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
        QApplication::sendEvent(&w, &dropEvent);
        return true;
    };
    QVERIFY(!drop(dir + "/readme.txt")); // not a model: not even accepted
    QVERIFY(drop(junk));
    QTRY_VERIFY_WITH_TIMEOUT(notices(w).join('\n').contains("notamodel.gguf"), 30000);
    QVERIFY(!app.controller->hasModel());
    // The real model, dropped: it loads and answers.
    QVERIFY(drop(model_));
    QTRY_VERIFY_WITH_TIMEOUT(app.controller->hasModel(), 60000);
    type(w, "Say hi.");
    QTRY_VERIFY(app.controller->isGenerating());
    QVERIFY(waitIdle(*app.controller));
    QCOMPARE(app.store.messages(app.controller->currentConversationId()).size(), 2);
}

void WindowTest::theParleyProgramNamesItselfAndRunsOncePerDatabase() {
    const QString parley = QString::fromStdString(parley::test::envPath("PARLEY_BIN_DIR", "parley"));
    QVERIFY2(QFileInfo::exists(parley), qPrintable(parley));
    QProcess version;
    version.start(parley, {"--version"});
    QVERIFY(version.waitForFinished(20000));
    QVERIFY2(version.readAllStandardOutput().startsWith("Parley "), "the application name");

    const QString dir = QString::fromStdString(parley::test::makeTempDir());
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("PARLEY_MODELS_DIR", dir + "/models"); // none: the first instance only shows the offer
    env.insert("PARLEY_CONFIG_DIR", dir);
    const QStringList args{"--database", dir + "/parley.db"};
    auto startParley = [&](QProcess& p) {
        p.setProcessEnvironment(env);
        p.start(parley, args);
        return p.waitForStarted(10000);
    };
    QProcess first;
    QVERIFY(startParley(first));
    QTRY_VERIFY_WITH_TIMEOUT(QFileInfo::exists(dir + "/parley.db.lock"), 20000); // it holds the database
    // A second launch on the same database hands over to the first and leaves.
    QProcess second;
    QVERIFY(startParley(second));
    QVERIFY(second.waitForFinished(20000));
    QCOMPARE(second.exitCode(), 0);
    QVERIFY2(second.readAllStandardError().contains("already running"), "the second instance says why it left");
    QCOMPARE(first.state(), QProcess::Running);
    // Killed, the first leaves its lock and socket behind; the next launch takes both over.
    ::kill(pid_t(first.processId()), SIGKILL);
    QVERIFY(first.waitForFinished(10000));
    QProcess third;
    QVERIFY(startParley(third));
    QTest::qWait(1500);
    QCOMPARE(third.state(), QProcess::Running);
    ConversationStore probe; // the running third instance holds the database now
    QVERIFY(!probe.open(dir + "/parley.db"));
    QVERIFY2(probe.lastError().contains("process " + QString::number(third.processId())), qPrintable(probe.lastError()));
    third.terminate();
    QVERIFY(third.waitForFinished(10000));
}

void WindowTest::screenshot() {
    const QString path = qEnvironmentVariable("PARLEY_SCREENSHOT");
    if (path.isEmpty()) QSKIP("set PARLEY_SCREENSHOT=file.png to take the screenshot (scripts: docs/app.md)");
    const QString dir = QString::fromStdString(parley::test::makeTempDir());
    Parley app(dir + "/parley.db", dir + "/parley.conf");
    MainWindow& w = *app.window;
    for (const char* title : {"Sourdough starter tips", "Why is the sky blue?", "Packing list for Iceland"})
        app.store.appendMessage(app.store.createConversation(title), "user", title);
    app.controller->start();
    QTRY_VERIFY_WITH_TIMEOUT(app.controller->hasModel(), 60000);
    type(w, "What is the capital of France? Answer in one sentence.");
    QVERIFY(waitIdle(*app.controller));
    type(w, "Write a Python function that reverses a string. Show an example and explain step by step how it works.");
    // Mid-reply, once the code block is on screen.
    QTRY_VERIFY_WITH_TIMEOUT(w.chatView()->streamingText().count('\n') >= 5 || !app.controller->isGenerating(), 90000);
    QTest::qWait(40);
    QVERIFY(w.grab().save(path));
    app.controller->stop();
    QVERIFY(waitIdle(*app.controller));
}

QTEST_MAIN(WindowTest)
#include "test_app_window.moc"
