// Calibration without user data (`compress --calibration self`): the original model writes its own text (sampled
// at temperature 1 from its BOS token), then that text runs through the model block by block while the input of
// every compressible linear layer is summed into a Gram matrix sum x x^T. Error feedback (quant/error_feedback.h) then chooses the
// codes so that the layers' outputs, not only their weights, stay close to the original's. No data leaves or
// enters: the statistics come from the model alone.
#pragma once

#include "common/progress.h"
#include "model/causal_lm.h"
#include "model/model_source.h"
#include "quant/error_feedback.h"
#include "text/tokenizer.h"

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace eq {
class ThreadPool;

struct CalibrationOptions {
  std::int64_t sequences = 32;  // texts the model writes
  std::int64_t length = 0;      // tokens each (the first is BOS); 0: 512, or the model's context if shorter
  std::uint64_t seed = 1;  // of the texts the model writes (`--calibration-seed`): text s samples with (seed, s)
  // Non-empty: these texts (token ids, each of 2 to the context's tokens; e.g. cut from the user's own text by
  // calibrationTextsOf) instead of writing any; sequences and length then do not apply.
  std::vector<std::vector<std::int32_t>> texts;
  // Whose inputs the statistics describe (docs/QUALITY.md, "Whose inputs"):
  // - Original: the original model's; one pass of the texts per block.
  // - Compressed: the compressed model's, as far as it is built: each weight's statistics are gathered with every
  //   weight before it in the model (earlier blocks, and earlier stages of its own block: q/k/v, then o, then
  //   gate/up, then down) already replaced by its compressed version (GPTQ's "true sequential" order); a pass per
  //   stage whose inputs changed. No better than Original on the demo model: a study option.
  // - Shift: the compressed model's inputs as in Compressed, and each layer aims at the original layer's output on
  //   the original model's inputs (InputGram::shift, compensateInputShift; GPTAQ): a second copy of the model runs
  //   beside the first, about 2.5x the time of Original. The best on every model studied.
  // - Auto (default): Shift when the second copy, the statistics and the hidden states of both fit the memory
  //   budget and the model has no mixture-of-experts layers (their routing differs between the two), else Original.
  enum class Inputs { Auto, Original, Compressed, Shift } inputs = Inputs::Auto;
  // Memory the statistics of one block may take (8 n^2 bytes per distinct layer input of n features); 0: half of
  // the RAM, less the texts' hidden states.
  std::uint64_t maxBytes = 0;
  // Compressed / Shift: each statistics pass over a block stops once it has seen the inputs of the weight it is
  // for (the weights after it are replaced before they are asked for, so their statistics would be stale); false
  // runs the whole block every pass. The statistics are the same either way (tests compare them).
  bool partialPasses = true;
  // Compressed / Shift: a statistics pass goes on from where the last pass over the block stopped (the values
  // there are kept per text: model::BlockProgress) instead of running the block from its input again, as long as
  // no weight before that point has been replaced since; each model then runs each stage of a block about once.
  // Costs 4 x tokens x max(q width, 2 hidden, hidden + MLP width) bytes per model; where that does not fit the
  // memory budget beside the statistics, the passes run from the input. Same statistics either way (tested).
  bool resumePasses = true;
  KeepGoingFn keepGoing;  // asked on the calling thread; false: Error(Cancelled)
  // On the calling thread: Phase::Calibrate in tokens while the model writes its texts; then, after each text of
  // each pass over a block (a block's passes can take long inside one weight's compression), Unit::Texts with
  // Progress::pass naming the block and the pass (from 1).
  ProgressFn progress;
};

// Calibration block by block. The constructor loads the model in the CPU engine, checks the memory budget, lets
// the model write its texts and computes the hidden states block 0 receives for them; then gram() gives each
// weight's input statistics, running the texts through one block at a time, and replace() hands in a weight's
// compressed version. Only the current block's statistics are held (8 n^2 bytes per distinct input of the block),
// plus the hidden states of the texts (4 bytes x tokens x hidden) and, with resumePasses, where the last pass over
// the block stopped (model::BlockProgress per text).
class SelfCalibration {
 public:
  // Errors: Error(BadConfig) without config.json, Error(Unsupported) for an architecture the engine lacks,
  // Error(InvalidArgument) when the statistics or the texts would exceed the memory budget or the context,
  // Error(Cancelled).
  SelfCalibration(const ModelSource& source, ThreadPool& pool, const CalibrationOptions& options);
  ~SelfCalibration();
  SelfCalibration(const SelfCalibration&) = delete;
  SelfCalibration& operator=(const SelfCalibration&) = delete;

  // The input statistics of a block's linear weight (q, k and v share one object, gate and up share one), or null
  // for a weight outside the blocks or one the engine does not run. A weight of a later block than the last asked
  // for moves the texts on to that block; asking again for an earlier block is Error(InvalidArgument). Error(Cancelled).
  std::shared_ptr<const quant::InputGram> gram(const std::string& weight);
  // The compressed version of a block's weight (Inputs::Compressed: the blocks' outputs and the statistics asked for
  // from now on use it; Inputs::Original: ignored).
  void replace(const std::string& weight, const model::Linear& compressed);

  const std::vector<std::vector<std::int32_t>>& texts() const { return texts_; }
  CalibrationOptions::Inputs inputs() const { return o_.inputs; }  // never Auto
  std::uint64_t tokens() const;
  std::uint64_t peakBytes() const { return peakBytes_; }  // most memory the statistics took at once
  double seconds() const { return seconds_; }           // writing the texts and running the blocks so far

 private:
  void gather(std::int64_t layer, bool observe, bool inPlace, int stopAfterStage = -1);
  void forgetProgress();
  static constexpr int kLastStage = 3;
  int gatheredThrough_ = kLastStage;         // the last stage whose weights grams_ holds
  int passes_ = 0;                          // passes over block layer_ so far
  const ModelSource& source_;
  ThreadPool& pool_;
  CalibrationOptions o_;
  std::string label_;
  std::unique_ptr<model::WeightSource> weights_;
  std::unique_ptr<model::CausalLM> lm_;
  std::vector<std::vector<std::int32_t>> texts_;
  std::unique_ptr<model::CausalLM> original_;  // Inputs::Shift: the original model, never replaced
  std::vector<std::vector<float>> hidden_;  // per text: the input of block layer_
  std::vector<std::vector<float>> hiddenOriginal_;  // Inputs::Shift: the same in the original model
  std::int64_t layer_ = 0;                  // the block hidden_ feeds
  std::int64_t gramLayer_ = -1;             // the block grams_ describe
  std::map<std::string, std::shared_ptr<quant::InputGram>> grams_;  // of block gramLayer_, by weight
  std::map<std::string, int> gatheredAt_;   // weight -> replacements in its block when its statistics were taken
  std::vector<int> replacedStages_;         // stages of the weights of block gramLayer_ replaced so far
  // CalibrationOptions::resumePasses: per text, where the last statistics pass over block progressLayer_ stopped,
  // in the compressed model and (Shift) the original; all texts and both models always at the same stage.
  bool resume_ = false;
  std::vector<model::BlockProgress> progress_, progressOriginal_;
  std::int64_t progressLayer_ = -1;
  std::uint64_t budget_ = 0, peakBytes_ = 0;
  double seconds_ = 0;
};

// Every block's statistics at once, from the original model's inputs (tests and studies; memory: all blocks').
struct Calibration {
  std::map<std::string, std::shared_ptr<const quant::InputGram>> grams;  // by weight name
  std::vector<std::vector<std::int32_t>> texts;
  std::uint64_t bytes = 0;  // memory of the statistics
  double seconds = 0;
};
Calibration calibrateSelf(const ModelSource& source, ThreadPool& pool, const CalibrationOptions& options);

// Only the texts SelfCalibration would write with these options (the same seeds: text s is the same in both),
// without statistics; `--allocation measured` without `--calibration self`. Errors as SelfCalibration's.
std::vector<std::vector<std::int32_t>> writeSelfTexts(const ModelSource& source, ThreadPool& pool,
                                                      const CalibrationOptions& options);

// `compress --calibration-text FILE`: calibration texts cut from a text instead of written by the model. The text
// is tokenized without special tokens and cut into consecutive windows of length - 1 tokens, each after the BOS
// token (length tokens without one); at most maxTexts windows, spread evenly over the text when it holds more.
// Error(InvalidArgument) naming `label` when not one window fits.
std::vector<std::vector<std::int32_t>> cutCalibrationTexts(const std::vector<std::int32_t>& ids, std::int64_t length,
                                                           std::int64_t maxTexts, std::optional<std::int32_t> bos,
                                                           const std::string& label);

// The calibration texts of a user's text: cutCalibrationTexts over all its tokens when it is at most wholeBytes
// long. A longer text is not tokenized whole: it is split into maxTexts equal parts and each gives one window, from
// an excerpt that starts at the part's first line start (tokenized alone, grown until it holds a window); a part
// too short for one gives none. Errors as cutCalibrationTexts's, and Error(InvalidArgument) for invalid UTF-8.
std::vector<std::vector<std::int32_t>> calibrationTextsOf(std::string_view text, const text::Tokenizer& tokenizer,
                                                          std::int64_t length, std::int64_t maxTexts,
                                                          std::optional<std::int32_t> bos, const std::string& label,
                                                          std::size_t wholeBytes = 4u << 20);

// What calibration will cost, before it runs (the GUI shows it beside the choice): the tokens the model writes
// (sequences x length), whether `auto` picks shift inputs, and the memory it holds at most: one block's statistics
// and the texts' hidden states, twice plus a second copy of the weights for shift (bf16: 2 bytes per parameter).
struct CalibrationCost {
  std::int64_t tokens = 0;
  bool shift = false;
  std::uint64_t memoryBytes = 0;
};
CalibrationCost estimateCalibration(const ModelConfig& config, std::uint64_t parameters,
                                    const CalibrationOptions& options);

std::string_view calibrationInputsName(CalibrationOptions::Inputs inputs);  // auto, original, compressed, shift
std::optional<CalibrationOptions::Inputs> parseCalibrationInputs(std::string_view name);

}  // namespace eq
