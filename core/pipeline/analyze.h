// Analysis of a model before compression, the first step of analyze -> plan -> compress: for every compressible
// tensor its rate-distortion curve (predicted effective bits against relative error over a sweep of the rate
// control's lambda, measured on sampled rows: what the bit allocation weighs tensors by) and its weight
// statistics, plus what planning needs to predict the file's size for the tensors that are kept. Nothing here
// touches the output; a plan (pipeline/plan.h) is made from an analysis without reading the weights again, so a
// GUI can move the target and see every tensor's bits, bytes and error update at once.
#pragma once

#include "common/progress.h"
#include "model/model_source.h"
#include "model/tensor_role.h"
#include "quant/code_format.h"
#include "quant/tensor_quantizer.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace eq {

class SensitivityProbe;

// Statistics of a tensor's weights, over the rows its curve samples (all rows of a tensor of at most
// AnalyzeOptions::curveRows rows).
struct WeightStats {
  std::int64_t rowsSampled = 0;
  double absMax = 0, meanAbs = 0, rms = 0;
  double kurtosis = 0;      // excess kurtosis: 0 for a Gaussian, large for heavy tails
  double zeroFraction = 0;  // weights exactly 0
  // Histogram of the weights over [-absMax, absMax] in kHistogramBins equal bins (counts of sampled weights).
  static constexpr int kHistogramBins = 64;
  std::vector<std::uint64_t> histogram;
};

struct TensorAnalysis {
  std::string name;
  std::vector<std::int64_t> shape;
  DType dtype = DType::BF16;
  TensorRole role = TensorRole::Other;
  int layer = -1;                // transformer block, -1 outside
  bool compressible = false;     // by role, shape and dtype (model/tensor_role.h)
  std::uint64_t numel = 0, bytes = 0;  // elements, and bytes as stored in the checkpoint
  std::int64_t rows = 0, cols = 0;     // compressible: the matrix it is quantized as (cols: the last dimension)
  double depthSensitivity = 0;         // compressible: the depth rule's factor (model/arch.h)
  std::optional<double> measuredSensitivity;  // with a probe: KL per unit of relative MSE at the probe's target
  std::vector<quant::RatePoint> curve;        // compressible and analyzed: falling bits, rising error
  std::optional<WeightStats> stats;           // compressible and analyzed
  bool analyzed() const { return !curve.empty(); }
};

struct Analysis {
  std::string input;            // the model's path
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  quant::Objective objective = quant::Objective::EcsqMse;  // the curves are the paper objective's for ECSQ ones
  std::int64_t curveRows = 256;
  std::vector<TensorAnalysis> tensors;  // every tensor of the model, in its natural name order
  // Files a compressed model embeds (config, tokenizer, ...): name -> bytes (those over the embedding limit are
  // left out by compress and here).
  std::vector<std::pair<std::string, std::uint64_t>> embeddedFiles;
  nlohmann::json config;  // config.json as read, or null
  double seconds = 0;

  const TensorAnalysis* find(const std::string& name) const;
  nlohmann::ordered_json toJson() const;
  // Throws Error(InvalidJson) naming `label` for anything that is not what toJson writes.
  static Analysis fromJson(const nlohmann::json& json, const std::string& label);
};

struct AnalyzeOptions {
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  quant::Objective objective = quant::Objective::EcsqMse;
  std::uint32_t segmentSymbols = codec::kDefaultSegmentSymbols;
  std::int64_t curveRows = 256;  // rows sampled per tensor (evenly spaced); smaller tensors are measured whole
  // Read only the sampled rows (quant::rateCurve's sampledSums): the GUI's analysis, many times faster on a large
  // model. False (compress, plan): every row, as the CLI's allocation has always read them.
  bool sampledNormalization = false;
  // Which compressible tensors get a curve and statistics (null: all). The others are listed without them.
  std::function<bool(const std::string& name)> include;
  // `--allocation measured` (a study variant): each analyzed tensor is quantized alone at probeTarget, swapped into
  // the model and its KL divergence measured (pipeline/sensitivity.h). Not owned.
  SensitivityProbe* probe = nullptr;
  quant::RateTarget probeTarget;
  std::uint64_t maxEmbeddedFileBytes = 64ull << 20;
  unsigned threads = 0;  // 0: all hardware threads
  ProgressFn progress;   // Phase::Analyze, one unit per analyzed tensor
  // Each analyzed tensor as soon as it is done (on the calling thread), so a GUI fills its table as they finish.
  std::function<void(const TensorAnalysis&)> onTensor;
  KeepGoingFn keepGoing; // false: Error(Cancelled) "analysis cancelled"
};

// Reads only the sampled rows of each analyzed tensor (about curveRows x cols weights), and releases its pages.
// Errors name the model and the tensor (e.g. NaN weights: Error(Unsupported)).
Analysis analyzeModel(const ModelSource& source, const AnalyzeOptions& options);

}  // namespace eq
