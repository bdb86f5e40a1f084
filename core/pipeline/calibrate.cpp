#include "pipeline/calibrate.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "format/model_config.h"
#include "model/arch.h"
#include "model/causal_lm.h"
#include "model/weight_source.h"
#include "text/sampling.h"

#include <algorithm>
#include <chrono>
#include <set>

namespace eq {
namespace {

// 8 n^2 bytes for each distinct layer input of one block the engine will observe: the attention input (q, k, v),
// the attention output (o), and the MLP's input (gate, up) and inner activation (down), per expert for MoE.
std::uint64_t blockGramBytes(const ModelConfig& c) {
  auto sq = [](std::int64_t n) { return 8ull * static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n); };
  const std::int64_t inner = c.numExperts > 0 && c.moeIntermediateSize > 0 ? c.moeIntermediateSize : c.intermediateSize;
  const std::uint64_t mlp = sq(c.hiddenSize) + sq(inner);
  return sq(c.hiddenSize) + sq(c.numHeads * c.headDim) +
         (c.numExperts > 0 ? static_cast<std::uint64_t>(c.numExperts) * mlp : mlp);
}

// The texts: text s starts at BOS (or a token drawn uniformly where the model has none) and continues by sampling
// at temperature 1 with seed (seed, s), through end-of-text tokens, to o.length tokens. The texts are written in
// lockstep as one batch (CausalLM::forwardBatch: each step reads the weights once for all of them), or in batches
// of as many as the caches of a quarter of the RAM hold. Progress is reported after every step.
std::vector<std::vector<std::int32_t>> writeTexts(const model::WeightSource& weights, model::CausalLM& lm,
                                                  ThreadPool& pool, const CalibrationOptions& o, std::int64_t done,
                                                  std::int64_t total) {
  const std::uint64_t perText = std::max<std::uint64_t>(lm.batchCacheBytes(1), 1);
  const std::int64_t batch = std::clamp<std::int64_t>(
      static_cast<std::int64_t>(physicalMemoryBytes() / 4 / perText), 1, std::max<std::int64_t>(o.sequences, 1));
  const std::int64_t vocab = lm.vocabSize();
  const auto bos = weights.config().bosTokenId;
  std::vector<std::vector<std::int32_t>> texts(static_cast<std::size_t>(o.sequences));
  std::int64_t written = 0;
  PhaseProgress progress(o.progress, Phase::Calibrate, Unit::Tokens, static_cast<std::uint64_t>(total));
  struct Reset {
    model::CausalLM& lm;
    ~Reset() { lm.reset(); }  // the batch's caches go, also on cancel or error
  } reset{lm};
  for (std::int64_t s0 = 0; s0 < o.sequences; s0 += batch) {
    const std::int64_t n = std::min(batch, o.sequences - s0);
    std::vector<text::Sampler> samplers;
    std::vector<std::int32_t> step(static_cast<std::size_t>(n));
    for (std::int64_t b = 0; b < n; ++b) {
      text::SamplingParams sp;
      sp.temperature = 1.0f;
      sp.seed = o.seed * 1000003 + static_cast<std::uint64_t>(s0 + b);
      samplers.emplace_back(sp);
      step[b] = bos ? static_cast<std::int32_t>(*bos) : static_cast<std::int32_t>(sp.seed % static_cast<std::uint64_t>(vocab));
      texts[static_cast<std::size_t>(s0 + b)] = {step[b]};
    }
    lm.beginBatch(n);
    std::vector<float> logits = lm.forwardBatch(step);
    written += n;
    for (std::int64_t len = 1; len < o.length; ++len) {
      if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "calibration cancelled");
      pool.parallelFor(static_cast<std::size_t>(n), [&](std::size_t b) {  // each text its own sampler and draws
        step[b] = samplers[b].sample(std::span(logits).subspan(static_cast<std::size_t>(b) * vocab, vocab), {});
      });
      for (std::int64_t b = 0; b < n; ++b) texts[static_cast<std::size_t>(s0 + b)].push_back(step[b]);
      written += n;
      progress.report(static_cast<std::uint64_t>(done + written));
      if (len + 1 < o.length) logits = lm.forwardBatch(step);  // the last tokens' predictions are not needed
    }
  }
  return texts;
}

