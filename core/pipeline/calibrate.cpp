#include "pipeline/calibrate.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "format/model_config.h"
#include "model/causal_lm.h"
#include "model/weight_source.h"
#include "text/sampling.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <thread>

namespace eq {
namespace {

std::uint64_t physicalMemory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), size = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size) : 8ull << 30;
}

// 8 n^2 bytes for each distinct layer input the engine will observe: per block the attention input (q, k, v), the
// attention output (o), and the MLP's input (gate, up) and inner activation (down), per expert for MoE.
std::uint64_t gramBytes(const ModelConfig& c) {
  auto sq = [](std::int64_t n) { return 8ull * static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(n); };
  const std::int64_t inner = c.numExperts > 0 && c.moeIntermediateSize > 0 ? c.moeIntermediateSize : c.intermediateSize;
  const std::uint64_t mlp = sq(c.hiddenSize) + sq(inner);
  const std::uint64_t block = sq(c.hiddenSize) + sq(c.numHeads * c.headDim) +
                              (c.numExperts > 0 ? static_cast<std::uint64_t>(c.numExperts) * mlp : mlp);
  return static_cast<std::uint64_t>(std::max<std::int64_t>(c.numLayers, 0)) * block;
}

// The texts: text s starts at BOS (or a token drawn uniformly where the model has none) and continues by sampling
// at temperature 1 with seed (seed, s), through end-of-text tokens, to o.length tokens. A small model writes
// several texts at once, one copy of it per thread (one-token steps of a small model gain nothing from splitting
// its rows over threads); a large one writes them in turn on the whole pool. Progress is reported on the calling
// thread.
std::vector<std::vector<std::int32_t>> writeTexts(const model::WeightSource& weights, model::CausalLM& lm,
                                                  ThreadPool& pool, const CalibrationOptions& o, std::int64_t done,
                                                  std::int64_t total) {
  const std::uint64_t modelBytes = lm.weightBytes();
  const unsigned streams = modelBytes <= (512ull << 20) && modelBytes * pool.size() <= physicalMemory() / 4
                               ? std::max(1u, std::min<unsigned>(pool.size(), static_cast<unsigned>(o.sequences)))
                               : 1u;
  std::vector<std::vector<std::int32_t>> texts(static_cast<std::size_t>(o.sequences));
  std::atomic<std::int64_t> written{0};
  std::atomic<bool> stop{false};
  auto cancelled = [&] { return stop.load() || (o.keepGoing && !o.keepGoing()); };
  auto write = [&](model::CausalLM& m, std::int64_t s) {
    text::SamplingParams sp;
    sp.temperature = 1.0f;
    sp.seed = o.seed * 1000003 + static_cast<std::uint64_t>(s);
    text::Sampler sampler(sp);
    const auto bos = weights.config().bosTokenId;
    std::vector<std::int32_t> ids{bos ? static_cast<std::int32_t>(*bos)
                                      : static_cast<std::int32_t>(sp.seed % static_cast<std::uint64_t>(m.vocabSize()))};
    m.reset();
    std::vector<float> logits = m.forward(ids);
    while (static_cast<std::int64_t>(ids.size()) < o.length) {
      if (cancelled()) fail(Errc::Cancelled, "calibration cancelled");
      ids.push_back(sampler.sample(logits, {}));
      logits = m.forward(std::span(&ids.back(), 1));
      ++written;
    }
    ++written;
    texts[static_cast<std::size_t>(s)] = std::move(ids);
  };
  auto report = [&] {
    if (o.progress) o.progress(done + written.load(), total);
  };
  if (streams == 1) {
    for (std::int64_t s = 0; s < o.sequences; ++s) {
      write(lm, s);
      report();
    }
    return texts;
  }
  // One model and one single-thread pool per stream; stream k writes texts k, k + streams, ...
  std::vector<std::exception_ptr> errors(streams);
  std::atomic<unsigned> running{streams};
  std::vector<std::thread> threads;
  model::LoadOptions lo;
  lo.contextLength = o.length;
  for (unsigned k = 0; k < streams; ++k)
    threads.emplace_back([&, k] {
      try {
        ThreadPool one(1);
        const auto m = model::loadCausalLM(weights, one, lo);
        for (std::int64_t s = k; s < o.sequences && !stop; s += streams) write(*m, s);
      } catch (...) {
        errors[k] = std::current_exception();
        stop = true;
      }
      --running;
    });
  while (running.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (o.keepGoing && !o.keepGoing()) stop = true;
    report();
  }
  for (auto& t : threads) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  if (stop) fail(Errc::Cancelled, "calibration cancelled");
  return texts;
}

}  // namespace

