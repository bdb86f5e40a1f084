// entquant tokenize MODEL|FILE.eqz|tokenizer.json --text TEXT [--no-special] [--json]
#include "cli/commands.h"
#include "common/error.h"
#include "format/eqz.h"
#include "format/model_config.h"
#include "text/tokenizer.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace eq::cli {
namespace {

// The model's tokenizer: tokenizer.json in a folder, embedded in an .eqz file, or the file itself.
text::Tokenizer loadTokenizer(const std::filesystem::path& path) {
  if (isEqzPath(path)) {
    const EqzFile f = EqzFile::open(path);
    const EqzSection* s = f.file("tokenizer.json");
    if (!s) fail(Errc::NotFound, "{}: holds no tokenizer.json", path.string());
    const auto b = f.bytes(*s);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(reinterpret_cast<const char*>(b.data()), reinterpret_cast<const char*>(b.data()) + b.size());
    } catch (const nlohmann::json::parse_error& e) {
      fail(Errc::InvalidJson, "{} (embedded tokenizer.json): not valid JSON (error at byte {})", path.string(), e.byte);
    }
    return text::Tokenizer::fromJson(j, path.string() + " (embedded tokenizer.json)");
  }
  if (std::filesystem::is_directory(path)) {
    if (!std::filesystem::exists(path / "tokenizer.json"))
      fail(Errc::NotFound, "{}: no tokenizer.json in the model folder", path.string());
    return text::Tokenizer::fromFile(path / "tokenizer.json");
  }
  return text::Tokenizer::fromFile(path);
}

}  // namespace

int runTokenize(ArgList& args) {
  const bool json = args.flag("--json"), noSpecial = args.flag("--no-special");
  const auto textArg = args.value("--text");
  const auto pos = args.positionals(1, 1);
  if (!textArg) throw UsageError("missing --text");
  const auto tok = loadTokenizer(pos[0]);
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
