#include "chat/chat_engine.h"

#include "chat/compute_priority.h"

namespace eq::ui {

ChatEngine::ChatEngine(QObject* parent) : QObject(parent), worker_(new ChatWorker) {
  thread_.setObjectName("chat engine");
  worker_->moveToThread(&thread_);
  connect(&thread_, &QThread::finished, worker_, &QObject::deleteLater);
  connect(worker_, &ChatWorker::estimated, this, &ChatEngine::estimated);
  connect(worker_, &ChatWorker::estimateFailed, this, &ChatEngine::estimateFailed);
  connect(worker_, &ChatWorker::loadProgress, this, &ChatEngine::loadProgress);
  connect(worker_, &ChatWorker::loaded, this, [this](const LoadedModel& m) {
    model_ = m;
    setBusy(false);
    emit loaded(m);
  });
  connect(worker_, &ChatWorker::loadFailed, this, [this](const JobError& e) {
    model_.reset();
    setBusy(false);
    emit loadFailed(e);
  });
  connect(worker_, &ChatWorker::answerStarted, this, &ChatEngine::answerStarted);
  connect(worker_, &ChatWorker::delta, this, &ChatEngine::delta);
  connect(worker_, &ChatWorker::answered, this, [this](const ChatStats& s) {
    setBusy(false);
    emit answered(s);
  });
  connect(worker_, &ChatWorker::answerFailed, this, [this](const JobError& e) {
    setBusy(false);
    emit answerFailed(e);
  });
  connect(worker_, &ChatWorker::promptRendered, this, &ChatEngine::promptRendered);
  connect(worker_, &ChatWorker::promptFailed, this, &ChatEngine::promptFailed);
  thread_.start();
  // First thing on the new thread, before any model (and its thread pool, which inherits it) is loaded.
  QMetaObject::invokeMethod(worker_, [] { lowerComputePriority(); }, Qt::QueuedConnection);
}

ChatEngine::~ChatEngine() {
  worker_->stopThrough(requests_);  // the answer in flight ends at the engine's next check, within a layer
  thread_.quit();
  thread_.wait();
}

template <typename F>
void ChatEngine::post(F&& f) {
  QMetaObject::invokeMethod(worker_, std::forward<F>(f), Qt::QueuedConnection);
}

void ChatEngine::setBusy(bool busy) {
  if (busy == busy_) return;
  busy_ = busy;
  emit busyChanged(busy);
}

void ChatEngine::estimate(const QString& path, qint64 context) {
  post([w = worker_, path, context] { w->estimate(path, context); });
}

void ChatEngine::load(const QString& path, qint64 context, unsigned threads) {
  worker_->stopThrough(requests_);  // whatever runs ends first; the queued load then starts
  model_.reset();
  setBusy(true);
  post([w = worker_, id = ++requests_, path, context, threads] { w->load(id, path, context, threads); });
}

void ChatEngine::unload() {
  worker_->stopThrough(requests_);
  model_.reset();
  post([w = worker_] { w->unload(); });
}

void ChatEngine::send(const QString& text, const ChatRequest& request) {
  setBusy(true);
  post([w = worker_, id = ++requests_, text, request] { w->send(id, text, request); });
}

void ChatEngine::resend(const QString& replacement, const ChatRequest& request) {
  setBusy(true);
  post([w = worker_, id = ++requests_, replacement, request] { w->resend(id, replacement, request); });
}

void ChatEngine::undoLast() {
  post([w = worker_] { w->undoLast(); });
}

void ChatEngine::clear() {
  post([w = worker_] { w->clear(); });
}

void ChatEngine::renderPrompt(const QString& text, const ChatRequest& request) {
  post([w = worker_, text, request] { w->renderPrompt(text, request); });
}

void ChatEngine::stop() { worker_->stopThrough(requests_); }

}  // namespace eq::ui
