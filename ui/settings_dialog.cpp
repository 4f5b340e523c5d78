#include "ui/settings_dialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QLabel>
#include <QPlainTextEdit>
#include <QSpinBox>
#include <QVBoxLayout>

namespace parley::ui {

using parley::app::ConversationSettings;
using parley::app::ModelSettings;
using parley::app::SamplingSettings;

SettingsDialog::SettingsDialog(const parley::app::Settings& settings, std::optional<ConversationSettings> conversation,
                               QWidget* parent)
    : QDialog(parent), hasConversation_(conversation.has_value()) {
    setObjectName("settingsDialog");
    setWindowTitle(tr("Settings"));
    auto* layout = new QVBoxLayout(this);

    auto* prompts = new QGroupBox(tr("System prompt"), this);
    auto* promptForm = new QFormLayout(prompts);
    defaultPrompt_ = new QPlainTextEdit(settings.systemPrompt(), prompts);
    defaultPrompt_->setObjectName("defaultSystemPrompt");
    defaultPrompt_->setPlaceholderText(tr("Empty: the model's own default"));
    defaultPrompt_->setMaximumHeight(80);
    conversationPrompt_ = new QPlainTextEdit(conversation ? conversation->systemPrompt : QString(), prompts);
    conversationPrompt_->setObjectName("conversationSystemPrompt");
    conversationPrompt_->setMaximumHeight(80);
    conversationPrompt_->setEnabled(hasConversation_);
    conversationPrompt_->setPlaceholderText(hasConversation_ ? tr("Empty: the model's own default")
                                                             : tr("No conversation is open"));
    promptForm->addRow(tr("For new chats:"), defaultPrompt_);
    promptForm->addRow(tr("For this chat:"), conversationPrompt_);
    layout->addWidget(prompts);

    const SamplingSettings s = conversation ? conversation->sampling : settings.sampling();
    auto* sampling = new QGroupBox(hasConversation_ ? tr("Sampling (this chat and new chats)") : tr("Sampling"), this);
    auto* form = new QFormLayout(sampling);
    auto doubleBox = [&](double min, double max, double step, double value, int decimals = 2) {
        auto* b = new QDoubleSpinBox(sampling);
        b->setRange(min, max);
        b->setSingleStep(step);
        b->setDecimals(decimals);
        b->setValue(value);
        return b;
    };
    auto intBox = [&](int min, int max, int value) {
        auto* b = new QSpinBox(sampling);
        b->setRange(min, max);
        b->setValue(value);
        return b;
    };
    temperature_ = doubleBox(0, 5, 0.05, s.temperature);
    temperature_->setToolTip(tr("0 always picks the most likely token"));
    topK_ = intBox(0, 100000, s.topK);
    topK_->setSpecialValueText(tr("off"));
    topP_ = doubleBox(0, 1, 0.01, s.topP);
    minP_ = doubleBox(0, 1, 0.01, s.minP);
    repeatPenalty_ = doubleBox(0.5, 5, 0.01, s.repeatPenalty);
    maxNewTokens_ = intBox(1, 1 << 20, s.maxNewTokens);
    seed_ = intBox(-1, std::numeric_limits<int>::max(), int(std::min<qint64>(s.seed, std::numeric_limits<int>::max())));
    seed_->setSpecialValueText(tr("random"));
    form->addRow(tr("Temperature:"), temperature_);
    form->addRow(tr("Top-k:"), topK_);
    form->addRow(tr("Top-p:"), topP_);
    form->addRow(tr("Min-p:"), minP_);
    form->addRow(tr("Repetition penalty:"), repeatPenalty_);
    form->addRow(tr("Max new tokens:"), maxNewTokens_);
    form->addRow(tr("Seed:"), seed_);
    layout->addWidget(sampling);

    const ModelSettings m = settings.model();
    auto* model = new QGroupBox(tr("Model (reloads the model when changed)"), this);
    auto* modelForm = new QFormLayout(model);
    context_ = intBox(128, 1 << 20, m.contextLength);
    context_->setSingleStep(512);
    context_->setSuffix(tr(" tokens"));
    precision_ = new QComboBox(model);
    precision_->addItem(tr("Auto (the file's own)"), "auto");
    precision_->addItem("FP16", "fp16");
    precision_->addItem("INT8", "int8");
    precision_->addItem("INT4", "int4");
    precision_->setCurrentIndex(std::max(0, precision_->findData(m.precision)));
    backend_ = new QComboBox(model);
    backend_->addItem(tr("Auto"), "auto");
    backend_->addItem(tr("GPU 0"), "gpu0");
    backend_->addItem(tr("GPU 1"), "gpu1");
    backend_->addItem(tr("CPU"), "cpu");
    if (backend_->findData(m.backend) < 0) backend_->addItem(m.backend, m.backend);
    backend_->setCurrentIndex(std::max(0, backend_->findData(m.backend)));
    // The 8-bit K/V cache halves the memory a long context takes (engine/kv_cache_format.h).
    kvCache_ = new QComboBox(model);
    kvCache_->setObjectName("kvCache");
    kvCache_->addItem(tr("Auto (8-bit only where FP16 does not fit)"), "auto");
    kvCache_->addItem(tr("FP16 (exact)"), "fp16");
    kvCache_->addItem(tr("8-bit (half the memory)"), "int8");
    kvCache_->setCurrentIndex(std::max(0, kvCache_->findData(m.kvCache)));
    modelForm->addRow(tr("Context length:"), context_);
    modelForm->addRow(tr("Precision:"), precision_);
    modelForm->addRow(tr("K/V cache:"), kvCache_);
    modelForm->addRow(tr("Backend:"), backend_);
    layout->addWidget(model);

    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
    layout->addWidget(buttons);
}

QString SettingsDialog::defaultSystemPrompt() const { return defaultPrompt_->toPlainText().trimmed(); }
QString SettingsDialog::conversationSystemPrompt() const { return conversationPrompt_->toPlainText().trimmed(); }

SamplingSettings SettingsDialog::sampling() const {
    SamplingSettings s;
    s.temperature = temperature_->value();
    s.topK = topK_->value();
    s.topP = topP_->value();
    s.minP = minP_->value();
    s.repeatPenalty = repeatPenalty_->value();
    s.maxNewTokens = maxNewTokens_->value();
    s.seed = seed_->value();
    return s.clamped();
}

ModelSettings SettingsDialog::model() const {
    ModelSettings m;
    m.contextLength = context_->value();
    m.precision = precision_->currentData().toString();
    m.backend = backend_->currentData().toString();
    m.kvCache = kvCache_->currentData().toString();
    return m;
}

void SettingsDialog::saveTo(parley::app::Settings& settings) const {
    settings.setSystemPrompt(defaultSystemPrompt());
    settings.setSampling(sampling());
    ModelSettings m = model();
    m.cpuThreads = settings.model().cpuThreads;
    settings.setModel(m);
    settings.sync();
}

} // namespace parley::ui
