// A/B: the same prompt answered by the original and the compressed model in two columns, with each answer's speed
// and the place where the two answers first differ marked. Both models stream at once when both fit in memory;
// otherwise one after the other (one engine, each prompt answered without history), and the pane says which. At
// temperature 0 both are greedy, so identical answers mean the compression changed nothing the user can see for
// that prompt.
#pragma once

#include "chat/chat_engine.h"
#include "chat/chat_message_model.h"

#include <QWidget>

class QLabel;
class QLineEdit;
class QListView;
class QPushButton;
class QSpinBox;

namespace eq::ui {

class AbPane : public QWidget {
  Q_OBJECT

 public:
  explicit AbPane(QWidget* parent = nullptr);
  void setModels(const QString& original, const QString& compressed);
  void load();
  void send(const QString& prompt);
  void stop();
  ChatMessageModel& column(int i) { return i == 0 ? left_ : right_; }
  bool sequential() const { return sequential_; }
  QString statusText() const;
  QString originalPath() const { return original_; }
  QString compressedPath() const { return compressed_; }

 signals:
  void bothAnswered(bool identical);

 private:
  ChatRequest request() const;
  void answerNext();       // sequential mode: the next step
  void compareAnswers();   // marks where the two last answers first differ
  void refresh();

  ChatEngine a_, b_;  // original, compressed (b_ unused in sequential mode)
  ChatMessageModel left_, right_;
  QListView *leftView_, *rightView_;
  QLineEdit* prompt_;
  QSpinBox *context_, *maxTokens_;
  QPushButton *load_, *send_, *stop_;
  QLabel *status_, *leftTitle_, *rightTitle_;
  QString original_, compressed_, pending_;
  bool sequential_ = false;
  int stage_ = 0;       // sequential: 0 idle, 1 loading A, 2 answering A, 3 loading B, 4 answering B
  int answersDue_ = 0;  // parallel: answers still streaming
};

}  // namespace eq::ui
