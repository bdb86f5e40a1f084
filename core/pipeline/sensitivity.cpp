#include "pipeline/sensitivity.h"

#include "common/error.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "model/arch.h"
#include "model/weight_source.h"
#include "pipeline/calibrate.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace eq {

SensitivityProbe::SensitivityProbe(const ModelSource& source, ThreadPool& pool,
                                   std::vector<std::vector<std::int32_t>> texts, std::function<bool()> keepGoing,
                                   std::uint64_t maxBytes)
    : source_(source), pool_(pool), keepGoing_(std::move(keepGoing)), texts_(std::move(texts)) {
  const auto start = std::chrono::steady_clock::now();
  const std::string label = source_.input().string();
  std::int64_t longest = 0;
  std::uint64_t tokens = 0;
  for (const auto& t : texts_) {
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(t.size()));
    tokens += t.size();
  }
  if (longest < 2) fail(Errc::InvalidArgument, "{}: sensitivity needs a text of at least 2 tokens", label);
  weights_ = model::WeightSource::of(source_);
  const ModelConfig& cfg = weights_->config();
  const std::uint64_t budget = maxBytes ? maxBytes : physicalMemoryBytes() / 4;
  const std::uint64_t needed = 4 * tokens *
      (static_cast<std::uint64_t>(cfg.hiddenSize) * static_cast<std::uint64_t>(cfg.numLayers) +
       static_cast<std::uint64_t>(cfg.vocabSize));
  if (needed > budget)
    fail(Errc::InvalidArgument,
         "{}: measuring the weights' sensitivity on {} tokens would need {} of memory, more than the budget of {}; "
         "use the depth allocation instead",
         label, tokens, formatBytes(needed), formatBytes(budget));
  model::LoadOptions lo;
  lo.contextLength = longest;
  lm_ = model::loadCausalLM(*weights_, pool_, lo);
  if (lm_->contextLength() < longest)
    fail(Errc::InvalidArgument, "{}: a text of {} tokens exceeds the model's context of {}", label, longest,
         lm_->contextLength());
  const std::int64_t layers = lm_->numLayers(), v = lm_->vocabSize();
  hidden_.assign(static_cast<std::size_t>(layers), {});
  std::vector<double> lp;
  for (const auto& ids : texts_) {
    if (keepGoing_ && !keepGoing_()) fail(Errc::Cancelled, "sensitivity measurement cancelled");
    std::vector<float> x = lm_->embed(ids);
    const auto n = static_cast<std::int64_t>(ids.size());
    for (std::int64_t l = 0; l < layers; ++l) {
      hidden_[static_cast<std::size_t>(l)].push_back(x);
      lm_->runLayer(l, x.data(), n);
    }
    const std::vector<float> logits = lm_->head(x.data(), n);
    std::vector<float> out(static_cast<std::size_t>(n * v));
    for (std::int64_t i = 0; i < n; ++i) {
      logSoftmax(logits.data() + i * v, v, lp);
      std::copy(lp.begin(), lp.end(), out.begin() + i * v);
    }
    logProbs_.push_back(std::move(out));
  }
  seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

SensitivityProbe::~SensitivityProbe() = default;

std::uint64_t SensitivityProbe::tokens() const {
  std::uint64_t n = 0;
  for (const auto& t : texts_) n += t.size();
  return n;
}

double SensitivityProbe::kl(const std::string& weight, const model::Linear& probe) {
  const auto start = std::chrono::steady_clock::now();
  const std::int64_t block = blockOfWeight(weight), layers = lm_->numLayers(), v = lm_->vocabSize();
  if (block < 0 || block >= layers)
    fail(Errc::InvalidArgument, "{}: \"{}\" is not a weight of the model's blocks; its sensitivity cannot be measured",
         source_.input().string(), weight);
  const model::Linear original = weights_->linear(weight);
  lm_->replaceWeight(weight, probe);
  struct PutBack {
    model::CausalLM& lm;
    const std::string& name;
    const model::Linear& w;
    ~PutBack() {
      try {
        lm.replaceWeight(name, w);
      } catch (...) {  // the same weight it replaced: cannot fail
      }
    }
  } putBack{*lm_, weight, original};
  double sum = 0;
  std::uint64_t positions = 0;
  std::vector<float> x;
  for (std::size_t t = 0; t < texts_.size(); ++t) {
    if (keepGoing_ && !keepGoing_()) fail(Errc::Cancelled, "sensitivity measurement cancelled");
    x = hidden_[static_cast<std::size_t>(block)][t];
    const auto n = static_cast<std::int64_t>(texts_[t].size());
    for (std::int64_t l = block; l < layers; ++l) lm_->runLayer(l, x.data(), n);
    const std::vector<float> logits = lm_->head(x.data(), n);
    const std::vector<float>& ref = logProbs_[t];
    std::vector<double> perPosition(static_cast<std::size_t>(n - 1));
    pool_.parallelFor(perPosition.size(), [&](std::size_t i) {
      thread_local std::vector<double> lq;
      logSoftmax(logits.data() + static_cast<std::int64_t>(i) * v, v, lq);
      const float* lp = ref.data() + static_cast<std::int64_t>(i) * v;
      double d = 0;
      for (std::int64_t k = 0; k < v; ++k) d += std::exp(static_cast<double>(lp[k])) * (lp[k] - lq[static_cast<std::size_t>(k)]);
      perPosition[i] = std::max(d, 0.0);  // rounding can make a zero divergence slightly negative
    });
    for (const double d : perPosition) sum += d;
    positions += perPosition.size();
  }
  seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return positions ? sum / static_cast<double>(positions) : 0.0;
}

}  // namespace eq