Calibration calibrateSelf(const ModelSource& source, ThreadPool& pool, const CalibrationOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  CalibrationOptions o = options;
  if (o.sequences < 1 || o.length == 1 || o.length < 0)
    fail(Errc::InvalidArgument, "calibration needs at least one text of at least 2 tokens");
  const std::string label = source.input().string();
  const auto weights = model::WeightSource::of(source);
  const std::int64_t positions = weights->config().maxPositions;
  if (o.length == 0) o.length = positions > 1 ? std::min<std::int64_t>(512, positions) : 512;
  model::LoadOptions lo;
  lo.contextLength = o.length;
  const auto lm = model::loadCausalLM(*weights, pool, lo);
  if (lm->contextLength() < o.length)
    fail(Errc::InvalidArgument, "{}: calibration texts of {} tokens exceed the model's context of {}", label, o.length,
         lm->contextLength());
  // The statistics' memory, known from the config: refuse before the model writes a token rather than after.
  const std::uint64_t budget = o.maxBytes ? o.maxBytes : physicalMemory() / 2;
  const std::uint64_t needed = gramBytes(weights->config());
  if (needed > budget)
    fail(Errc::InvalidArgument,
         "{}: calibration statistics would need {} of memory, more than the budget of {}; compress without "
         "--calibration",
         label, formatBytes(needed), formatBytes(budget));
  const std::int64_t total = 2 * o.sequences * o.length;
  std::int64_t done = 0;
  auto step = [&](std::int64_t tokens) {
    done += tokens;
    if (o.progress) o.progress(done, total);
  };
  auto cancelled = [&] { return o.keepGoing && !o.keepGoing(); };

  Calibration cal;
  cal.texts = writeTexts(*weights, *lm, pool, o, done, total);
  done = total / 2;
  std::map<std::string, std::shared_ptr<quant::InputGram>> grams;
  lm->setInputObserver([&](std::span<const std::string* const> names, const float* x, std::int64_t n,
                           std::int64_t cols) {
    if (names.empty() || names.front()->empty()) return;
    auto it = grams.find(*names.front());
    if (it == grams.end()) {
      const std::uint64_t bytes = 8ull * static_cast<std::uint64_t>(cols) * static_cast<std::uint64_t>(cols);
      if (cal.bytes + bytes > budget)
        fail(Errc::InvalidArgument,
             "{}: calibration statistics need at least {} of memory, more than the budget of {}; compress without "
             "--calibration",
             label, formatBytes(cal.bytes + bytes), formatBytes(budget));
      cal.bytes += bytes;
      auto g = std::make_shared<quant::InputGram>(cols);
      for (const std::string* name : names) grams.emplace(*name, g);
      it = grams.find(*names.front());
    }
    it->second->add(x, n, &pool);
  });
  for (const auto& ids : cal.texts) {
    if (cancelled()) fail(Errc::Cancelled, "calibration cancelled");
    lm->reset();
    try {
      lm->forward(ids, o.keepGoing);
    } catch (const Error& e) {
      if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "calibration cancelled");  // not "generation cancelled"
      throw;
    }
    step(static_cast<std::int64_t>(ids.size()));
  }
  lm->setInputObserver({});
  for (auto& [name, g] : grams) cal.grams.emplace(name, g);
  cal.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return cal;
}

}  // namespace eq
