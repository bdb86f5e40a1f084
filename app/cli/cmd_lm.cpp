// entquant ppl MODEL|FILE.eqz --text FILE [--ctx 512] [--max-windows N] [--threads N] [--json]
// entquant generate MODEL|FILE.eqz --prompt TEXT [--max-tokens N] [--temperature T] [--top-k K] [--top-p P]
//                   [--min-p M] [--repetition-penalty R] [--seed S] [--stop TEXT]... [--threads N] [--json]
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "pipeline/demo_model.h"
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

std::string readTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(Errc::NotFound, "{}: cannot be read", path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// --text FILE, or the demo model's held-out text when the model is the bundled demo model.
std::string textFileFor(const std::optional<std::string>& textArg, const std::string& modelPath) {
  if (textArg) return *textArg;
  std::error_code ec;
  const auto demo = demoModelPath();
  if (std::filesystem::equivalent(modelPath, demo, ec)) return demoTextPath().string();
  throw UsageError("missing --text FILE");
}

PerplexityOptions windowOptions(ArgList& args) {
  PerplexityOptions o;
  if (const auto c = args.number<long long>("--ctx")) o.ctx = *c;
  if (const auto w = args.number<long long>("--max-windows")) o.maxWindows = *w;
  if (o.ctx < 2) throw UsageError("--ctx must be at least 2");
  if (o.maxWindows < 0) throw UsageError("--max-windows must be at least 0");
  return o;
}

unsigned threadsFrom(ArgList& args) {
  const auto t = args.number<int>("--threads");
  if (t && *t < 1) throw UsageError("--threads must be at least 1");
  return t ? static_cast<unsigned>(*t) : 0;
}

}  // namespace

int runPpl(ArgList& args) {
  const bool json = args.flag("--json");
  const auto textArg = args.value("--text");
  PerplexityOptions o = windowOptions(args);
  const unsigned threads = threadsFrom(args);
  const std::string modelPath = args.modelOrDemo();
  const std::string text = readTextFile(textFileFor(textArg, modelPath));
  installCancelHandlers();
  ThreadPool pool(threads);
  Loaded m = load(modelPath, pool, o.ctx);
  ProgressLine line(!json || ::isatty(2));
  o.keepGoing = keepGoing;
  o.progress = [&](std::int64_t done, std::int64_t total) {
    line.update(static_cast<std::size_t>(done - 1), static_cast<std::size_t>(total), "windows", 0, 0, done == total);
  };
  const PerplexityResult r = perplexity(*m.lm, m.tok, text, o);
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
  const std::string modelPath = args.modelOrDemo();
  if (!prompt) throw UsageError("missing --prompt TEXT");
  if (o.maxTokens < 1) throw UsageError("--max-tokens must be at least 1");
  installCancelHandlers();
  ThreadPool pool(threads);
  Loaded m = load(modelPath, pool, 4096);
  o.eosIds = loadEosIds(modelPath);
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

int runCompare(ArgList& args) {
  const bool json = args.flag("--json");
  const auto textArg = args.value("--text");
  PerplexityOptions o = windowOptions(args);
  const unsigned threads = threadsFrom(args);
  const auto pos = args.positionals(2, 2);
  const std::string text = readTextFile(textFileFor(textArg, pos[0]));
  installCancelHandlers();
  ThreadPool pool(threads);
  Loaded a = load(pos[0], pool, o.ctx);
  Loaded b = load(pos[1], pool, o.ctx);
  ProgressLine line(!json || ::isatty(2));
  o.keepGoing = keepGoing;
  o.progress = [&](std::int64_t done, std::int64_t total) {
    line.update(static_cast<std::size_t>(done - 1), static_cast<std::size_t>(total), "windows", 0, 0, done == total);
  };
  const CompareResult r = compareModels(*a.lm, *b.lm, a.tok, text, o);
  line.finish();
  const double change = 100.0 * (r.compressed.ppl / r.original.ppl - 1.0);
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"ppl_original", r.original.ppl}, {"ppl_compressed", r.compressed.ppl},
                                              {"ppl_change_percent", change}, {"mean_kl", r.meanKl},
                                              {"top1_agreement", r.top1Agreement}, {"tokens", r.original.tokens},
                                              {"windows", r.original.windows}, {"scored", r.original.scored},
                                              {"ctx", o.ctx}, {"seconds", r.seconds}}.dump(1));
  } else {
    fmt::print("{:<28} {}\n{:<28} {}\n", "original", pos[0], "compressed", pos[1]);
    fmt::print("{:<28} {:.4f} -> {:.4f} ({:+.2f} %)\n", "perplexity", r.original.ppl, r.compressed.ppl, change);
    fmt::print("{:<28} {:.5f} nats\n", "mean KL(original||compr.)", r.meanKl);
    fmt::print("{:<28} {:.2f} %\n", "top-1 agreement", 100.0 * r.top1Agreement);
    fmt::print("{:<28} {} windows of {} tokens ({} positions) in {}\n", "measured on", r.original.windows, o.ctx,
               r.original.scored, formatDuration(r.seconds));
  }
  return kExitOk;
}

}  // namespace eq::cli
