// The plan of a compression, the second step of analyze -> plan -> compress: what becomes of every tensor (kept,
// or compressed with which target) and what that is predicted to cost (bytes) and do (relative error), made from
// an analysis alone, without reading the weights. The bit allocation lives here: with a bits target, `global`
// and `depth` spend the same total bits but move them between tensors along their rate-distortion curves. A plan
// serializes to JSON and back, so `entquant plan` can write one, a user (or the GUI) can change it, and
// `entquant compress --plan` executes it.
#pragma once

#include "pipeline/analyze.h"
#include "quant/tensor_quantizer.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eq {

// How tensors are stored: EntQuant, or a classic group-wise baseline (for comparisons at equal size).
enum class Method : std::uint8_t { EntQuant, Rtn4, Rtn3, Rtn2, Nf4 };
std::string_view methodName(Method method);                // "entquant", "rtn4", "rtn3", "rtn2", "nf4"
std::optional<Method> parseMethod(std::string_view name);
std::span<const std::string_view> methodNames();

// With a bits target: Uniform gives every tensor the target; Global spends the same total bits but moves them
// between tensors to minimize the weight-count-weighted sum of relative MSE (equal slopes of each tensor's
// rate-distortion curve); Depth does the same with each tensor's error also weighted by the depth rule
// (model/arch.h depthSensitivity), the default; Measured with each tensor's sensitivity measured on the model's
// own text (pipeline/sensitivity.h; a study variant). A lambda target is always uniform.
enum class Allocation : std::uint8_t { Uniform, Global, Depth, Measured };
std::string_view allocationName(Allocation allocation);  // "uniform", "global", "depth", "measured"
std::optional<Allocation> parseAllocation(std::string_view name);

// Tensors whose name matches `pattern` (PCRE2 / Perl syntax, searched) get `bits`, or are kept as they are
// (no bits). Later rules win.
struct LayerRule {
  std::string pattern;
  std::optional<double> bits;
  // "REGEX=B" or "REGEX=keep"; Error(InvalidArgument, Setting::LayerRule) "\"x=9\": bits must be ..." otherwise.
  static LayerRule parse(const std::string& text);
};

struct PlanSettings {
  Method method = Method::EntQuant;
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  // The default, ecsq-mse, with depth allocation gave the lowest KL divergence at 3.0 and 2.1 bits on every model
  // of the quality study (docs/QUALITY.md).
  quant::Objective objective = quant::Objective::EcsqMse;
  quant::RateTarget target;  // 3.0 effective bits per weight
  Allocation allocation = Allocation::Depth;
  // Global / Depth weigh each tensor's balanced relative MSE (quant::RatePoint::relMseBalanced: unchanged when a
  // row or a column is scaled, so outlier rows or columns cannot make a tensor look cheap), or, false, its plain
  // relative MSE. Measured always uses the plain one (its sensitivity is per unit of it).
  bool balancedAllocation = true;
  std::vector<LayerRule> rules;
  // The target is the mean over every compressed tensor, those the rules decide included: the allocation (uniform
  // or not) spends what the rules leave. False (the CLI's default): the rules' tensors are outside the budget and
  // the others average the target.
  bool holdTotal = false;
  // Row scales come from a file instead of a search (CompressOptions::scalesFile): no targets, rules may only keep.
  bool givenScales = false;
  std::uint32_t segmentSymbols = codec::kDefaultSegmentSymbols;

  // The allocation that applies: Uniform for a lambda target, given scales or a baseline method.
  Allocation effectiveAllocation() const;
};

struct PlannedTensor {
  std::string name;
  bool compress = false;  // false: stored as it is
  // compress: the rate target (none for given scales or a baseline method, whose size follows from the shape)
  std::optional<quant::RateTarget> target;
  bool ruled = false;       // a layer rule decided it
  double sensitivity = 0;   // the factor on its error in the allocation (0: not allocated)
  std::uint64_t numel = 0;
  // What it is predicted to cost and do: stored bytes (exact for kept tensors and baselines; from the target for
  // EntQuant, whose rate control lands within 0.03 bits of it), effective bits, and the relative MSE read off its
  // rate-distortion curve at those bits (the paper objective's curve: ECSQ objectives land a little lower).
  std::uint64_t predictedBytes = 0;
  std::optional<double> predictedBits, predictedRelMse;
};

struct Plan {
  PlanSettings settings;
  std::string input;
  std::vector<PlannedTensor> tensors;  // every tensor of the model, in the analysis' order
  // The whole file: sections, index (estimated from the tensor count and names), preamble.
  std::uint64_t predictedFileBytes = 0;
  std::uint64_t compressedWeights = 0, totalWeights = 0;
  std::optional<double> predictedEffectiveBits;  // over the compressed tensors
  std::optional<double> predictedRelMse;         // their weight-count-weighted mean, where every one has a curve

  const PlannedTensor* find(const std::string& name) const;
  nlohmann::ordered_json toJson() const;
  // Error(InvalidJson / InvalidArgument, Setting::Plan) naming `label` for anything toJson would not write.
  static Plan fromJson(const nlohmann::json& json, const std::string& label);
};

// Per-tensor targets (rules, then the allocation), predictions and totals. Global / Depth / Measured need the
// curves of every tensor they allocate (Error(InvalidArgument) naming the first without one); Measured needs
// their measured sensitivities.
Plan planBits(const Analysis& analysis, const PlanSettings& settings);

// The curve's relative MSE at `bits` (linear in log error between its points; the ends extend flat).
std::optional<double> relMseAtBits(std::span<const quant::RatePoint> curve, double bits);

}  // namespace eq