// Checks the number and length of the texts to write, then opens the weights (into `weights`) and loads the model
// for a context of that length (length 0 becomes 512, or the model's context if shorter). Error(InvalidArgument)
// naming the source when the texts do not fit.
std::unique_ptr<model::CausalLM> loadForTexts(const ModelSource& source, ThreadPool& pool, CalibrationOptions& o,
                                              std::unique_ptr<model::WeightSource>& weights) {
  if (o.sequences < 1 || o.length == 1 || o.length < 0)
    fail(Errc::InvalidArgument, "calibration needs at least one text of at least 2 tokens");
  weights = model::WeightSource::of(source);
  const ModelConfig& cfg = weights->config();
  if (o.length == 0) o.length = cfg.maxPositions > 1 ? std::min<std::int64_t>(512, cfg.maxPositions) : 512;
  model::LoadOptions lo;
  lo.contextLength = o.length;
  auto lm = model::loadCausalLM(*weights, pool, lo);
  if (lm->contextLength() < o.length)
    fail(Errc::InvalidArgument, "{}: calibration texts of {} tokens exceed the model's context of {}",
         source.input().string(), o.length, lm->contextLength());
  return lm;
}

}  // namespace

CalibrationCost estimateCalibration(const ModelConfig& cfg, std::uint64_t parameters, const CalibrationOptions& o) {
  CalibrationCost c;
  std::int64_t length = o.length;
  if (length == 0) length = cfg.maxPositions > 1 ? std::min<std::int64_t>(512, cfg.maxPositions) : 512;
  const std::int64_t sequences = o.texts.empty() ? o.sequences : static_cast<std::int64_t>(o.texts.size());
  c.tokens = sequences * length;
  const std::uint64_t hidden = 4ull * static_cast<std::uint64_t>(c.tokens) * static_cast<std::uint64_t>(cfg.hiddenSize);
  const std::uint64_t weights = 2 * parameters;
  const std::uint64_t budget = o.maxBytes ? o.maxBytes : physicalMemoryBytes() / 2;
  c.shift = o.inputs == CalibrationOptions::Inputs::Shift ||
            (o.inputs == CalibrationOptions::Inputs::Auto && cfg.numExperts <= 0 &&
             weights + 2 * (blockGramBytes(cfg) + hidden) <= budget);
  c.memoryBytes = (c.shift ? 2 : 1) * (blockGramBytes(cfg) + hidden) + (c.shift ? weights : 0);
  return c;
}

std::string_view calibrationInputsName(CalibrationOptions::Inputs inputs) {
  switch (inputs) {
    case CalibrationOptions::Inputs::Auto: return "auto";
    case CalibrationOptions::Inputs::Original: return "original";
    case CalibrationOptions::Inputs::Compressed: return "compressed";
    case CalibrationOptions::Inputs::Shift: return "shift";
  }
  return "auto";
}

std::optional<CalibrationOptions::Inputs> parseCalibrationInputs(std::string_view name) {
  for (auto i : {CalibrationOptions::Inputs::Auto, CalibrationOptions::Inputs::Original,
                 CalibrationOptions::Inputs::Compressed, CalibrationOptions::Inputs::Shift})
    if (calibrationInputsName(i) == name) return i;
  return std::nullopt;
}

