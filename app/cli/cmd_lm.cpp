// entquant ppl MODEL|FILE.eqz --text FILE [--ctx 512] [--max-windows N] [--threads N] [--json]
// entquant generate MODEL|FILE.eqz --prompt TEXT [--chat [--system TEXT]] [--max-tokens N] [--temperature T]
//                   [--top-k K] [--top-p P] [--min-p M] [--repetition-penalty R] [--seed S] [--stop TEXT]...
//                   [--threads N] [--json]
// entquant chat MODEL|FILE.eqz [--system TEXT] [--max-tokens N] [--ctx N] [sampling options] [--threads N]
// entquant compare ORIGINAL FILE.eqz --text FILE [--ctx 512] [--max-windows N] [--threads N] [--json]
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "pipeline/chat_session.h"
#include "pipeline/demo_model.h"
#include "pipeline/lm.h"
#include "pipeline/model_session.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

namespace eq::cli {
namespace {

// The model with its engine for `context` positions, loading with progress on the line (cleared when done).
std::unique_ptr<ModelSession> load(const std::string& path, unsigned threads, std::int64_t context,
                                   ProgressLine& line) {
  SessionOptions so;
  so.contextLength = context;
  so.threads = threads;
  so.keepGoing = keepGoing;
  so.progress = progressPrinter(line);
  auto s = ModelSession::open(path, so);
  line.finish();
  return s;
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
  try {
    std::error_code ec;
    if (std::filesystem::equivalent(modelPath, demoModelPath(), ec)) return demoTextPath().string();
  } catch (const Error&) {
    // No bundled demo model here (an install without it): the text must be given.
  }
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
  ProgressLine line(!json || ::isatty(2));
  const auto m = load(modelPath, threads, o.ctx, line);
  o.keepGoing = keepGoing;
  o.progress = progressPrinter(line);
  const PerplexityResult r = perplexity(m->engine(), m->tokenizer(), text, o);
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

namespace {

// Sampling options given on the command line, over `base` (greedy for generate, the model's own for chat).
struct SamplingArgs {
  std::optional<double> temperature, topP, minP, repetitionPenalty;
  std::optional<int> topK;
  std::optional<long long> seed;
  void read(ArgList& args) {
    temperature = args.number<double>("--temperature");
    topK = args.number<int>("--top-k");
    topP = args.number<double>("--top-p");
    minP = args.number<double>("--min-p");
    repetitionPenalty = args.number<double>("--repetition-penalty");
    seed = args.number<long long>("--seed");
    if (temperature && *temperature < 0) throw UsageError("--temperature must be at least 0");
    if (topK && *topK < 0) throw UsageError("--top-k must be at least 0");
    if (topP && (*topP <= 0 || *topP > 1)) throw UsageError("--top-p must be in (0, 1]");
  }
  text::SamplingParams over(text::SamplingParams p) const {
    if (temperature) p.temperature = static_cast<float>(*temperature);
    if (topK) p.topK = *topK;
    if (topP) p.topP = static_cast<float>(*topP);
    if (minP) p.minP = static_cast<float>(*minP);
    if (repetitionPenalty) p.repetitionPenalty = static_cast<float>(*repetitionPenalty);
    if (seed) p.seed = static_cast<std::uint64_t>(*seed);
    return p;
  }
};

// The model's chat template; the CLI says what to do without one.
const text::ChatTemplate& chatTemplateFor(ModelSession& m) {
  if (!m.chatTemplate())
    fail(Errc::Unsupported, "{}: the model has no chat template (chat_template.jinja or tokenizer_config.json); "
         "use entquant generate without --chat for plain text", m.path().string());
  return *m.chatTemplate();
}

double perSecond(std::int64_t n, double seconds) { return seconds > 0 ? static_cast<double>(n) / seconds : 0; }

}  // namespace

int runGenerate(ArgList& args) {
  const bool json = args.flag("--json"), chat = args.flag("--chat");
  const auto prompt = args.value("--prompt");
  const auto system = args.value("--system");
  GenerateOptions o;
  if (const auto n = args.number<long long>("--max-tokens")) o.maxTokens = *n;
  SamplingArgs sampling;
  sampling.read(args);
  o.stopStrings = args.values("--stop");
  const unsigned threads = threadsFrom(args);
  const std::string modelPath = args.modelOrDemo();
  if (!prompt) throw UsageError("missing --prompt TEXT");
  if (system && !chat) throw UsageError("--system needs --chat");
  if (o.maxTokens < 1) throw UsageError("--max-tokens must be at least 1");
  o.sampling = sampling.over(text::SamplingParams{0.0f});  // greedy unless asked: reproducible by default
  installCancelHandlers();
  ProgressLine line(!json || ::isatty(2));
  const auto m = load(modelPath, threads, 4096, line);
  o.eosIds = m->eosIds();
  o.keepGoing = keepGoing;
  if (!json) o.onText = [](const std::string& delta) {
    fmt::print("{}", delta);
    std::fflush(stdout);
  };
  GenerateResult r;
  if (chat) {
    ChatSession session(m->engine(), m->tokenizer(), chatTemplateFor(*m));
    if (system) session.setSystem(*system);
    r = session.send(*prompt, o).result;
  } else {
    r = generate(m->engine(), m->tokenizer(), m->tokenizer().encode(*prompt, true), o);
  }
  const double promptTps = perSecond(r.promptTokens, r.promptSeconds);
  const double genTps = perSecond(static_cast<std::int64_t>(r.ids.size()), r.generationSeconds);
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"text", r.text}, {"ids", r.ids}, {"prompt_tokens", r.promptTokens},
                                              {"prompt_tokens_per_second", promptTps},
                                              {"generation_tokens_per_second", genTps},
                                              {"stop_reason", stopReasonName(r.stopReason)}}.dump(1, ' ', false,
                                                                                   nlohmann::json::error_handler_t::replace));
  } else {
    fmt::print(stderr, "\n[{} prompt tokens at {:.1f} tok/s, {} generated at {:.1f} tok/s, stopped: {}]\n",
               r.promptTokens, promptTps, r.ids.size(), genTps, stopReasonName(r.stopReason));
  }
  return kExitOk;
}

