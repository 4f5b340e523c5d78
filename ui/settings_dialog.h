#pragma once
// Settings (Ctrl+,): the defaults for new conversations (system prompt and sampling), the model
// settings (precision, backend, context length), and this conversation's own system prompt and
// sampling. Saved to QSettings (app::Settings) and to the conversation (ConversationStore).
#include "app/generation_settings.h"
#include "app/settings.h"

#include <QDialog>
#include <optional>

class QComboBox;
class QDoubleSpinBox;
class QPlainTextEdit;
class QSpinBox;

namespace parley::ui {

class SettingsDialog : public QDialog {
    Q_OBJECT
public:
    // `conversation`: the open conversation's settings, or nothing when no conversation is open.
    SettingsDialog(const parley::app::Settings& settings, std::optional<parley::app::ConversationSettings> conversation,
                   QWidget* parent = nullptr);

    QString defaultSystemPrompt() const;
    QString conversationSystemPrompt() const;
    parley::app::SamplingSettings sampling() const;
    parley::app::ModelSettings model() const;
    bool hasConversation() const { return hasConversation_; }
    // Writes the dialog's values: defaults and model settings into `settings`.
    void saveTo(parley::app::Settings& settings) const;

private:
    bool hasConversation_;
    QPlainTextEdit* defaultPrompt_;
    QPlainTextEdit* conversationPrompt_;
    QDoubleSpinBox* temperature_;
    QSpinBox* topK_;
    QDoubleSpinBox* topP_;
    QDoubleSpinBox* minP_;
    QDoubleSpinBox* repeatPenalty_;
    QSpinBox* maxNewTokens_;
    QSpinBox* seed_;
    QSpinBox* context_;
    QComboBox* precision_;
    QComboBox* kvCache_;
    QComboBox* backend_;
};

} // namespace parley::ui
