// entquant logits MODEL|FILE.eqz --ids 1,2,3 [--threads N] [--json]
#include "cli/commands.h"
#include "pipeline/model_session.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>

namespace eq::cli {
namespace {

std::vector<std::int32_t> parseIds(const std::string& text) {
  std::vector<std::int32_t> ids;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    std::int32_t v = 0;
    const auto [end, ec] = std::from_chars(text.data() + start, text.data() + comma, v);
    if (ec != std::errc() || end != text.data() + comma || comma == start)
      throw UsageError(fmt::format("--ids expects comma-separated token ids, got \"{}\"", text));
    ids.push_back(v);
    start = comma + 1;
  }
  return ids;
}

}  // namespace

int runLogits(ArgList& args) {
  const bool json = args.flag("--json");
  const auto idsText = args.value("--ids");
  const auto threads = args.number<int>("--threads");
  const std::string modelPath = args.modelOrDemo();
  if (!idsText) throw UsageError("missing --ids");
  const auto ids = parseIds(*idsText);
  const auto t0 = std::chrono::steady_clock::now();
  SessionOptions so;
  so.contextLength = static_cast<std::int64_t>(ids.size());
  so.threads = threads ? static_cast<unsigned>(std::max(1, *threads)) : 0;
  const auto session = ModelSession::open(modelPath, so);
  model::CausalLM* lm = &session->engine();
  const auto logits = lm->forward(ids);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::int64_t v = lm->vocabSize();
  std::vector<std::int64_t> argmax;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    const float* row = logits.data() + i * v;
    argmax.push_back(std::max_element(row, row + v) - row);
  }
  const std::vector<float> last(logits.end() - v, logits.end());
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"ids", ids}, {"argmax", argmax}, {"logits_last", last},
                                              {"seconds", seconds}}.dump());
  } else {
    fmt::print("argmax per position: {}\n", fmt::join(argmax, " "));
    std::vector<std::int64_t> order(static_cast<std::size_t>(v));
    for (std::int64_t i = 0; i < v; ++i) order[i] = i;
    std::partial_sort(order.begin(), order.begin() + std::min<std::int64_t>(5, v), order.end(),
                      [&](auto a, auto b) { return last[a] > last[b]; });
    fmt::print("top logits after the last id:");
    for (std::int64_t i = 0; i < std::min<std::int64_t>(5, v); ++i) fmt::print("  {}: {:.4f}", order[i], last[order[i]]);
    fmt::print("\n");
  }
  return kExitOk;
}

}  // namespace eq::cli