int runChat(ArgList& args) {
  const auto system = args.value("--system");
  GenerateOptions o;
  o.maxTokens = 512;
  if (const auto n = args.number<long long>("--max-tokens")) o.maxTokens = *n;
  const auto ctx = args.number<long long>("--ctx");
  SamplingArgs sampling;
  sampling.read(args);
  const unsigned threads = threadsFrom(args);
  const std::string modelPath = args.modelOrDemo();
  if (o.maxTokens < 1) throw UsageError("--max-tokens must be at least 1");
  if (ctx && *ctx < 16) throw UsageError("--ctx must be at least 16");
  installCancelHandlers();
  ProgressLine loading(true);
  const auto m = load(modelPath, threads, ctx.value_or(4096), loading);
  ChatSession session(m->engine(), m->tokenizer(), chatTemplateFor(*m));
  if (system) session.setSystem(*system);
  o.sampling = sampling.over(m->samplingDefaults());
  o.eosIds = m->eosIds();
  o.onText = [](const std::string& delta) {
    fmt::print("{}", delta);
    std::fflush(stdout);
  };
  const bool tty = ::isatty(0) && ::isatty(1);
  fmt::print(stderr,
             "Chatting with {} ({} of weights in RAM, context {} tokens, {}).\n"
             "Type a message and press Enter. /reset forgets the conversation, /system TEXT sets the system "
             "message, /quit or Ctrl-D leaves; Ctrl-C stops an answer.\n",
             modelPath, formatBytes(m->engine().weightBytes()), m->engine().contextLength(),
             o.sampling.temperature > 0 ? fmt::format("temperature {:g}", o.sampling.temperature) : "greedy");
  std::string line;
  while (true) {
    if (tty) fmt::print("\n> ");
    std::fflush(stdout);
    if (!std::getline(std::cin, line)) break;
    if (line.empty()) continue;
    if (line == "/quit" || line == "/exit") break;
    if (line == "/reset") {
      session.clear();
      fmt::print(stderr, "[conversation cleared]\n");
      continue;
    }
    if (line.rfind("/system", 0) == 0) {
      session.setSystem(line.size() > 8 ? line.substr(8) : "");
      session.clear();
      fmt::print(stderr, "[system message set; conversation cleared]\n");
      continue;
    }
    resetCancel();
    o.keepGoing = keepGoing;
    try {
      const ChatTurn t = session.send(line, o);
      fmt::print("\n");
      fmt::print(stderr, "[{} tokens at {:.1f} tok/s; prompt {} new tokens at {:.1f} tok/s, {} reused{}]\n",
                 t.result.ids.size(), perSecond(static_cast<std::int64_t>(t.result.ids.size()), t.result.generationSeconds),
                 t.result.promptTokens, perSecond(t.result.promptTokens, t.result.promptSeconds), t.reusedTokens,
                 t.droppedMessages ? fmt::format("; {} oldest messages left out to fit the context", t.droppedMessages) : "");
    } catch (const Error& e) {
      if (e.code() != Errc::Cancelled) throw;
      fmt::print(stderr, "\n[answer stopped]\n");
    }
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
  ProgressLine line(!json || ::isatty(2));
  const auto a = load(pos[0], threads, o.ctx, line);
  const auto b = load(pos[1], threads, o.ctx, line);
  o.keepGoing = keepGoing;
  o.progress = progressPrinter(line);
  const CompareResult r = compareModels(a->engine(), b->engine(), a->tokenizer(), text, o);
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
