#include "pipeline/lm.h"

#include "common/error.h"
#include "common/numerics.h"
#include "pipeline/model_session.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace eq {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// Decoded text ends in U+FFFD while a character's bytes are still arriving: hold such a tail back.
std::size_t withoutTrailingReplacement(const std::string& s) {
  static const std::string kReplacement = "\uFFFD";
  std::size_t end = s.size();
  while (end >= kReplacement.size() && s.compare(end - kReplacement.size(), kReplacement.size(), kReplacement) == 0)
    end -= kReplacement.size();
  return end;
}

}  // namespace

text::Tokenizer loadTokenizer(const fs::path& path) {
  std::error_code ec;
  if (path.extension() == ".json" && fs::is_regular_file(path, ec)) return text::Tokenizer::fromFile(path);
  // a folder's tokenizer needs no weights beside it (a tokenizer's own folder)
  if (fs::is_regular_file(path / "tokenizer.json", ec)) return text::Tokenizer::fromFile(path / "tokenizer.json");
  return ModelSession::open(path)->takeTokenizer();
}

std::vector<std::int32_t> loadEosIds(const fs::path& path) { return ModelSession::open(path)->eosIds(); }

text::SamplingParams loadSamplingDefaults(const fs::path& path) { return ModelSession::open(path)->samplingDefaults(); }

std::string_view stopReasonName(StopReason r) {
  switch (r) {
    case StopReason::Eos: return "eos";
    case StopReason::StopString: return "stop_string";
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::ContextFull: return "context_full";
  }
  return "max_tokens";
}

namespace {

struct Windows {
  std::vector<std::int32_t> ids;
  std::int64_t count = 0;
};

// Tokenized text cut into the windows of ENTQUANT.md section 8.
Windows cutWindows(const model::CausalLM& lm, std::vector<std::int32_t> ids, const PerplexityOptions& o) {
  if (o.ctx < 2) fail(Errc::InvalidArgument, "the context must be at least 2 tokens (got {})", o.ctx);
  if (o.ctx > lm.contextLength())
    fail(Errc::InvalidArgument, "a context of {} tokens exceeds the model's {}", o.ctx, lm.contextLength());
  Windows w{std::move(ids), 0};
  w.count = static_cast<std::int64_t>(w.ids.size()) / o.ctx;
  if (o.maxWindows > 0) w.count = std::min(w.count, o.maxWindows);
  if (w.count == 0)
    fail(Errc::InvalidArgument, "the text has {} tokens, fewer than one window of {}", w.ids.size(), o.ctx);
  return w;
}

void finish(PerplexityResult& r, const Windows& w, Clock::time_point t0) {
  r.tokens = static_cast<std::int64_t>(w.ids.size());
  r.ppl = std::exp(r.nll / static_cast<double>(r.scored));
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

PerplexityResult perplexity(model::CausalLM& lm, const text::Tokenizer& tok, const std::string& text,
                            const PerplexityOptions& o) {
  return perplexityOfIds(lm, tok.encode(text, false), o);
}

PerplexityResult perplexityOfIds(model::CausalLM& lm, std::vector<std::int32_t> ids, const PerplexityOptions& o) {
  const auto t0 = Clock::now();
  const Windows w = cutWindows(lm, std::move(ids), o);
  PhaseProgress progress(o.progress, Phase::Evaluate, Unit::Windows, static_cast<std::uint64_t>(w.count));
  PerplexityResult r;
  const std::int64_t v = lm.vocabSize();
  std::vector<double> lp;
  for (std::int64_t k = 0; k < w.count; ++k) {
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "perplexity cancelled");
    lm.reset();
    const std::span<const std::int32_t> window(w.ids.data() + k * o.ctx, static_cast<std::size_t>(o.ctx));
    const auto logits = lm.forward(window, o.keepGoing);
    for (std::int64_t i = 0; i + 1 < o.ctx; ++i) {  // position i predicts token i+1
      logSoftmax(logits.data() + i * v, v, lp);
      r.nll -= lp[static_cast<std::size_t>(window[static_cast<std::size_t>(i + 1)])];
      ++r.scored;
    }
    ++r.windows;
    progress.report(static_cast<std::uint64_t>(k + 1));
  }
  lm.reset();
  finish(r, w, t0);
  return r;
}

CompareResult compareModels(model::CausalLM& a, model::CausalLM& b, const text::Tokenizer& tok,
                            const std::string& text, const PerplexityOptions& o) {
  const auto t0 = Clock::now();
  if (a.vocabSize() != b.vocabSize())
    fail(Errc::InvalidArgument, "the models' vocabularies differ ({} and {} entries): not the same model",
         a.vocabSize(), b.vocabSize());
  if (o.ctx > b.contextLength())
    fail(Errc::InvalidArgument, "a context of {} tokens exceeds the model's {}", o.ctx, b.contextLength());
  const Windows w = cutWindows(a, tok.encode(text, false), o);
  PhaseProgress progress(o.progress, Phase::Evaluate, Unit::Windows, static_cast<std::uint64_t>(w.count));
  CompareResult r;
  const std::int64_t v = a.vocabSize();
  std::vector<double> lpa, lpb;
  double kl = 0;
  std::int64_t agree = 0;
  for (std::int64_t k = 0; k < w.count; ++k) {
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "comparison cancelled");
    const double kl0 = kl, nllA0 = r.original.nll, nllB0 = r.compressed.nll;
    const std::int64_t agree0 = agree;
    const std::span<const std::int32_t> window(w.ids.data() + k * o.ctx, static_cast<std::size_t>(o.ctx));
    a.reset();
    b.reset();
    const auto la = a.forward(window, o.keepGoing);
    const auto lb = b.forward(window, o.keepGoing);
    for (std::int64_t i = 0; i + 1 < o.ctx; ++i) {
      const float* ra = la.data() + i * v;
      const float* rb = lb.data() + i * v;
      logSoftmax(ra, v, lpa);
      logSoftmax(rb, v, lpb);
      const auto next = static_cast<std::size_t>(window[static_cast<std::size_t>(i + 1)]);
      r.original.nll -= lpa[next];
      r.compressed.nll -= lpb[next];
      double d = 0;
      for (std::size_t t = 0; t < lpa.size(); ++t) d += std::exp(lpa[t]) * (lpa[t] - lpb[t]);
      kl += std::max(d, 0.0);  // rounding can make a zero divergence slightly negative
      agree += (std::max_element(ra, ra + v) - ra) == (std::max_element(rb, rb + v) - rb);
      ++r.original.scored;
      ++r.compressed.scored;
    }
    ++r.original.windows;
    ++r.compressed.windows;
    const double scored = static_cast<double>(o.ctx - 1);
    r.windows.push_back({(kl - kl0) / scored, std::exp((r.original.nll - nllA0) / scored),
                         std::exp((r.compressed.nll - nllB0) / scored), static_cast<double>(agree - agree0) / scored});
    progress.report(static_cast<std::uint64_t>(k + 1));
  }
  a.reset();
  b.reset();
  finish(r.original, w, t0);
  finish(r.compressed, w, t0);
  r.meanKl = kl / static_cast<double>(r.original.scored);
  r.top1Agreement = static_cast<double>(agree) / static_cast<double>(r.original.scored);
  r.seconds = r.original.seconds;
  return r;
}

