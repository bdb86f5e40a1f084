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

ProgressLine::ProgressLine(bool enabled)
    : enabled_(enabled), tty_(::isatty(2) != 0), start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(std::size_t index, std::size_t count, const std::string& what, double bytesPerSecond,
                          double eta, bool force, const std::string& detail) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_).count();
  // In a log (not a terminal) a job that ends within two seconds leaves no progress lines; a longer one gets one
  // every five seconds and its last.
  if (!tty_ && !printed_ && std::chrono::duration<double>(now - start_).count() < 2.0) return;
  if (!force && since < (tty_ ? 0.1 : 5.0)) return;
  printed_ = true;
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

ProgressFn progressPrinter(ProgressLine& line) {
  return [&line](const Progress& p) {
    // the item under way is number done + 1; one just finished is number done
    const std::size_t index = static_cast<std::size_t>(p.itemDone || p.unit != Unit::Tensors ? (p.done ? p.done - 1 : 0)
                                                                                             : p.done);
    const std::size_t count = static_cast<std::size_t>(p.total);
    const bool last = p.total > 0 && p.done == p.total;
    const std::string eta = p.etaSeconds > 0 ? "  ETA " + formatDuration(p.etaSeconds) : "";
    switch (p.phase) {
      case Phase::Extract:
        line.update(0, 1, fmt::format("extracting {} ({} of {}){}", p.item, formatBytes(p.bytesDone),
                                      formatBytes(p.bytesTotal), eta), 0, 0, last);
        return;
      case Phase::Load:
        line.update(index, count, "loading the model's blocks" + eta, 0, 0, last);
        return;
      case Phase::Calibrate:
        line.update(index, count, "tokens: the model writes its own calibration text" + eta, 0, 0, last);
        return;
      case Phase::Analyze:
        line.update(index, count, "analyzing " + p.item, 0, 0, last);
        return;
      case Phase::Evaluate:
        line.update(index, count, std::string(unitName(p.unit)) + eta, 0, 0, last);
        return;
      case Phase::Compress:
      case Phase::Verify:
      case Phase::Decompress: {
        const std::string detail =
            p.pass.block >= 0 ? fmt::format("(calibration: block {} pass {}, {}/{} texts)", p.pass.block, p.pass.pass,
                                            p.pass.textsDone, p.pass.texts)
                              : "";
        line.update(index, count, p.item, p.bytesPerSecond(), p.etaSeconds > 0 ? p.etaSeconds : 0,
                    p.itemDone && last, detail);
        return;
      }
    }
  };
}

void ProgressLine::finish() {
  if (open_) fmt::print(stderr, "\r\033[K");
  open_ = false;
}

}  // namespace eq::cli
