// entquant ppl MODEL|FILE.eqz --text FILE [--ctx 512] [--max-windows N] [--threads N] [--json]
// entquant generate MODEL|FILE.eqz --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
//                   [--min-p M] [--repetition-penalty R] [--seed S] [--stop TEXT]... [--threads N] [--json]
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "pipeline/lm.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

namespace eq::cli {
namespace {

struct Loaded {
  std::unique_ptr<model::WeightSource> weights;
  std::unique_ptr<model::CausalLM> lm;
  text::Tokenizer tok;
};

Loaded load(const std::string& path, ThreadPool& pool, std::int64_t context) {
  auto weights = model::WeightSource::open(path, pool);
  model::LoadOptions lo;
  lo.contextLength = context;
  auto lm = model::loadCausalLM(*weights, pool, lo);
  return {std::move(weights), std::move(lm), loadTokenizer(path)};
}

unsigned threadsFrom(ArgList& args) {
  const auto t = args.number<int>("--threads");
  if (t && *t < 1) throw UsageError("--threads must be at least 1");
  return t ? static_cast<unsigned>(*t) : 0;
}

}  // namespace

int runPpl(ArgList& args) {
  const bool json = args.flag("--json");
  const auto textPath = args.value("--text");
  PerplexityOptions o;
  if (const auto c = args.number<long long>("--ctx")) o.ctx = *c;
  if (const auto w = args.number<long long>("--max-windows")) o.maxWindows = *w;
  const unsigned threads = threadsFrom(args);
  const auto pos = args.positionals(1, 1);
  if (!textPath) throw UsageError("missing --text FILE");
  if (o.ctx < 2) throw UsageError("--ctx must be at least 2");
  std::ifstream in(*textPath, std::ios::binary);
  if (!in) fail(Errc::NotFound, "{}: cannot be read", *textPath);
  std::ostringstream buf;
  buf << in.rdbuf();
  installCancelHandlers();
  ThreadPool pool(threads);
  Loaded m = load(pos[0], pool, o.ctx);
  ProgressLine line(!json || ::isatty(2));
  o.keepGoing = keepGoing;
  o.progress = [&](std::int64_t done, std::int64_t total) {
    line.update(static_cast<std::size_t>(done - 1), static_cast<std::size_t>(total), "windows", 0, 0, done == total);
  };
  const PerplexityResult r = perplexity(*m.lm, m.tok, buf.str(), o);
  line.finish();
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"ppl", r.ppl}, {"tokens", r.tokens}, {"windows", r.windows},
                                              {"scored", r.scored}, {"ctx", o.ctx}, {"seconds", r.seconds}}.dump(1));
  } else {
    fmt::print("Perplexity {:.4f} over {} windows of {} tokens ({} tokens scored, {} in the text) in {}\n", r.ppl,
               r.windows, o.ctx, r.scored, r.tokens, formatDuration(r.seconds));
  }
  return kExitOk;
}

int runGenerate(ArgList& args) {
  const bool json = args.flag("--json");
  const auto prompt = args.value("--prompt");
  GenerateOptions o;
  if (const auto n = args.number<long long>("--max-tokens")) o.maxTokens = *n;
  if (const auto t = args.number<double>("--temperature")) o.sampling.temperature = static_cast<float>(*t);
  if (const auto k = args.number<int>("--top-k")) o.sampling.topK = *k;
  if (const auto p = args.number<double>("--top-p")) o.sampling.topP = static_cast<float>(*p);
  if (const auto p = args.number<double>("--min-p")) o.sampling.minP = static_cast<float>(*p);
  if (const auto r = args.number<double>("--repetition-penalty")) o.sampling.repetitionPenalty = static_cast<float>(*r);
  if (const auto s = args.number<long long>("--seed")) o.sampling.seed = static_cast<std::uint64_t>(*s);
  o.stopStrings = args.values("--stop");
  const unsigned threads = threadsFrom(args);
  const auto pos = args.positionals(1, 1);
  if (!prompt) throw UsageError("missing --prompt TEXT");
  if (o.maxTokens < 1) throw UsageError("--max-tokens must be at least 1");
  installCancelHandlers();
  ThreadPool pool(threads);
  Loaded m = load(pos[0], pool, 4096);
  o.eosIds = loadEosIds(pos[0]);
  o.keepGoing = keepGoing;
  if (!json) o.onText = [](const std::string& delta) {
    fmt::print("{}", delta);
    std::fflush(stdout);
  };
  const auto ids = m.tok.encode(*prompt, true);
  const GenerateResult r = generate(*m.lm, m.tok, ids, o);
  const double promptTps = r.promptSeconds > 0 ? static_cast<double>(r.promptTokens) / r.promptSeconds : 0;
  const double genTps = r.generationSeconds > 0 ? static_cast<double>(r.ids.size()) / r.generationSeconds : 0;
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"text", r.text}, {"ids", r.ids}, {"prompt_tokens", r.promptTokens},
                                              {"prompt_tokens_per_second", promptTps},
                                              {"generation_tokens_per_second", genTps},
                                              {"stop_reason", r.stopReason}}.dump(1, ' ', false,
                                                                                   nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print(stderr, "\n[{} prompt tokens at {:.1f} tok/s, {} generated at {:.1f} tok/s, stopped: {}]\n",
               r.promptTokens, promptTps, r.ids.size(), genTps, r.stopReason);
  }
  return kExitOk;
}

}  // namespace eq::cli
