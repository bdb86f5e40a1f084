// Calibration without user data (`compress --calibration self`): the original model writes its own text (sampled
// at temperature 1 from its BOS token), then runs that text once more while the input of every compressible
// linear layer is summed into a Gram matrix sum x x^T. Error feedback (quant/error_feedback.h) then chooses the
// codes so that the layers' outputs, not only their weights, stay close to the original's. No data leaves or
// enters: the statistics come from the model alone.
#pragma once

#include "format/model_source.h"
#include "quant/error_feedback.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace eq {
class ThreadPool;

struct CalibrationOptions {
  std::int64_t sequences = 32;  // texts the model writes
  std::int64_t length = 0;      // tokens each (the first is BOS); 0: 512, or the model's context if shorter
  std::uint64_t seed = 1;
  // Memory the statistics may take (8 n^2 bytes per distinct layer input of n features); 0: half of the RAM.
  std::uint64_t maxBytes = 0;
  std::function<bool()> keepGoing;  // thread-safe (texts are written on several threads); false: Error(Cancelled)
  std::function<void(std::int64_t done, std::int64_t total)> progress;  // tokens, generated then run
};

struct Calibration {
  // By weight name; weights that take the same input (q, k, v; gate, up) share one.
  std::map<std::string, std::shared_ptr<const quant::InputGram>> grams;
  std::vector<std::vector<std::int32_t>> texts;  // the token ids the model wrote
  std::uint64_t bytes = 0;                       // memory of the statistics
  double seconds = 0;
};

// Loads `source` in the CPU engine and calibrates it as above. Errors: Error(BadConfig) without config.json,
// Error(Unsupported) for an architecture the engine lacks, Error(InvalidArgument) when the statistics would exceed
// the memory budget, Error(Cancelled).
Calibration calibrateSelf(const ModelSource& source, ThreadPool& pool, const CalibrationOptions& options);

}  // namespace eq
