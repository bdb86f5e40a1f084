// One tensor at its operating point, for the GUI's layer plots and `entquant analyze --layer`: the weights'
// histogram, the codes' histogram and entropy, the error's histogram, and the values one row can represent (its
// FP8 / Int8 grid at its scale), from the tensor's sampled rows quantized at a target as compress would.
#pragma once

#include "common/progress.h"
#include "model/model_source.h"
#include "quant/code_format.h"
#include "quant/tensor_quantizer.h"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace eq {

// Counts in equal bins over [lo, hi].
struct Histogram {
  double lo = 0, hi = 0;
  std::vector<std::uint64_t> counts;
  double binWidth() const { return counts.empty() ? 0 : (hi - lo) / static_cast<double>(counts.size()); }
};

struct LayerDetailOptions {
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  quant::Objective objective = quant::Objective::EcsqMse;
  quant::RateTarget target;  // the tensor's target in the plan
  std::int64_t maxRows = 256;  // rows sampled, evenly spaced (all of a smaller tensor), as the analysis samples them
  std::int64_t row = -1;       // the row whose grid is shown (of the tensor); -1: the sampled row with the largest |w|
  int bins = 128;
  unsigned threads = 0;
  KeepGoingFn keepGoing;  // false: Error(Cancelled)
};

struct LayerDetail {
  std::string name;
  std::int64_t rows = 0, cols = 0, rowsSampled = 0;
  Histogram weights;  // over [-absmax, absmax] of the sampled rows
  Histogram errors;   // w_hat - w, symmetric around 0
  std::array<std::uint64_t, 256> codes{};  // how often each 8-bit code occurs
  int distinctCodes = 0;
  double entropyBits = 0;     // Shannon bits per weight of the codes
  double effectiveBits = 0;   // as the rate control predicts them for the sampled rows
  double relL2 = 0;           // sqrt(sum (w_hat - w)^2 / sum w^2)
  std::int64_t row = 0;       // the row of `grid`
  double rowScale = 0;        // its scale
  std::vector<double> grid;   // every value the row's codes represent within [-absmax, absmax], ascending

  nlohmann::ordered_json toJson() const;
};

// Error(MissingTensor) for a name the model has not, Error(InvalidArgument) for a tensor that is not compressible.
LayerDetail inspectLayer(const ModelSource& source, const std::string& tensor, const LayerDetailOptions& options);

}  // namespace eq
