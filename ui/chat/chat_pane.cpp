#include "chat/chat_pane.h"

#include "chat/message_delegate.h"
#include "save_file.h"
#include "common/error.h"
#include "common/units.h"

#include <QApplication>
#include <QCheckBox>
#include <QClipboard>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDoubleSpinBox>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QMimeData>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QScrollBar>
#include <QShortcut>
#include <QSpinBox>
#include <QStandardItemModel>
#include <QUrl>
#include <QVBoxLayout>

namespace eq::ui {
namespace {
QString bytes(std::uint64_t b) { return QString::fromStdString(formatBytes(b)); }
}  // namespace

ChatPane::ChatPane(QWidget* parent) : QWidget(parent) {
  setAcceptDrops(true);
  buildUi();
  connect(&engine_, &ChatEngine::estimated, this, [this](const MemoryEstimate& m) {
    if (m.path != model_->currentData().toString()) return;
    memory_->setText(tr("Needs %1: %2 of weights and %3 of KV cache for %4 tokens; %5 available now%6")
                         .arg(bytes(m.weights + m.kvCache), bytes(m.weights), bytes(m.kvCache))
                         .arg(m.context)
                         .arg(bytes(m.available), m.fits() ? QString() : tr(" - it does not fit")));
    memory_->setStyleSheet(m.fits() ? QString() : "color: #b00020");
  });
  connect(&engine_, &ChatEngine::estimateFailed, this, [this](const QString& path, const QString& error) {
    if (path == model_->currentData().toString()) memory_->setText(error);
  });
  connect(&engine_, &ChatEngine::loadProgress, this, [this](const Progress& p) {
    status_->setText(tr("Loading: %1 / %2 %3").arg(p.done).arg(p.total).arg(QString::fromStdString(std::string(unitName(p.unit)))));
  });
  connect(&engine_, &ChatEngine::loaded, this, [this](const LoadedModel& m) {
    status_->setText(tr("%1 loaded: %2 of weights in memory, context %3 tokens%4")
                         .arg(m.label, bytes(m.weightBytes))
                         .arg(m.contextLength)
                         .arg(m.hasChatTemplate ? QString() : tr("; it has no chat template (override it to chat)")));
    applyDefaults(m.defaults);
    messages_.clear();
    refreshButtons();
    emit modelLoaded(m.path);
  });
  connect(&engine_, &ChatEngine::loadFailed, this, [this](const JobError& e) {
    status_->setText(e.code == static_cast<int>(Errc::Cancelled) ? tr("Loading stopped") : e.message);
    if (e.code != static_cast<int>(Errc::Cancelled)) messages_.addNote(e.message);
    refreshButtons();
  });
  connect(&engine_, &ChatEngine::answerStarted, this, [this] { status_->setText(tr("Answering...")); });
  connect(&engine_, &ChatEngine::delta, this, [this](const QString& d) {
    messages_.appendToAnswer(d);
    view_->scrollToBottom();
  });
  connect(&engine_, &ChatEngine::answered, this, [this](const ChatStats& s) {
    messages_.finishAnswer(s);
    if (s.droppedMessages > 0)
      messages_.addNote(tr("The conversation no longer fits the context of %1 tokens: its %2 oldest messages are "
                           "left out from now on (the system prompt stays).").arg(s.contextLength).arg(s.droppedMessages));
    status_->setText(ChatMessageModel::statsText(s));
    view_->scrollToBottom();
    refreshButtons();
  });
  connect(&engine_, &ChatEngine::answerFailed, this, [this](const JobError& e) {
    const bool stopped = e.code == static_cast<int>(Errc::Cancelled);
    messages_.finishAnswer(std::nullopt);
    messages_.addNote(stopped ? tr("Stopped.") : e.message);
    status_->setText(stopped ? tr("Stopped") : tr("The answer failed"));
    refreshButtons();
  });
  connect(&engine_, &ChatEngine::busyChanged, this, &ChatPane::refreshButtons);
  connect(&engine_, &ChatEngine::promptRendered, this, [this](const QString& prompt) {
    QDialog d(this);
    d.setWindowTitle(tr("Rendered prompt"));
    auto* l = new QVBoxLayout(&d);
    auto* text = new QPlainTextEdit(prompt);
    text->setReadOnly(true);
    text->setFont(QFont("monospace"));
    l->addWidget(text);
    auto* b = new QDialogButtonBox(QDialogButtonBox::Close);
    connect(b, &QDialogButtonBox::rejected, &d, &QDialog::reject);
    l->addWidget(b);
    d.resize(700, 500);
    d.exec();
  });
  connect(&engine_, &ChatEngine::promptFailed, this, [this](const QString& e) { messages_.addNote(e); });
  refreshButtons();
}

ChatPane::~ChatPane() = default;

void ChatPane::buildUi() {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* top = new QHBoxLayout;
  model_ = new QComboBox;
  model_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  model_->setMinimumContentsLength(30);
  model_->setToolTip(tr("The model to talk to: the file just compressed, the original, or any model or .eqz file "
                        "dropped on this pane"));
  device_ = new QComboBox;
  device_->addItem(tr("Auto (CPU)"));
  device_->addItem(tr("CPU"));
  device_->addItem(tr("CUDA"));
  if (auto* m = qobject_cast<QStandardItemModel*>(device_->model())) m->item(2)->setEnabled(false);
  device_->setItemData(2, tr("Not usable: this build has no CUDA backend yet (it arrives with the GPU release)"),
                       Qt::ToolTipRole);
  device_->setToolTip(tr("Where the model runs. Auto picks CUDA when a usable GPU and a CUDA build exist; this build "
                         "runs on the CPU."));
  context_ = new QSpinBox;
  context_->setRange(64, 131072);
  context_->setValue(4096);
  context_->setSingleStep(512);
  context_->setSuffix(tr(" tokens"));
  context_->setToolTip(tr("Context length: the KV cache is sized for it (clamped to the model's maximum)"));
  load_ = new QPushButton(tr("Load"));
  top->addWidget(new QLabel(tr("Model")));
  top->addWidget(model_, 1);
  top->addWidget(new QLabel(tr("Device")));
  top->addWidget(device_);
  top->addWidget(new QLabel(tr("Context")));
  top->addWidget(context_);
  top->addWidget(load_);
  layout->addLayout(top);
  memory_ = new QLabel;
  memory_->setWordWrap(true);
  layout->addWidget(memory_);

  auto* settings = new QGroupBox(tr("System prompt and sampling"));
  settings->setCheckable(true);
  settings->setChecked(false);
  auto* grid = new QGridLayout(settings);
  system_ = new QLineEdit;
  system_->setPlaceholderText(tr("System prompt (optional)"));
  temperature_ = new QDoubleSpinBox;
  temperature_->setRange(0, 5);
  temperature_->setSingleStep(0.1);
  temperature_->setToolTip(tr("0: greedy (the same answer every time)"));
  topK_ = new QSpinBox;
  topK_->setRange(0, 100000);
  topK_->setSpecialValueText(tr("off"));
  topP_ = new QDoubleSpinBox;
  topP_->setRange(0.01, 1);
  topP_->setSingleStep(0.05);
  topP_->setValue(1);
  minP_ = new QDoubleSpinBox;
  minP_->setRange(0, 1);
  minP_->setSingleStep(0.01);
  repetition_ = new QDoubleSpinBox;
  repetition_->setRange(0.5, 3);
  repetition_->setSingleStep(0.05);
  repetition_->setValue(1);
  seed_ = new QLineEdit("0");
  seed_->setValidator(new QIntValidator(0, 2147483647, seed_));
  maxTokens_ = new QSpinBox;
  maxTokens_->setRange(1, 65536);
  maxTokens_->setValue(512);
  grid->addWidget(system_, 0, 0, 1, 8);
  const std::pair<QString, QWidget*> fields[] = {{tr("Temperature"), temperature_}, {tr("Top-k"), topK_},
                                                 {tr("Top-p"), topP_},             {tr("Min-p"), minP_},
                                                 {tr("Repetition"), repetition_},   {tr("Seed"), seed_},
                                                 {tr("Max tokens"), maxTokens_}};
  int col = 0, row = 1;
  for (const auto& [label, w] : fields) {
    grid->addWidget(new QLabel(label), row, col++);
    grid->addWidget(w, row, col++);
    if (col == 8) col = 0, ++row;
  }
  for (QWidget* w : settings->findChildren<QWidget*>()) w->setVisible(false);
  connect(settings, &QGroupBox::toggled, this, [settings](bool on) {
    for (QWidget* w : settings->findChildren<QWidget*>()) w->setVisible(on);
  });
  layout->addWidget(settings);

  view_ = new QListView;
  view_->setModel(&messages_);
  view_->setItemDelegate(new MessageDelegate(view_));
  view_->setVerticalScrollMode(QAbstractItemView::ScrollPerPixel);
  view_->setResizeMode(QListView::Adjust);
  view_->setWordWrap(true);
  view_->setUniformItemSizes(false);
  view_->setSelectionMode(QAbstractItemView::SingleSelection);
  layout->addWidget(view_, 1);

  input_ = new QPlainTextEdit;
  input_->setPlaceholderText(tr("Message (Ctrl+Enter sends)"));
  input_->setMaximumHeight(input_->fontMetrics().height() * 5);
  layout->addWidget(input_);
  auto* buttons = new QHBoxLayout;
  send_ = new QPushButton(tr("Send"));
  stop_ = new QPushButton(tr("Stop"));
  regenerate_ = new QPushButton(tr("Regenerate"));
  edit_ = new QPushButton(tr("Edit last"));
  auto* copy = new QPushButton(tr("Copy answer"));
  clear_ = new QPushButton(tr("Clear"));
  prompt_ = new QPushButton(tr("View prompt"));
  template_ = new QPushButton(tr("Template..."));
  export_ = new QPushButton(tr("Export..."));
  for (QPushButton* b : {send_, stop_, regenerate_, edit_, copy, clear_, prompt_, template_, export_}) buttons->addWidget(b);
  buttons->addStretch();
  layout->addLayout(buttons);
  status_ = new QLabel;
  status_->setWordWrap(true);
  layout->addWidget(status_);

  stop_->setToolTip(tr("Stop the answer, also while the prompt is being read (Esc)"));
  regenerate_->setToolTip(tr("Take back the last answer and answer the same message again"));
  edit_->setToolTip(tr("Take back the last exchange and put its message in the box to edit and send again"));
  prompt_->setToolTip(tr("The prompt the chat template renders for the conversation and the message in the box"));
  template_->setToolTip(tr("Override the model's chat template for this session"));
  connect(load_, &QPushButton::clicked, this, &ChatPane::loadChosen);
  connect(model_, &QComboBox::currentIndexChanged, this, [this] {
    if (!model_->currentData().toString().isEmpty()) engine_.estimate(model_->currentData().toString(), context_->value());
  });
  connect(context_, &QSpinBox::editingFinished, this, [this] {
    if (!model_->currentData().toString().isEmpty()) engine_.estimate(model_->currentData().toString(), context_->value());
  });
  connect(send_, &QPushButton::clicked, this, [this] { send(input_->toPlainText()); });
  connect(stop_, &QPushButton::clicked, this, &ChatPane::stop);
  connect(regenerate_, &QPushButton::clicked, this, &ChatPane::regenerate);
  connect(edit_, &QPushButton::clicked, this, &ChatPane::editLast);
  connect(copy, &QPushButton::clicked, this, [this] {
    for (auto it = messages_.messages().rbegin(); it != messages_.messages().rend(); ++it)
      if (it->kind == ChatMessage::Kind::Assistant) return QApplication::clipboard()->setText(it->text);
  });
  connect(clear_, &QPushButton::clicked, this, &ChatPane::clearConversation);
  connect(prompt_, &QPushButton::clicked, this, [this] { engine_.renderPrompt(input_->toPlainText(), request()); });
  connect(template_, &QPushButton::clicked, this, &ChatPane::showTemplateDialog);
  connect(export_, &QPushButton::clicked, this, &ChatPane::exportConversation);
  auto* sendKey = new QShortcut(QKeySequence(Qt::CTRL | Qt::Key_Return), input_);
  connect(sendKey, &QShortcut::activated, this, [this] { send(input_->toPlainText()); });
  auto* stopKey = new QShortcut(QKeySequence(Qt::Key_Escape), this, nullptr, nullptr, Qt::WidgetWithChildrenShortcut);
  connect(stopKey, &QShortcut::activated, this, &ChatPane::stop);
}

void ChatPane::refreshButtons() {
  const bool busy = engine_.busy(), loaded = engine_.isLoaded();
  load_->setEnabled(!busy && model_->count() > 0);
  send_->setEnabled(loaded && !busy);
  stop_->setEnabled(busy);
  const bool any = !messages_.lastUserText().isEmpty();
  regenerate_->setEnabled(loaded && !busy && any);
  edit_->setEnabled(loaded && !busy && any);
  clear_->setEnabled(!busy);
  prompt_->setEnabled(loaded && !busy);
  template_->setEnabled(!busy);
}

void ChatPane::setCandidates(const QString& original, const QString& compressed) {
  for (const auto& [label, path] : {std::pair{tr("compressed"), compressed}, std::pair{tr("original"), original}}) {
    if (path.isEmpty() || model_->findData(path) >= 0) continue;
    model_->addItem(QStringLiteral("%1: %2").arg(label, QFileInfo(path).fileName()), path);
    model_->setItemData(model_->count() - 1, path, Qt::ToolTipRole);
  }
  if (!engine_.isLoaded()) {
    const int i = model_->findData(compressed.isEmpty() ? original : compressed);
    if (i >= 0) model_->setCurrentIndex(i);
  }
  refreshButtons();
}

void ChatPane::chooseModel(const QString& path) {
  if (model_->findData(path) < 0) {
    model_->addItem(QFileInfo(path).fileName(), path);
    model_->setItemData(model_->count() - 1, path, Qt::ToolTipRole);
  }
  model_->setCurrentIndex(model_->findData(path));
  engine_.estimate(path, context_->value());
  refreshButtons();
}

void ChatPane::loadChosen() {
  const QString path = model_->currentData().toString();
  if (path.isEmpty()) return;
  status_->setText(tr("Loading %1...").arg(path));
  engine_.load(path, context_->value());
  refreshButtons();
}

ChatRequest ChatPane::request() const {
  ChatRequest r;
  r.system = system_->text();
  r.sampling.temperature = static_cast<float>(temperature_->value());
  r.sampling.topK = topK_->value();
  r.sampling.topP = static_cast<float>(topP_->value());
  r.sampling.minP = static_cast<float>(minP_->value());
  r.sampling.repetitionPenalty = static_cast<float>(repetition_->value());
  r.sampling.seed = seed_->text().toULongLong();
  r.maxTokens = maxTokens_->value();
  r.templateOverride = templateOverride_;
  return r;
}

void ChatPane::applyDefaults(const text::SamplingParams& p) {
  temperature_->setValue(p.temperature);
  topK_->setValue(p.topK);
  topP_->setValue(p.topP);
  minP_->setValue(p.minP);
  repetition_->setValue(p.repetitionPenalty);
}

void ChatPane::setMaxTokens(int n) { maxTokens_->setValue(n); }

void ChatPane::send(const QString& raw) {
  const QString text = raw.trimmed();
  if (text.isEmpty() || !engine_.isLoaded() || engine_.busy()) return;
  messages_.addUser(text);
  messages_.beginAnswer();
  input_->clear();
  engine_.send(text, request());
  view_->scrollToBottom();
  refreshButtons();
}

void ChatPane::stop() { engine_.stop(); }

void ChatPane::regenerate() {
  if (engine_.busy()) return;
  const QString text = messages_.takeLastExchange();
  if (text.isEmpty()) return;
  messages_.addUser(text);
  messages_.beginAnswer();
  engine_.resend({}, request());
  refreshButtons();
}

void ChatPane::editLast() {
  if (engine_.busy()) return;
  const QString text = messages_.takeLastExchange();
  if (text.isEmpty()) return;
  engine_.undoLast();
  input_->setPlainText(text);
  input_->setFocus();
}

void ChatPane::clearConversation() {
  messages_.clear();
  engine_.clear();
  refreshButtons();
}

void ChatPane::showTemplateDialog() {
  QDialog d(this);
  d.setWindowTitle(tr("Chat template override"));
  auto* l = new QVBoxLayout(&d);
  l->addWidget(new QLabel(tr("A Jinja chat template for this session; empty: the model's own.")));
  auto* text = new QPlainTextEdit(templateOverride_);
  text->setFont(QFont("monospace"));
  l->addWidget(text);
  auto* b = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(b, &QDialogButtonBox::accepted, &d, &QDialog::accept);
  connect(b, &QDialogButtonBox::rejected, &d, &QDialog::reject);
  l->addWidget(b);
  d.resize(700, 500);
  if (d.exec() != QDialog::Accepted) return;
  templateOverride_ = text->toPlainText();
  messages_.addNote(templateOverride_.isEmpty() ? tr("Using the model's own chat template.")
                                                : tr("Using the template override for this session (a template that "
                                                     "fails shows its error here when a message is sent)."));
}

void ChatPane::exportConversation() {
  const QString f = QFileDialog::getSaveFileName(this, tr("Export conversation"), "conversation.md",
                                                 tr("Markdown (*.md);;JSON (*.json)"));
  if (f.isEmpty()) return;
  const QString model = engine_.model() ? engine_.model()->path : QString();
  const QString error = saveFile(f, f.endsWith(".json", Qt::CaseInsensitive)
                                        ? messages_.toJson(model).toJson()
                                        : messages_.toMarkdown(tr("Conversation with %1").arg(model)).toUtf8());
  if (!error.isEmpty()) messages_.addNote(error);
}

QString ChatPane::memoryText() const { return memory_->text(); }
QString ChatPane::statusText() const { return status_->text(); }

void ChatPane::dragEnterEvent(QDragEnterEvent* e) {
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) return e->acceptProposedAction();
}

void ChatPane::dropEvent(QDropEvent* e) {
  for (const QUrl& u : e->mimeData()->urls())
    if (u.isLocalFile()) {
      e->acceptProposedAction();
      chooseModel(u.toLocalFile());
      return;
    }
}

}  // namespace eq::ui
