// Progress lines on stderr for long CLI jobs ("[ 12/291] name  410 MB/s  ETA 1 min 12 s"), rewritten in place on
// a terminal at most 10 times a second, and a cancel flag set by Ctrl-C (SIGINT/SIGTERM) that core jobs poll.
#pragma once

#include "common/progress.h"

#include <atomic>
#include <chrono>
#include <string>

namespace eq::cli {

class ProgressLine {
 public:
  explicit ProgressLine(bool enabled);
  ~ProgressLine();
  // "[index+1/count] what  rate  ETA  detail"
  void update(std::size_t index, std::size_t count, const std::string& what, double bytesPerSecond, double eta,
              bool force = false, const std::string& detail = {});
  void finish();

 private:
  bool enabled_, tty_, open_ = false, printed_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

// A core job's progress (any phase) on the line: "[ 12/291] model.layers.3.mlp.up_proj.weight  410 MB/s  ETA 12 s".
ProgressFn progressPrinter(ProgressLine& line);

// Installs the handlers once; keepGoing() turns false after the first Ctrl-C (a second one kills the process).
void installCancelHandlers();
bool keepGoing();
// Clears a cancel so the next job can run (interactive chat: Ctrl-C stops one answer); re-arms the handlers.
void resetCancel();

}  // namespace eq::cli
