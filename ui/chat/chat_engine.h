// The GUI side of a chat worker: owns its thread, forwards requests to it as queued calls and its signals back (to
// the GUI thread, queued). stop() reaches the worker at once (an atomic flag). Destroying the engine stops the
// answer in flight, ends the thread's event loop and joins it: bounded by one layer of the engine's work, so a
// window closed during generation exits cleanly.
#pragma once

#include "chat/chat_worker.h"

#include <QObject>
#include <QThread>

namespace eq::ui {

class ChatEngine : public QObject {
  Q_OBJECT

 public:
  explicit ChatEngine(QObject* parent = nullptr);
  ~ChatEngine() override;

  void estimate(const QString& path, qint64 context);
  void load(const QString& path, qint64 context, unsigned threads = 0);
  void unload();
  void send(const QString& text, const ChatRequest& request);
  void resend(const QString& replacement, const ChatRequest& request);
  void clear();
  void undoLast();
  void renderPrompt(const QString& text, const ChatRequest& request);
  void stop();

  bool isLoaded() const { return model_.has_value(); }
  bool busy() const { return busy_; }
  const std::optional<LoadedModel>& model() const { return model_; }

 signals:
  void estimated(const eq::ui::MemoryEstimate& estimate);
  void estimateFailed(const QString& path, const QString& error);
  void loadProgress(const eq::Progress& progress);
  void loaded(const eq::ui::LoadedModel& model);
  void loadFailed(const eq::ui::JobError& error);
  void answerStarted();
  void delta(const QString& text);
  void answered(const eq::ui::ChatStats& stats);
  void answerFailed(const eq::ui::JobError& error);
  void promptRendered(const QString& prompt);
  void promptFailed(const QString& error);
  void busyChanged(bool busy);

 private:
  template <typename F>
  void post(F&& f);
  void setBusy(bool busy);

  QThread thread_;
  ChatWorker* worker_;
  std::optional<LoadedModel> model_;
  bool busy_ = false;
  std::uint64_t requests_ = 0;  // numbers the load and answer requests, for stop()
};

}  // namespace eq::ui
