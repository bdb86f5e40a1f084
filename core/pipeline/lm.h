// Language-model jobs on a loaded model: perplexity by the protocol of ENTQUANT.md section 8, a comparison of two
// models, and generation with streaming text, sampling, end-of-generation ids and stop strings. Used by
// `entquant ppl / compare / generate / chat` and the GUI's chat pane (callbacks, cancel); the model, its tokenizer
// and defaults come from a ModelSession (pipeline/model_session.h).
#pragma once

#include "common/progress.h"
#include "model/causal_lm.h"
#include "text/sampling.h"
#include "text/tokenizer.h"

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace eq {

// Shortcuts through a ModelSession that loads no engine (pipeline/model_session.h), for any of its inputs:
// the model's tokenizer (or a tokenizer.json file itself), its end-of-generation ids, its sampling defaults.
text::Tokenizer loadTokenizer(const std::filesystem::path& path);
std::vector<std::int32_t> loadEosIds(const std::filesystem::path& path);
text::SamplingParams loadSamplingDefaults(const std::filesystem::path& path);

struct PerplexityOptions {
  std::int64_t ctx = 512;
  std::int64_t maxWindows = 0;  // 0: all
  KeepGoingFn keepGoing;
  ProgressFn progress;  // Phase::Evaluate, after each window
};

struct PerplexityResult {
  double ppl = 0, nll = 0, seconds = 0;
  std::int64_t tokens = 0, windows = 0, scored = 0;
};

// Tokenizes `text` without special tokens, cuts non-overlapping windows of ctx tokens from token 0, runs each from
// an empty cache, and returns exp(mean NLL of tokens 2..ctx of every window). Error if no full window fits.
PerplexityResult perplexity(model::CausalLM& lm, const text::Tokenizer& tok, const std::string& text,
                            const PerplexityOptions& options);
// The same over token ids.
PerplexityResult perplexityOfIds(model::CausalLM& lm, std::vector<std::int32_t> ids, const PerplexityOptions& options);

// One window of a comparison.
struct WindowComparison {
  double meanKl = 0;         // KL(original || compressed) averaged over the window's scored positions
  double pplOriginal = 0, pplCompressed = 0;
  double top1Agreement = 0;
};

struct CompareResult {
  PerplexityResult original, compressed;  // each model's perplexity on the same windows
  std::vector<WindowComparison> windows;  // window by window, in the text's order
  double meanKl = 0;         // mean KL(original || compressed) of the next-token distributions, in nats
  double top1Agreement = 0;  // fraction of scored positions where both models' most likely token is the same
  double seconds = 0;
};

// Runs both models over the windows of perplexity() (same tokenizer, same vocabulary) and compares their
// next-token distributions at every scored position: the quality report after compression. progress counts
// windows; keepGoing is asked between windows and layers. Error(InvalidArgument) if the vocabularies differ.
CompareResult compareModels(model::CausalLM& original, model::CausalLM& compressed, const text::Tokenizer& tok,
                            const std::string& text, const PerplexityOptions& options);

// Why generation stopped.
enum class StopReason : std::uint8_t { Eos, StopString, MaxTokens, ContextFull };
std::string_view stopReasonName(StopReason reason);  // "eos", "stop_string", "max_tokens", "context_full"

struct GenerateOptions {
  std::int64_t maxTokens = 128;
  text::SamplingParams sampling{0.0f};  // greedy unless asked
  std::vector<std::int32_t> eosIds;
  std::vector<std::string> stopStrings;
  std::function<void(const std::string& delta)> onText;  // streamed text, never part of a stop string
  KeepGoingFn keepGoing;  // asked before each token and between layers (a long prompt's prefill stops too)
  // The model's cache already holds the first lm.position() ids of the prompt (the caller checked): only the rest
  // is run. Otherwise the cache is cleared and the whole prompt runs.
  bool reuseCache = false;
};

struct GenerateResult {
  std::string text;
  std::vector<std::int32_t> ids;
  std::int64_t promptTokens = 0;  // prompt tokens run (without those reused from the cache)
  double promptSeconds = 0, generationSeconds = 0;
  StopReason stopReason = StopReason::MaxTokens;
};

GenerateResult generate(model::CausalLM& lm, const text::Tokenizer& tok, const std::vector<std::int32_t>& promptIds,
                        const GenerateOptions& options);

}  // namespace eq
