// The chat pane: talk to a model to see whether it still works. The model is the file just compressed, the
// original, or any model dropped on the pane; what it will take in memory is shown before it loads, and a model that
// does not fit is refused with the numbers. Answers stream in token by token (Markdown, code blocks included) with
// prompt and generation speed and the context used; Stop works during the prompt's prefill too. Copy, regenerate,
// edit and resend the last message, clear, export (Markdown, JSON), see the rendered prompt, override the chat
// template for the session; sampling defaults come from the model's generation_config.json.
#pragma once

#include "chat/chat_engine.h"
#include "chat/chat_message_model.h"

#include <QWidget>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QListView;
class QPlainTextEdit;
class QPushButton;
class QSpinBox;

namespace eq::ui {

class ChatPane : public QWidget {
  Q_OBJECT

 public:
  explicit ChatPane(QWidget* parent = nullptr);
  ~ChatPane() override;

  // The models offered in the model box ("" leaves one out); the first given becomes the choice when none is loaded.
  void setCandidates(const QString& original, const QString& compressed);
  void chooseModel(const QString& path);  // adds it when new, selects it, shows its memory estimate
  void loadChosen();
  void send(const QString& text);
  void stop();
  void regenerate();
  void editLast();  // the last message back into the input box, its exchange taken back
  void clearConversation();
  // Greedy (temperature 0) unless the user changes it; the rest from the loaded model's generation_config.json.
  ChatRequest request() const;
  // The sampling controls (loading a model sets them to its generation_config.json's), and the answer's limit.
  void setSampling(const text::SamplingParams& p) { applyDefaults(p); }
  void setMaxTokens(int n);

  ChatEngine& engine() { return engine_; }
  ChatMessageModel& messages() { return messages_; }
  QString memoryText() const;
  QString statusText() const;
  QPlainTextEdit& input() { return *input_; }
  void setTemplateOverride(const QString& source) { templateOverride_ = source; }

 signals:
  void modelLoaded(const QString& path);

 protected:
  void dragEnterEvent(QDragEnterEvent* e) override;
  void dropEvent(QDropEvent* e) override;

 private:
  void buildUi();
  void refreshButtons();
  void showTemplateDialog();
  void exportConversation();
  void applyDefaults(const text::SamplingParams& p);

  ChatEngine engine_;
  ChatMessageModel messages_;
  QComboBox *model_, *device_;
  QSpinBox *context_, *topK_, *maxTokens_;
  QPushButton *load_, *send_, *stop_, *regenerate_, *edit_, *clear_, *export_, *prompt_, *template_;
  QLabel *memory_, *status_;
  QLineEdit* system_;
  QDoubleSpinBox *temperature_, *topP_, *minP_, *repetition_;
  QLineEdit* seed_;
  QListView* view_;
  QPlainTextEdit* input_;
  QString templateOverride_;
  bool pendingDefaults_ = false;
};

}  // namespace eq::ui
