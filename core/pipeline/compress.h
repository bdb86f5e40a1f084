// `entquant compress`: a model (folder, file or archive) -> one .eqz file. Tensors stream from the memory map
// one at a time; each compressible one is quantized on the shared thread pool (rows in parallel), entropy coded
// and appended to the container; others are copied as they are. Progress and cancellation via callbacks.
#pragma once

#include "model/model_source.h"
#include "pipeline/calibrate.h"
#include "quant/tensor_quantizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace eq {

// --layer-bits REGEX=B: tensors whose name matches REGEX (PCRE2 / Perl syntax, searched) get B bits; "keep" stores them
// unchanged. Later rules win.
struct LayerRule {
  std::string pattern;
  std::optional<double> bits;  // nullopt: keep the tensor as it is
  static LayerRule parse(const std::string& text);  // throws Error(InvalidArgument)
};

struct CompressProgress {
  // "calibrate" (--calibration self: index / count are tokens, etaSeconds that phase's), "analyze" (global
  // allocation's first pass) or "compress"
  const char* phase = "compress";
  std::size_t index = 0, count = 0;  // tensor index (0-based) and the number of tensors
  std::string tensor;
  bool done = false;                 // false: starting this tensor; true: finished it
  std::uint64_t bytesDone = 0, bytesTotal = 0;  // source tensor bytes
  double seconds = 0, bytesPerSecond = 0, etaSeconds = 0;
  // While a tensor waits (compress phase, --calibration self): what runs, e.g. "(calibration: block 3 pass 2, 12/32
  // texts)"; empty otherwise.
  std::string detail;
};

struct CompressOptions {
  std::string method = "entquant";   // or a baseline: rtn4, rtn3, rtn2, nf4
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  quant::RateTarget target;          // default: 3.0 effective bits per weight for every compressed tensor
  std::vector<LayerRule> layerRules;
  // How row scales are chosen (tensor_quantizer.h). The default, ecsq-mse, with depth allocation gave the lowest
  // KL divergence at 3.0 and 2.1 bits on every model of the quality study (docs/QUALITY.md).
  quant::Objective objective = quant::Objective::EcsqMse;
  // With a bits target: "uniform" gives every tensor the target; "global" spends the same total bits but moves
  // them between tensors to minimize the weight-count-weighted sum of relative MSE (equal slopes of each tensor's
  // rate-distortion curve, measured on sampled rows in a first pass); "depth" does the same with each tensor's
  // relative MSE also weighted by a data-free sensitivity (model/arch.h depthSensitivity), the default. Tensors matched by
  // --layer-bits are fixed. "measured": the same with each tensor's sensitivity measured on the model's own text
  // (pipeline/sensitivity.h: the KL divergence the tensor quantized alone at the target causes, per unit of its
  // relative MSE); runs the model, like --calibration self, whose first texts it shares. A lambda target (no bits
  // to spend) is always uniform.
  enum class Allocation { Uniform, Global, Depth, Measured } allocation = Allocation::Depth;
  // The error "global" and "depth" weigh: each tensor's balanced relative MSE (quant::RatePoint::relMseBalanced:
  // unchanged when a row or a column is scaled, so outlier rows or columns cannot make a tensor look cheap to
  // compress), or, false, its plain relative MSE (the measure before 2026-12-05; "measured" always uses it, as its
  // sensitivity is per unit of it).
  bool balancedAllocation = true;
  // "self": calibrate on text the model writes itself (pipeline/calibrate.h; the engine must support the
  // architecture) and choose each layer's codes by error feedback against its input statistics, at the same scales
  // objective, allocation and bits. "none": the nearest codes, no model run.
  // "text": the same, on windows cut from calibrationFile (a UTF-8 text of the user's, tokenized with the model's
  // tokenizer.json; pipeline/calibrate.h cutCalibrationTexts: calibrationOptions.sequences windows at most, of
  // calibrationOptions.length tokens) instead of text the model writes.
  enum class Calibration { None, Self, Text } calibration = Calibration::None;
  std::filesystem::path calibrationFile;
  CalibrationOptions calibrationOptions;  // texts, their length, seed, memory budget (callbacks are set here)
  // Given log2 row scales instead of a search: a safetensors file with, for every compressed weight, a tensor of
  // the same name, F32 or BF16, shape [rows] (or the weight's shape without its last dimension); row r uses the
  // scale 2^(bf16(l_r)). The rate target, objective and allocation do not apply; --layer-bits may only keep.
  std::filesystem::path scalesFile;
  std::uint32_t segmentSymbols = codec::kDefaultSegmentSymbols;
  unsigned threads = 0;              // 0: all hardware threads
  std::uint64_t maxEmbeddedFileBytes = 64ull << 20;
  std::function<void(const CompressProgress&)> progress;  // called on the calling thread
  std::function<bool()> keepGoing;   // thread-safe; false cancels with Error(Cancelled), nothing is written
};

struct TensorReport {
  std::string name, encoding, role;
  std::vector<std::int64_t> shape;
  DType dtype = DType::BF16;
  std::uint64_t numel = 0, storedBytes = 0;
  std::optional<double> targetBits;
  double lambda = 0, effectiveBits = 0, entropyBits = 0, relL1 = 0, relL2 = 0, seconds = 0;
  double sensitivity = 0;  // global, depth or measured allocation: the factor on its relative MSE (0: none)
  int distinctSymbols = 0;
  bool targetClamped = false;
};

struct CompressSummary {
  std::string input, output, method, format, objective, allocation, calibration;
  std::string calibrationInputs;  // with calibration: original, compressed or shift (auto resolved)
  std::vector<TensorReport> tensors;
  std::uint64_t compressedWeights = 0, compressedBytes = 0, totalWeights = 0, inputBytes = 0, outputBytes = 0;
  double effectiveBpw = 0, entropyBpw = 0, modelBpw = 0, seconds = 0;
  double calibrationSeconds = 0;
  std::uint64_t calibrationTokens = 0;
  double sensitivitySeconds = 0;       // --allocation measured: the probes' model runs
  std::uint64_t sensitivityTokens = 0;
};

// Texts (of the calibration's length) on which `--allocation measured` measures the sensitivities: the first texts
// of --calibration self, or as many written for it alone.
inline constexpr std::int64_t kSensitivityTexts = 4;

CompressSummary compressModel(const ModelSource& source, const std::filesystem::path& output,
                              const CompressOptions& options);
nlohmann::ordered_json toJson(const CompressSummary& summary);

}  // namespace eq
