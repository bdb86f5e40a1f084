#include "cli/progress.h"

#include "common/units.h"

#include <fmt/format.h>

#include <csignal>
#include <unistd.h>

namespace eq::cli {
namespace {
std::atomic<bool> gCancelled{false};

extern "C" void onSignal(int sig) {
  if (gCancelled.exchange(true)) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}
}  // namespace

void installCancelHandlers() {
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
}

bool keepGoing() { return !gCancelled.load(std::memory_order_relaxed); }

void resetCancel() {
  gCancelled.store(false);
  std::signal(SIGINT, onSignal);
  std::signal(SIGTERM, onSignal);
}

ProgressLine::ProgressLine(bool enabled) : enabled_(enabled), tty_(::isatty(2) != 0) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(std::size_t index, std::size_t count, const std::string& what, double bytesPerSecond,
                          double eta, bool force, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  if (!force && since < (tty_ ? 0.1 : 5.0)) return;
  last_ = now;
  std::string line = fmt::format("[{:>{}}/{}] {}", index + 1, std::to_string(count).size(), count, what);
  if (bytesPerSecond > 0) line += fmt::format("  {}/s  ETA {}", formatBytes(static_cast<std::uint64_t>(bytesPerSecond)),
                                              formatDuration(eta));
  if (!detail.empty()) line += "  " + detail;
  if (tty_) {
    if (line.size() > 118) line = line.substr(0, 115) + "...";
    fmt::print(stderr, "\r\033[K{}", line);
    open_ = true;
  } else {
    fmt::print(stderr, "{}\n", line);
  }
}

void ProgressLine::finish() {
  if (open_) fmt::print(stderr, "\r\033[K");
  open_ = false;
}

}  // namespace eq::cli
