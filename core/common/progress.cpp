#include "common/progress.h"

#include <algorithm>
#include <chrono>

namespace eq {
namespace {
std::uint64_t nowNs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
}  // namespace

std::string_view phaseName(Phase phase) {
  switch (phase) {
    case Phase::Extract: return "extract";
    case Phase::Load: return "load";
    case Phase::Calibrate: return "calibrate";
    case Phase::Analyze: return "analyze";
    case Phase::Compress: return "compress";
    case Phase::Verify: return "verify";
    case Phase::Decompress: return "decompress";
    case Phase::Evaluate: return "evaluate";
  }
  return "compress";
}

std::string_view unitName(Unit unit) {
  switch (unit) {
    case Unit::Bytes: return "bytes";
    case Unit::Blocks: return "blocks";
    case Unit::Tokens: return "tokens";
    case Unit::Tensors: return "tensors";
    case Unit::Windows: return "windows";
    case Unit::Texts: return "texts";
  }
  return "tensors";
}

double Progress::fraction() const {
  if (bytesTotal > 0) return std::min(1.0, static_cast<double>(bytesDone) / static_cast<double>(bytesTotal));
  if (total > 0) return std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  return 0;
}

PhaseProgress::PhaseProgress(ProgressFn fn, Phase phase, Unit unit, std::uint64_t total, std::uint64_t bytesTotal)
    : fn_(std::move(fn)), start_(nowNs()) {
  p_.phase = phase;
  p_.unit = unit;
  p_.total = total;
  p_.bytesTotal = bytesTotal;
}

double PhaseProgress::seconds() const { return static_cast<double>(nowNs() - start_) * 1e-9; }

void PhaseProgress::report(std::uint64_t done, std::uint64_t bytesDone, std::string_view item, bool itemDone,
                           CalibrationPass pass) {
  if (!fn_) return;
  p_.done = done;
  p_.bytesDone = bytesDone;
  p_.item.assign(item);
  p_.itemDone = itemDone;
  p_.pass = pass;
  p_.seconds = seconds();
  const double f = p_.fraction();
  p_.etaSeconds = f > 0 && p_.seconds > 0 ? p_.seconds * (1 - f) / f : -1;
  fn_(p_);
}

}  // namespace eq
