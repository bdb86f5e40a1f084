// One shape of progress for every long job of the core (unpacking an archive, loading a model, calibration,
// analysis, compression, verification, decompression, evaluation), so that the CLI's progress line and the GUI's
// progress bars read them alike: the phase, counts of its units, bytes where they mean something, the item being
// worked on, time and ETA. Jobs also take a keepGoing callback (false: they stop with Error(Cancelled)).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace eq {

enum class Phase : std::uint8_t {
  Extract,     // unpacking an archive of a model folder (bytes)
  Load,        // loading a model into the engine (blocks)
  Calibrate,   // the model writes its calibration texts (tokens)
  Analyze,     // rate-distortion curves and statistics of the tensors (tensors)
  Compress,    // quantizing and coding the tensors (tensors, source bytes)
  Verify,      // checking an .eqz file's sections and decoding its tensors (tensors)
  Decompress,  // writing a model folder from an .eqz file (tensors)
  Evaluate,    // perplexity or a comparison of two models over windows of text (windows)
};
std::string_view phaseName(Phase phase);  // "extract", "load", ..., "evaluate"

enum class Unit : std::uint8_t { Bytes, Blocks, Tokens, Tensors, Windows, Texts };
std::string_view unitName(Unit unit);  // "bytes", "blocks", "tokens", "tensors", "windows", "texts"

// While a tensor waits for calibration (CompressOptions with calibration): the texts running through a block.
struct CalibrationPass {
  std::int64_t block = -1;  // -1: none
  int pass = 0;             // the block's passes so far, from 1
  std::int64_t textsDone = 0, texts = 0;
};

struct Progress {
  Phase phase = Phase::Compress;
  Unit unit = Unit::Tensors;
  std::uint64_t done = 0, total = 0;            // units finished, and in all (0: not known)
  std::uint64_t bytesDone = 0, bytesTotal = 0;  // the bytes behind them where that means something, else 0
  std::string item;       // what is being worked on: a tensor's name, an archive entry; empty when nothing is named
  bool itemDone = false;  // the item has just finished (false: it starts or is under way)
  double seconds = 0;     // since the phase began
  double etaSeconds = -1; // to the end of the phase, from its rate so far; < 0: not known yet
  CalibrationPass pass;   // block >= 0: the item waits while calibration runs a block

  double bytesPerSecond() const { return seconds > 0 ? static_cast<double>(bytesDone) / seconds : 0; }
  double fraction() const;  // of the phase done, in [0, 1] (bytes where known, else units)
};

using ProgressFn = std::function<void(const Progress&)>;
using KeepGoingFn = std::function<bool()>;

// Reports one phase of a job: keeps its start time and fills in the seconds and the ETA. The ETA follows the bytes
// where the phase has a byte total, else the units. Does nothing without a callback.
class PhaseProgress {
 public:
  PhaseProgress(ProgressFn fn, Phase phase, Unit unit, std::uint64_t total, std::uint64_t bytesTotal = 0);
  bool enabled() const { return static_cast<bool>(fn_); }
  // Where the phase stands: units done (and the bytes behind them), the item under way or just finished.
  void report(std::uint64_t done, std::uint64_t bytesDone = 0, std::string_view item = {}, bool itemDone = false,
              CalibrationPass pass = {});
  double seconds() const;

 private:
  ProgressFn fn_;
  Progress p_;
  std::uint64_t start_ = 0;  // steady clock, nanoseconds
};

}  // namespace eq
