// Compression, the last step of analyze -> plan -> compress: a model (folder, file or archive) -> one .eqz file.
// compressModel(source, plan, ...) executes a plan (pipeline/plan.h): tensors stream from the memory map one at a
// time; each one the plan compresses is quantized on the job's thread pool (rows in parallel), entropy coded and
// appended to the container; the others are copied as they are. compressModel(source, output, options) is the
// whole job in one call (the CLI's `compress`): analyze where the allocation needs curves, plan, execute.
// Progress and cancellation via callbacks; a failure or a cancel leaves no file.
#pragma once

#include "common/progress.h"
#include "model/model_source.h"
#include "pipeline/analyze.h"
#include "pipeline/calibrate.h"
#include "pipeline/plan.h"
#include "quant/tensor_quantizer.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace eq {

// Error feedback from the model's own text, the user's text, or none (pipeline/calibrate.h).
enum class CalibrationSource : std::uint8_t { None, Self, Text };
std::string_view calibrationName(CalibrationSource calibration);  // "none", "self", "text"

struct CompressOptions {
  // What the plan is made of (PlanSettings; compressModel with a plan takes these from the plan instead).
  Method method = Method::EntQuant;
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  quant::RateTarget target;  // default: 3.0 effective bits per weight for every compressed tensor
  std::vector<LayerRule> layerRules;
  quant::Objective objective = quant::Objective::EcsqMse;
  using Allocation = eq::Allocation;
  Allocation allocation = Allocation::Depth;
  bool balancedAllocation = true;
  bool holdTotal = false;  // PlanSettings::holdTotal

  // How the codes are chosen. Self: calibrate on text the model writes itself (pipeline/calibrate.h; the engine
  // must run the architecture) and choose each layer's codes by error feedback against its input statistics, at
  // the same scales, objective, allocation and bits. Text: the same, on windows cut from calibrationFile (a UTF-8
  // text of the user's, tokenized with the model's tokenizer.json; pipeline/calibrate.h cutCalibrationTexts:
  // calibrationOptions.sequences windows at most, of calibrationOptions.length tokens). None: the nearest codes,
  // no model run.
  using Calibration = CalibrationSource;
  Calibration calibration = Calibration::None;
  std::filesystem::path calibrationFile;
  CalibrationOptions calibrationOptions;  // texts, their length, seed, memory budget (callbacks are set here)
  // Given log2 row scales instead of a search: a safetensors file with, for every compressed weight, a tensor of
  // the same name, F32 or BF16, shape [rows] (or the weight's shape without its last dimension); row r uses the
  // scale 2^(bf16(l_r)). The rate target, objective and allocation do not apply; rules may only keep.
  std::filesystem::path scalesFile;
  std::uint32_t segmentSymbols = codec::kDefaultSegmentSymbols;
  unsigned threads = 0;              // 0: all hardware threads
  std::uint64_t maxEmbeddedFileBytes = 64ull << 20;
  // On the calling thread: Phase::Calibrate (the model writes its texts; later, Progress::pass while a tensor
  // waits for a block's calibration passes, reported as Phase::Compress with the tensor), Phase::Analyze, then
  // Phase::Compress with source bytes.
  ProgressFn progress;
  KeepGoingFn keepGoing;  // thread-safe; false cancels with Error(Cancelled), nothing is written

  PlanSettings planSettings() const;
};

struct TensorReport {
  std::string name;
  TensorRole role = TensorRole::Other;
  Encoding encoding = Encoding::Raw;
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
  std::string input, output;
  Method method = Method::EntQuant;
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  std::optional<quant::Objective> objective;  // EntQuant with a search (not given scales)
  bool givenScales = false;
  std::optional<Allocation> allocation;       // EntQuant without given scales: the allocation that applied
  CalibrationSource calibration = CalibrationSource::None;
  std::optional<CalibrationOptions::Inputs> calibrationInputs;  // with calibration: original, compressed or shift
  std::vector<TensorReport> tensors;
  std::uint64_t compressedWeights = 0, compressedBytes = 0, totalWeights = 0, inputBytes = 0, outputBytes = 0;
  double effectiveBpw = 0, entropyBpw = 0, modelBpw = 0, seconds = 0;
  double calibrationSeconds = 0;
  std::uint64_t calibrationTokens = 0;
  double sensitivitySeconds = 0;       // --allocation measured: the probes' model runs
  std::uint64_t sensitivityTokens = 0;
  std::uint64_t predictedBytes = 0;    // the plan's prediction of outputBytes
};

// Texts (of the calibration's length) on which the measured allocation measures the sensitivities: the first texts
// of self-calibration, or as many written for it alone.
inline constexpr std::int64_t kSensitivityTexts = 4;

// The whole job: checks the options, writes the calibration texts where asked, analyzes the tensors whose bits the
// allocation moves (none for uniform), plans and executes.
CompressSummary compressModel(const ModelSource& source, const std::filesystem::path& output,
                              const CompressOptions& options);
// Executes `plan`, made for this model (Error(InvalidArgument, Setting::Plan) naming the first tensor that
// differs): its settings replace the options' method, format, objective, target, allocation and rules.
CompressSummary compressModel(const ModelSource& source, const Plan& plan, const std::filesystem::path& output,
                              const CompressOptions& options);
nlohmann::ordered_json toJson(const CompressSummary& summary);

}  // namespace eq