SelfCalibration::SelfCalibration(const ModelSource& source, ThreadPool& pool, const CalibrationOptions& options)
    : source_(source), pool_(pool), o_(options), label_(source.input().string()) {
  const auto start = std::chrono::steady_clock::now();
  const bool given = !o_.texts.empty();
  if (given) {
    o_.sequences = static_cast<std::int64_t>(o_.texts.size());
    o_.length = 0;
    for (const auto& t : o_.texts) {
      if (t.size() < 2) fail(Errc::InvalidArgument, "calibration needs at least one text of at least 2 tokens");
      o_.length = std::max<std::int64_t>(o_.length, static_cast<std::int64_t>(t.size()));
    }
  }
  lm_ = loadForTexts(source, pool, o_, weights_);
  const ModelConfig& cfg = weights_->config();
  // The memory, known from the config: refuse before the model writes a token rather than after.
  budget_ = o_.maxBytes ? o_.maxBytes : physicalMemoryBytes() / 2;
  const std::uint64_t hiddenBytes = 4ull * static_cast<std::uint64_t>(o_.sequences) *
                                    static_cast<std::uint64_t>(o_.length) * static_cast<std::uint64_t>(cfg.hiddenSize);
  // Auto: shift where it fits, and not for mixture-of-experts models, whose routing may send a token to other
  // experts in the compressed model than in the original (the inputs would not pair up).
  if (o_.inputs == CalibrationOptions::Inputs::Auto)
    o_.inputs = cfg.numExperts <= 0 && lm_->weightBytes() + 2 * (blockGramBytes(cfg) + hiddenBytes) <= budget_
                    ? CalibrationOptions::Inputs::Shift
                    : CalibrationOptions::Inputs::Original;
  const bool shift = o_.inputs == CalibrationOptions::Inputs::Shift;
  if (shift && cfg.numExperts > 0)
    throw Error(Errc::Unsupported,
                fmt::format("{}: the shift inputs do not support mixture-of-experts models (the compressed model may "
                            "route a token to other experts than the original); choose the original inputs", label_),
                Setting::CalibrationInputs);
  const std::uint64_t needed = (shift ? 2 : 1) * (blockGramBytes(cfg) + hiddenBytes) + (shift ? lm_->weightBytes() : 0);
  if (needed > budget_)
    fail(Errc::InvalidArgument,
         "{}: calibration statistics would need {} of memory, more than the budget of {}; compress without "
         "calibration or with fewer calibration texts",
         label_, formatBytes(needed), formatBytes(budget_));
  budget_ -= (shift ? 2 : 1) * hiddenBytes + (shift ? lm_->weightBytes() : 0);
  // Passes that go on from the last one's stage (resumePasses) keep per token at most the attention output, the
  // residual and the MLP's input, or the residual and the MLP's inner activation: only where that fits beside one
  // block's statistics.
  if (o_.resumePasses && o_.inputs != CalibrationOptions::Inputs::Original && cfg.numExperts <= 0) {
    const std::uint64_t perToken = std::max<std::uint64_t>(
        {static_cast<std::uint64_t>(cfg.numHeads * cfg.headDim), 2 * static_cast<std::uint64_t>(cfg.hiddenSize),
         static_cast<std::uint64_t>(cfg.hiddenSize + cfg.intermediateSize)});
    const std::uint64_t progressBytes = (shift ? 2 : 1) * 4 * perToken * static_cast<std::uint64_t>(o_.sequences) *
                                        static_cast<std::uint64_t>(o_.length);
    if (progressBytes + (shift ? 2 : 1) * blockGramBytes(cfg) <= budget_) {
      resume_ = true;
      budget_ -= progressBytes;
    }
  }
  texts_ = given ? std::move(o_.texts) : writeTexts(*weights_, *lm_, pool, o_, 0, o_.sequences * o_.length);
  o_.texts.clear();
  for (const auto& ids : texts_) {
    if (o_.keepGoing && !o_.keepGoing()) fail(Errc::Cancelled, "calibration cancelled");
    hidden_.push_back(lm_->embed(ids));
  }
  if (o_.inputs == CalibrationOptions::Inputs::Shift) {
    model::LoadOptions lo;
    lo.contextLength = o_.length;
    original_ = model::loadCausalLM(*weights_, pool, lo);
    hiddenOriginal_ = hidden_;
  }
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

SelfCalibration::~SelfCalibration() = default;

std::uint64_t SelfCalibration::tokens() const {
  std::uint64_t n = 0;
  for (const auto& t : texts_) n += t.size();
  return n;
}

// Runs block layer_ over every text: in place (the texts move on to the next block) or on a copy (statistics
// only), observing its inputs into fresh statistics when `observe`. A copy pass may stop once the inputs of stage
// `stopAfterStage` have been seen (the weights after it would be stale before they are asked for anyway).
void SelfCalibration::gather(std::int64_t layer, bool observe, bool inPlace, int stopAfterStage) {
  if (inPlace) stopAfterStage = -1;
  const auto start = std::chrono::steady_clock::now();
  std::map<std::string, std::shared_ptr<quant::InputGram>> grams;
  std::uint64_t bytes = 0;
  // Inputs::Shift: the original model's layer inputs of the current text, by weight, and how far they are read.
  std::map<std::string, std::pair<std::vector<float>, std::size_t>> originalInputs;  // inputs, read offset
  if (observe)
    lm_->setInputObserver([&](std::span<const std::string* const> names, const float* x, std::int64_t n,
                              std::int64_t cols) {
      if (names.empty() || names.front()->empty()) return;
      auto it = grams.find(*names.front());
      if (it == grams.end()) {
        const std::uint64_t b = (original_ ? 16ull : 8ull) * static_cast<std::uint64_t>(cols) * static_cast<std::uint64_t>(cols);
        if (bytes + b > budget_)
          fail(Errc::InvalidArgument,
               "{}: calibration statistics need at least {} of memory, more than the budget of {}; compress without "
               "calibration",
               label_, formatBytes(bytes + b), formatBytes(budget_));
        bytes += b;
        auto g = std::make_shared<quant::InputGram>(cols);
        for (const std::string* name : names) grams.emplace(*name, g);
        it = grams.find(*names.front());
      }
      if (!original_) {
        it->second->add(x, n, &pool_);
        return;
      }
      auto in = originalInputs.find(*names.front());
      const auto count = static_cast<std::size_t>(n * cols);
      if (in == originalInputs.end() || in->second.second + count > in->second.first.size())
        throw Error(Errc::Unsupported,
                    fmt::format("{}: the shift inputs need the same layer inputs in the original and the compressed "
                                "model (mixture-of-experts routing differs)", label_),
                    Setting::CalibrationInputs);
      it->second->addShift(in->second.first.data() + in->second.second, x, n, &pool_);
      in->second.second += count;
    });
  struct Unobserve {
    model::CausalLM& lm;
    ~Unobserve() { lm.setInputObserver({}); }
  } unobserve{*lm_};
  // The original model runs each text first and keeps its layer inputs for the compressed model's pass to pair with,
  // position by position.
  if (original_ && observe)
    original_->setInputObserver([&](std::span<const std::string* const> names, const float* x, std::int64_t n,
                                    std::int64_t cols) {
      if (names.empty() || names.front()->empty()) return;
      auto& v = originalInputs[*names.front()].first;
      v.insert(v.end(), x, x + n * cols);
    });
  if (!resume_ || layer != progressLayer_) forgetProgress();
  progressLayer_ = layer;
  struct UnobserveOriginal {
    model::CausalLM* lm;
    ~UnobserveOriginal() {
      if (lm) lm->setInputObserver({});
    }
  } unobserveOriginal{original_.get()};
  std::vector<float> copy, copyOriginal;
  for (std::size_t t = 0; t < hidden_.size(); ++t) {
    if (o_.keepGoing && !o_.keepGoing()) fail(Errc::Cancelled, "calibration cancelled");
    const std::int64_t n = static_cast<std::int64_t>(hidden_[t].size()) / lm_->hiddenSize();
    if (original_) {
      originalInputs.clear();
      float* data = hiddenOriginal_[t].data();
      if (!inPlace) {
        copyOriginal = hiddenOriginal_[t];
        data = copyOriginal.data();
      }
      original_->runLayer(layer, data, n, stopAfterStage, resume_ ? &progressOriginal_[t] : nullptr);
    }
    float* data = hidden_[t].data();
    if (!inPlace) {
      copy = hidden_[t];
      data = copy.data();
    }
    lm_->runLayer(layer, data, n, stopAfterStage, resume_ ? &progress_[t] : nullptr);
    if (o_.progress) {
      Progress p;
      p.phase = Phase::Calibrate;
      p.unit = Unit::Texts;
      p.done = t + 1;
      p.total = hidden_.size();
      p.pass = {layer, passes_ + 1, static_cast<std::int64_t>(t + 1), static_cast<std::int64_t>(hidden_.size())};
      o_.progress(p);
    }
  }
  passes_ = inPlace ? 0 : passes_ + 1;  // in place: the texts move on to the next block
  if (observe) {
    // A pass that went on from a later stage than the block's input observed only the stages after it: the
    // statistics of the earlier ones stay (their staleness is tracked as before).
    for (const auto& [name, g] : grams) gatheredAt_[name] = static_cast<int>(replacedStages_.size());
    grams.merge(grams_);
    grams_ = std::move(grams);
    gatheredThrough_ = stopAfterStage < 0 ? kLastStage : stopAfterStage;
    std::set<const quant::InputGram*> held;  // the new statistics and those kept (at least `bytes`)
    std::uint64_t heldBytes = 0;
    for (const auto& [name, g] : grams_)
      if (held.insert(g.get()).second)
        heldBytes += (original_ ? 16ull : 8ull) * static_cast<std::uint64_t>(g->n) * static_cast<std::uint64_t>(g->n);
    peakBytes_ = std::max(peakBytes_, heldBytes);
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::shared_ptr<const quant::InputGram> SelfCalibration::gram(const std::string& weight) {
  const std::int64_t layer = blockOfWeight(weight);
  if (layer < 0 || layer >= lm_->numLayers()) return nullptr;
  const bool original = o_.inputs == CalibrationOptions::Inputs::Original;
  const int stage = calibrationStage(weight);
  const int passStop = o_.partialPasses ? stage : -1;  // statistics passes go as far as this weight's stage
  if (layer < gramLayer_ || (gramLayer_ < 0 && layer < layer_))
    fail(Errc::InvalidArgument, "{}: calibration statistics of \"{}\" asked for after block {}", label_, weight,
         std::max(gramLayer_, layer_));
  if (layer != gramLayer_) {
    grams_.clear();
    gatheredAt_.clear();
    replacedStages_.clear();
    for (; layer_ < layer; ++layer_) gather(layer_, false, true);
    // The original inputs: statistics and the next block's inputs in one pass. The compressed model's: a pass per
    // stage whose inputs changed (below), and one more to move on.
    gather(layer_, true, original, passStop);  // (an in-place pass always runs whole)
    if (original) ++layer_;
    gramLayer_ = layer;
  } else if (!original) {
    // Statistics taken before a weight that feeds this one was replaced are stale (a weight the engine does not
    // observe has none to refresh), and a pass that stopped before this weight's stage has none.
    const auto at = gatheredAt_.find(weight);
    bool stale = stage > gatheredThrough_;
    if (at != gatheredAt_.end())
      for (std::size_t i = static_cast<std::size_t>(at->second); !stale && i < replacedStages_.size(); ++i)
        stale = replacedStages_[i] < stage;
    if (stale) gather(layer_, true, false, passStop);
  }
  const auto it = grams_.find(weight);
  return it == grams_.end() ? nullptr : it->second;
}

void SelfCalibration::forgetProgress() {
  progress_.assign(hidden_.size(), {});
  if (original_) progressOriginal_.assign(hidden_.size(), {});
}

void SelfCalibration::replace(const std::string& weight, const model::Linear& compressed) {
  if (o_.inputs == CalibrationOptions::Inputs::Original) return;
  const std::int64_t layer = blockOfWeight(weight);
  if (layer < layer_)
    fail(Errc::InvalidArgument, "{}: \"{}\" replaced after its block was run", label_, weight);
  lm_->replaceWeight(weight, compressed);
  if (layer == gramLayer_) replacedStages_.push_back(calibrationStage(weight));
  // The passes' kept values were computed with this weight where it comes before them; the original model's
  // are dropped too, so that both models go on from the same stage and observe the same inputs.
  // (Every text's pass stopped at the same stage: the first text's progress tells it.)
  if (layer == progressLayer_ && !progress_.empty() && calibrationStage(weight) < progress_.front().stage)
    forgetProgress();
}

std::vector<std::vector<std::int32_t>> writeSelfTexts(const ModelSource& source, ThreadPool& pool,
                                                      const CalibrationOptions& options) {
  CalibrationOptions o = options;
  std::unique_ptr<model::WeightSource> weights;
  const auto lm = loadForTexts(source, pool, o, weights);
  return writeTexts(*weights, *lm, pool, o, 0, o.sequences * o.length);
}

std::vector<std::vector<std::int32_t>> cutCalibrationTexts(const std::vector<std::int32_t>& ids, std::int64_t length,
                                                           std::int64_t maxTexts, std::optional<std::int32_t> bos,
                                                           const std::string& label) {
  if (length < 2) fail(Errc::InvalidArgument, "calibration texts need at least 2 tokens");
  const std::int64_t body = bos ? length - 1 : length;  // tokens of the text in each window
  const std::int64_t windows = static_cast<std::int64_t>(ids.size()) / body;
  if (windows < 1)
    fail(Errc::InvalidArgument, "{}: the text has {} tokens, fewer than one calibration text of {}", label, ids.size(),
         body);
  const std::int64_t count = std::min(windows, std::max<std::int64_t>(maxTexts, 1));
  std::vector<std::vector<std::int32_t>> texts;
  for (std::int64_t k = 0; k < count; ++k) {
    const std::int64_t w = k * windows / count;  // evenly over the text's windows
    std::vector<std::int32_t> t;
    if (bos) t.push_back(*bos);
    t.insert(t.end(), ids.begin() + w * body, ids.begin() + (w + 1) * body);
    texts.push_back(std::move(t));
  }
  return texts;
}

std::vector<std::vector<std::int32_t>> calibrationTextsOf(std::string_view text, const text::Tokenizer& tokenizer,
                                                          std::int64_t length, std::int64_t maxTexts,
                                                          std::optional<std::int32_t> bos, const std::string& label,
                                                          std::size_t wholeBytes) {
  auto encode = [&](std::string_view piece) {
    try {
      return tokenizer.encode(std::string(piece), false);
    } catch (const Error& e) {
      throw e.withContext(label);
    }
  };
  if (text.size() <= wholeBytes) return cutCalibrationTexts(encode(text), length, maxTexts, bos, label);
  if (length < 2) fail(Errc::InvalidArgument, "calibration texts need at least 2 tokens");
  const std::int64_t body = bos ? length - 1 : length;
  const std::size_t parts = static_cast<std::size_t>(std::max<std::int64_t>(maxTexts, 1));
  auto boundary = [&](std::size_t at) {  // back to the start of a UTF-8 character
    while (at > 0 && at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
    return at;
  };
  std::vector<std::vector<std::int32_t>> texts;
  for (std::size_t k = 0; k < parts; ++k) {
    const std::size_t end = boundary((k + 1) * text.size() / parts);
    std::size_t start = boundary(k * text.size() / parts);
    if (k > 0) {  // from the part's first line start, where it has one
      const std::size_t nl = text.find('\n', start);
      if (nl != std::string_view::npos && nl + 1 < end) start = nl + 1;
    }
    for (std::size_t bytes = 8 * static_cast<std::size_t>(body);; bytes *= 2) {
      const std::size_t stop = boundary(std::min(end, start + bytes));
      const auto ids = encode(text.substr(start, stop - start));
      if (static_cast<std::int64_t>(ids.size()) >= body) {
        std::vector<std::int32_t> t;
        if (bos) t.push_back(*bos);
        t.insert(t.end(), ids.begin(), ids.begin() + body);
        texts.push_back(std::move(t));
        break;
      }
      if (stop >= end) break;  // the part is too short for one window
    }
  }
  if (texts.empty())
    fail(Errc::InvalidArgument, "{}: no part of the text holds a calibration text of {} tokens", label, body);
  return texts;
}

Calibration calibrateSelf(const ModelSource& source, ThreadPool& pool, const CalibrationOptions& options) {
  CalibrationOptions o = options;
  o.inputs = CalibrationOptions::Inputs::Original;
  SelfCalibration self(source, pool, o);
  Calibration cal;
  cal.texts = self.texts();
  std::set<const quant::InputGram*> seen;
  for (const ModelTensor& t : source.tensors())
    if (auto g = self.gram(t.info->name)) {
      if (seen.insert(g.get()).second) cal.bytes += 8ull * static_cast<std::uint64_t>(g->n * g->n);
      cal.grams.emplace(t.info->name, std::move(g));
    }
  cal.seconds = self.seconds();
  return cal;
}

}  // namespace eq
