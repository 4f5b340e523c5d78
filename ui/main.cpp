// parley: the desktop app. Opens the conversation database (one Parley per database), starts the
// engine worker and shows the window; the default model loads by itself.
#include "app/chat_controller.h"
#include "app/conversation_store.h"
#include "app/engine_worker.h"
#include "app/paths.h"
#include "app/settings.h"
#include "app/single_instance.h"
#include "ui/app_icon.h"
#include "ui/main_window.h"

#include <QApplication>
#include <QCommandLineParser>
#include <QMessageBox>

int main(int argc, char** argv) {
    QApplication app(argc, argv);
    QApplication::setApplicationName("Parley");
    QApplication::setApplicationDisplayName("Parley");
    QApplication::setApplicationVersion(PARLEY_VERSION);
    QApplication::setDesktopFileName("parley");
    QApplication::setWindowIcon(parley::ui::appIcon());

    QCommandLineParser args;
    args.setApplicationDescription("Chat with a language model that runs on your own computer.");
    args.addHelpOption();
    args.addVersionOption();
    QCommandLineOption database("database", "The conversation database (default: " + parley::app::databasePath() + ").", "file",
                                parley::app::databasePath());
    QCommandLineOption model("model", "A model to load instead of the last one used.", "path");
    args.addOption(database);
    args.addOption(model);
    args.process(app);

    const QString dbPath = args.value(database);
    parley::app::SingleInstance instance(dbPath);
    if (!instance.claim()) {
        std::fprintf(stderr, "parley: already running with %s; showing that window instead\n", qPrintable(dbPath));
        return 0;
    }
    parley::app::ConversationStore store;
    if (!store.open(dbPath)) {
        QMessageBox::critical(nullptr, "Parley", store.lastError());
        return 1;
    }
    parley::app::Settings settings(parley::app::settingsFilePath());
    if (args.isSet(model)) settings.setLastModelPath(args.value(model));
    parley::app::EngineWorker worker;
    parley::app::ChatController controller(store, settings, worker);
    parley::ui::MainWindow window(controller);
    QObject::connect(&instance, &parley::app::SingleInstance::activationRequested, &window, &parley::ui::MainWindow::bringToFront);
    window.show();
    controller.start();
    return app.exec();
}
