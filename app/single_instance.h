#pragma once
// One Parley per database (issue 4: a second instance must not corrupt the database). The first
// instance listens on a local socket named after the user and the database path; a second one
// finds it, asks it to bring its window forward, and quits. The database lock in
// ConversationStore is the hard guarantee behind this (two instances racing at start-up both pass
// here, but only one gets the lock); this part is what makes a second launch friendly.
#include <QObject>
#include <QString>

class QLocalServer;

namespace parley::app {

class SingleInstance : public QObject {
    Q_OBJECT
public:
    explicit SingleInstance(const QString& databasePath, QObject* parent = nullptr);
    ~SingleInstance() override;

    // True: this is the first instance (it now listens). False: another one runs and was asked
    // to show itself.
    bool claim();
    QString serverName() const { return name_; }

signals:
    void activationRequested();

private:
    QString name_;
    QLocalServer* server_ = nullptr;
};

} // namespace parley::app
