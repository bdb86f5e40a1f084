#include "jobs/background_job.h"

#include "common/error.h"

#include <QtConcurrent/QtConcurrentRun>

namespace eq::ui {

BackgroundJob::BackgroundJob(QObject* parent) : QObject(parent) {
  qRegisterMetaType<eq::Progress>();
  qRegisterMetaType<eq::ui::JobError>();
  timer_.setInterval(100);
  connect(&timer_, &QTimer::timeout, this, &BackgroundJob::tick);
}

BackgroundJob::~BackgroundJob() { cancel(); }

void BackgroundJob::cancel() {
  if (run_) run_->cancel = true;
}

void BackgroundJob::start(std::shared_ptr<Run> run, std::function<void(Run&)> work) {
  cancel();  // the old run ends unseen: it keeps its own state
  run_ = run;
  // The pool thread holds the state alive until it returns; nothing of this object is touched from there.
  (void)QtConcurrent::run([run, work = std::move(work)] {
    bool ok = false, wasCancelled = false;
    JobError error;
    try {
      work(*run);
      ok = true;
    } catch (const Error& e) {
      if (e.code() == Errc::Cancelled) wasCancelled = true;
      else error = {QString::fromStdString(e.what()), static_cast<int>(e.code()), static_cast<int>(e.setting())};
    } catch (const std::bad_alloc&) {
      error = {QStringLiteral("out of memory"), static_cast<int>(Errc::Io), 0};
    } catch (const std::exception& e) {
      error = {QStringLiteral("internal error: %1").arg(e.what()), 0, 0};
    }
    std::lock_guard lock(run->m);
    run->done = true;
    run->ok = ok;
    run->wasCancelled = wasCancelled || (!ok && run->cancel.load());
    run->error = error;
  });
  timer_.start();
}

void BackgroundJob::tick() {
  if (!run_) {
    timer_.stop();
    return;
  }
  std::shared_ptr<Run> run = run_;
  std::optional<Progress> progress;
  bool done = false;
  {
    std::lock_guard lock(run->m);
    progress.swap(run->progress);
    done = run->done;
  }
  if (progress) emit progressed(*progress);
  drain(*run);
  if (!done) return;
  timer_.stop();
  run_.reset();
  if (run->wasCancelled) emit cancelled();
  else if (run->ok) emit succeeded();
  else emit failed(run->error);
}

}  // namespace eq::ui
