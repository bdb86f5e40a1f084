// The base of the app's workers: one core job run on a pool thread (QtConcurrent), talking to the GUI thread only
// through state it shares with a GUI-side timer. The worker writes its latest progress and its results into that
// state; a 100 ms timer on the GUI thread takes them and emits signals, so a job can report as often as it likes
// and the GUI sees at most ten updates a second. Starting again cancels the run in flight (last request wins): the
// old run keeps its own state, notices the cancel at its next check and ends unseen. The GUI thread never waits
// on a worker, not even when the job object is destroyed.
#pragma once

#include "common/progress.h"

#include <QObject>
#include <QString>
#include <QTimer>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

namespace eq::ui {

// What a failed job reports: the core's sentence, its error code and the setting it concerns (common/error.h).
struct JobError {
  QString message;
  int code = 0;
  int setting = 0;
};

class BackgroundJob : public QObject {
  Q_OBJECT

 public:
  explicit BackgroundJob(QObject* parent = nullptr);
  ~BackgroundJob() override;
  bool running() const { return static_cast<bool>(run_); }
  // Asks the run in flight to stop; it ends with cancelled() (or, if it had already finished, as it finished).
  void cancel();

 signals:
  void progressed(const eq::Progress& progress);
  void succeeded();
  void failed(const eq::ui::JobError& error);
  void cancelled();

 protected:
  // The state a run shares with the GUI thread. Derived jobs keep their results in a subclass of it.
  struct Run {
    virtual ~Run() = default;
    std::atomic<bool> cancel{false};
    std::mutex m;
    std::optional<Progress> progress;  // the latest, not yet shown
    bool done = false, ok = false, wasCancelled = false;
    JobError error;
    bool keepGoing() const { return !cancel.load(std::memory_order_relaxed); }
    void report(const Progress& p) {
      std::lock_guard lock(m);
      progress = p;
    }
  };
  // Starts `work` on a pool thread with `run` (a fresh state) after cancelling the run in flight. `work` throws
  // eq::Error (or anything) to fail; a Cancelled error ends the run as cancelled.
  void start(std::shared_ptr<Run> run, std::function<void(Run&)> work);
  // GUI thread, on each tick and once at the end: take what the run produced since the last call.
  virtual void drain(Run&) {}

 private:
  void tick();
  std::shared_ptr<Run> run_;
  QTimer timer_;
};

}  // namespace eq::ui

Q_DECLARE_METATYPE(eq::ui::JobError)
Q_DECLARE_METATYPE(eq::Progress)
