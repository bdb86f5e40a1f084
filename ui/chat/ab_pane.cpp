#include "chat/ab_pane.h"

#include "chat/message_delegate.h"
#include "common/error.h"
#include "common/units.h"

#include <QFileInfo>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListView>
#include <QPushButton>
#include <QSpinBox>
#include <QVBoxLayout>

#include <map>

namespace eq::ui {

AbPane::AbPane(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  auto* top = new QHBoxLayout;
  context_ = new QSpinBox;
  context_->setRange(64, 131072);
  context_->setValue(2048);
  context_->setSuffix(tr(" tokens"));
  maxTokens_ = new QSpinBox;
  maxTokens_->setRange(1, 8192);
  maxTokens_->setValue(128);
  load_ = new QPushButton(tr("Load both"));
  top->addWidget(new QLabel(tr("Context")));
  top->addWidget(context_);
  top->addWidget(new QLabel(tr("Max tokens")));
  top->addWidget(maxTokens_);
  top->addWidget(load_);
  top->addStretch();
  layout->addLayout(top);
  auto* columns = new QGridLayout;
  leftTitle_ = new QLabel;
  rightTitle_ = new QLabel;
  leftView_ = new QListView;
  rightView_ = new QListView;
  for (auto [view, model] : {std::pair{leftView_, &left_}, std::pair{rightView_, &right_}}) {
    view->setModel(model);
    view->setItemDelegate(new MessageDelegate(view));
    view->setVerticalScrollMode(QAbstractItemView::ScrollPerPixel);
    view->setResizeMode(QListView::Adjust);
    view->setWordWrap(true);
  }
  columns->addWidget(leftTitle_, 0, 0);
  columns->addWidget(rightTitle_, 0, 1);
  columns->addWidget(leftView_, 1, 0);
  columns->addWidget(rightView_, 1, 1);
  layout->addLayout(columns, 1);
  auto* bottom = new QHBoxLayout;
  prompt_ = new QLineEdit;
  prompt_->setPlaceholderText(tr("A prompt for both models (greedy: identical answers mean no visible change)"));
  send_ = new QPushButton(tr("Ask both"));
  stop_ = new QPushButton(tr("Stop"));
  bottom->addWidget(prompt_, 1);
  bottom->addWidget(send_);
  bottom->addWidget(stop_);
  layout->addLayout(bottom);
  status_ = new QLabel;
  status_->setWordWrap(true);
  layout->addWidget(status_);

  connect(load_, &QPushButton::clicked, this, &AbPane::load);
  connect(send_, &QPushButton::clicked, this, [this] { send(prompt_->text()); });
  connect(prompt_, &QLineEdit::returnPressed, this, [this] { send(prompt_->text()); });
  connect(stop_, &QPushButton::clicked, this, &AbPane::stop);

  // Memory: both at once where both fit, else one after the other.
  auto estimates = std::make_shared<std::map<QString, MemoryEstimate>>();
  connect(&a_, &ChatEngine::estimated, this, [this, estimates](const MemoryEstimate& m) {
    if (stage_ != -1) return;
    (*estimates)[m.path] = m;
    if (!estimates->count(original_) || !estimates->count(compressed_)) return;
    const auto& o = (*estimates)[original_];
    const auto& c = (*estimates)[compressed_];
    const std::uint64_t both = o.weights + o.kvCache + c.weights + c.kvCache;
    sequential_ = both > o.available;
    estimates->clear();
    stage_ = 0;
    if (sequential_) {
      status_->setText(tr("Both models need %1, more than the %2 available: they answer one after the other, each "
                          "prompt without the conversation before it.")
                           .arg(QString::fromStdString(formatBytes(both)), QString::fromStdString(formatBytes(o.available))));
    } else {
      status_->setText(tr("Loading both (%1 together)...").arg(QString::fromStdString(formatBytes(both))));
      a_.load(original_, context_->value());
      b_.load(compressed_, context_->value());
    }
    refresh();
  });
  connect(&a_, &ChatEngine::estimateFailed, this, [this](const QString&, const QString& e) {
    stage_ = 0;
    status_->setText(e);
    refresh();
  });
  for (ChatEngine* e : {&a_, &b_}) {
    connect(e, &ChatEngine::loaded, this, [this] {
      if (sequential_ && (stage_ == 1 || stage_ == 3)) return answerNext();
      if (a_.isLoaded() && b_.isLoaded()) status_->setText(tr("Both loaded: they answer at once."));
      refresh();
    });
    connect(e, &ChatEngine::loadFailed, this, [this](const JobError& err) {
      status_->setText(err.message);
      stage_ = 0;
      refresh();
    });
    connect(e, &ChatEngine::busyChanged, this, &AbPane::refresh);
  }
  auto columnOf = [this](ChatEngine* e) -> ChatMessageModel& {
    if (sequential_) return stage_ <= 2 ? left_ : right_;
    return e == &a_ ? left_ : right_;
  };
  for (ChatEngine* e : {&a_, &b_}) {
    connect(e, &ChatEngine::delta, this, [this, e, columnOf](const QString& d) { columnOf(e).appendToAnswer(d); });
    connect(e, &ChatEngine::answered, this, [this, e, columnOf](const ChatStats& s) {
      columnOf(e).finishAnswer(s);
      if (sequential_) return answerNext();
      if (--answersDue_ == 0) compareAnswers();
    });
    connect(e, &ChatEngine::answerFailed, this, [this, e, columnOf](const JobError& err) {
      ChatMessageModel& m = columnOf(e);
      m.finishAnswer(std::nullopt);
      m.addNote(err.code == static_cast<int>(Errc::Cancelled) ? tr("Stopped.") : err.message);
      answersDue_ = 0;
      stage_ = 0;
      refresh();
    });
  }
  refresh();
}

void AbPane::setModels(const QString& original, const QString& compressed) {
  original_ = original;
  compressed_ = compressed;
  leftTitle_->setText(tr("<b>Original</b>: %1").arg(QFileInfo(original).fileName().toHtmlEscaped()));
  rightTitle_->setText(tr("<b>Compressed</b>: %1").arg(QFileInfo(compressed).fileName().toHtmlEscaped()));
  refresh();
}

void AbPane::load() {
  if (original_.isEmpty() || compressed_.isEmpty()) return;
  stage_ = -1;  // estimating
  status_->setText(tr("Checking what the two models need..."));
  a_.estimate(original_, context_->value());
  a_.estimate(compressed_, context_->value());
  refresh();
}

ChatRequest AbPane::request() const {
  ChatRequest r;
  r.sampling.temperature = 0;  // greedy: identical answers mean no visible change
  r.maxTokens = maxTokens_->value();
  return r;
}

void AbPane::send(const QString& raw) {
  const QString text = raw.trimmed();
  if (text.isEmpty() || a_.busy() || b_.busy() || stage_ != 0) return;
  if (!sequential_ && !(a_.isLoaded() && b_.isLoaded())) return;
  pending_ = text;
  prompt_->clear();
  for (ChatMessageModel* m : {&left_, &right_}) {
    m->addUser(text);
    m->beginAnswer();
  }
  if (sequential_) {
    stage_ = 1;
    a_.load(original_, context_->value());
  } else {
    answersDue_ = 2;
    a_.send(text, request());
    b_.send(text, request());
  }
  refresh();
}

void AbPane::answerNext() {
  switch (stage_) {
    case 1:  // the original is loaded: it answers
      stage_ = 2;
      a_.send(pending_, request());
      break;
    case 2:  // then the compressed model
      stage_ = 3;
      a_.load(compressed_, context_->value());
      break;
    case 3:
      stage_ = 4;
      a_.send(pending_, request());
      break;
    case 4:
      stage_ = 0;
      a_.unload();
      compareAnswers();
      break;
    default: break;
  }
  refresh();
}

void AbPane::stop() {
  a_.stop();
  b_.stop();
}

void AbPane::compareAnswers() {
  auto last = [](const ChatMessageModel& m) {
    for (int r = m.rowCount() - 1; r >= 0; --r)
      if (m.messages()[static_cast<std::size_t>(r)].kind == ChatMessage::Kind::Assistant) return r;
    return -1;
  };
  const int l = last(left_), r = last(right_);
  if (l < 0 || r < 0) return;
  const QString& x = left_.messages()[static_cast<std::size_t>(l)].text;
  const QString& y = right_.messages()[static_cast<std::size_t>(r)].text;
  int at = 0;
  while (at < x.size() && at < y.size() && x[at] == y[at]) ++at;
  const bool identical = x == y;
  if (!identical) {
    left_.setDiffersAt(l, at);
    right_.setDiffersAt(r, at);
  }
  status_->setText(identical ? tr("Identical answers: for this prompt the compression changed nothing visible.")
                             : tr("The answers first differ at character %1 (highlighted).").arg(at));
  emit bothAnswered(identical);
  refresh();
}

void AbPane::refresh() {
  const bool busy = a_.busy() || b_.busy() || stage_ != 0;
  load_->setEnabled(!busy && !original_.isEmpty() && !compressed_.isEmpty());
  send_->setEnabled(!busy && (sequential_ ? !original_.isEmpty() : a_.isLoaded() && b_.isLoaded()));
  stop_->setEnabled(a_.busy() || b_.busy());
}

QString AbPane::statusText() const { return status_->text(); }

}  // namespace eq::ui
