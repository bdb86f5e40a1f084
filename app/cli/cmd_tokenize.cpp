// entquant tokenize MODEL|FILE.eqz|tokenizer.json --text TEXT [--no-special] [--json]
#include "cli/commands.h"
#include "pipeline/lm.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace eq::cli {

int runTokenize(ArgList& args) {
  const bool json = args.flag("--json"), noSpecial = args.flag("--no-special");
  const auto textArg = args.value("--text");
  const std::string modelPath = args.modelOrDemo();
  if (!textArg) throw UsageError("missing --text");
  const auto tok = loadTokenizer(modelPath);  // a model (any kind ModelSession opens) or a tokenizer.json
  const auto ids = tok.encode(*textArg, !noSpecial);
  if (json) {
    std::vector<std::string> tokens;
    for (auto id : ids) tokens.push_back(tok.token(id));
    fmt::print("{}\n", nlohmann::ordered_json{{"ids", ids}, {"tokens", tokens}, {"count", ids.size()}}.dump());
  } else {
    fmt::print("{} tokens: {}\n", ids.size(), fmt::join(ids, " "));
  }
  return kExitOk;
}

}  // namespace eq::cli