GenerateResult generate(model::CausalLM& lm, const text::Tokenizer& tok, const std::vector<std::int32_t>& prompt,
                        const GenerateOptions& o) {
  GenerateResult r;
  if (prompt.empty()) fail(Errc::InvalidArgument, "the prompt is empty");
  if (static_cast<std::int64_t>(prompt.size()) >= lm.contextLength())
    fail(Errc::InvalidArgument, "the prompt has {} tokens; the context holds {}", prompt.size(), lm.contextLength());
  text::Sampler sampler(o.sampling);
  const text::StopStrings stops(o.stopStrings);
  std::vector<std::int32_t> history(prompt);
  auto t0 = Clock::now();
  std::size_t cached = o.reuseCache ? static_cast<std::size_t>(lm.position()) : 0;
  if (cached >= prompt.size()) cached = 0;  // nothing new to run: start over
  if (cached == 0) lm.reset();
  r.promptTokens = static_cast<std::int64_t>(prompt.size() - cached);
  std::vector<float> logits = lm.forward(std::span(prompt).subspan(cached), o.keepGoing, model::CausalLM::LogitRows::Last);
  r.promptSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  t0 = Clock::now();
  const std::int64_t v = lm.vocabSize();
  std::size_t shown = 0;
  // Incremental detokenization (as HF's streamers do): decode only the tokens since the last emitted piece, with
  // a few before them for context, so each step costs O(1) instead of re-decoding the whole answer. prefixOffset
  // .. readOffset is the context already emitted; a piece ending in U+FFFD waits for the rest of its character.
  std::size_t prefixOffset = 0, readOffset = 0;
  std::string decoded;  // everything decoded so far
  r.stopReason = StopReason::MaxTokens;
  for (std::int64_t step = 0; step < o.maxTokens; ++step) {
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "generation cancelled");
    const std::span<const float> last(logits.data() + logits.size() - static_cast<std::size_t>(v), static_cast<std::size_t>(v));
    const std::int32_t id = sampler.sample(last, history);
    if (std::find(o.eosIds.begin(), o.eosIds.end(), id) != o.eosIds.end()) {
      r.stopReason = StopReason::Eos;
      break;
    }
    r.ids.push_back(id);
    history.push_back(id);
    const std::vector<std::int32_t> context(r.ids.begin() + static_cast<std::ptrdiff_t>(prefixOffset),
                                            r.ids.begin() + static_cast<std::ptrdiff_t>(readOffset));
    const std::string before = tok.decode(context, true);
    const std::string after = tok.decode({r.ids.begin() + static_cast<std::ptrdiff_t>(prefixOffset), r.ids.end()}, true);
    if (after.size() > before.size() && withoutTrailingReplacement(after) == after.size()) {
      decoded += after.substr(before.size());
      prefixOffset = readOffset;
      readOffset = r.ids.size();
    }
    // Until a character completes, the text so far includes its lossy U+FFFD, as a full decode would.
    const std::string textSoFar = readOffset == r.ids.size() ? decoded : decoded + after.substr(std::min(before.size(), after.size()));
    if (const auto at = stops.find(textSoFar); at != std::string::npos) {
      r.text = textSoFar.substr(0, at);
      r.stopReason = StopReason::StopString;
      break;
    }
    r.text = textSoFar;
    const std::size_t safe = std::min(stops.safeLength(textSoFar), withoutTrailingReplacement(textSoFar));
    if (o.onText && safe > shown) {
      o.onText(textSoFar.substr(shown, safe - shown));
      shown = safe;
    }
    if (lm.position() >= lm.contextLength()) {
      r.stopReason = StopReason::ContextFull;
      break;
    }
    logits = lm.forward(std::span(&history.back(), 1), o.keepGoing);
  }
  if (o.onText && r.text.size() > shown) o.onText(r.text.substr(shown));
  r.generationSeconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

}  // namespace eq
