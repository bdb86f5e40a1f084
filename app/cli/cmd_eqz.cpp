// entquant verify FILE.eqz [--json] and entquant decompress FILE.eqz -o DIR
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "pipeline/eqz_tools.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace eq::cli {

int runVerify(ArgList& args) {
  const bool json = args.flag("--json");
  const auto threads = args.number<int>("--threads");
  const auto pos = args.positionals(1, 1);
  installCancelHandlers();
  const EqzFile file = EqzFile::open(pos[0]);
  ThreadPool pool(threads ? static_cast<unsigned>(std::max(1, *threads)) : 0);
  ProgressLine line(!json || ::isatty(2));
  const VerifyReport r = verifyEqz(file, pool, keepGoing, progressPrinter(line));
  line.finish();
  if (json) {
    fmt::print("{}\n", nlohmann::ordered_json{{"file", pos[0]}, {"ok", true}, {"sections", r.sections},
                                              {"bytes_checked", r.bytesChecked}, {"tensors_decoded", r.tensorsDecoded},
                                              {"seconds", r.seconds}}.dump(1));
  } else {
    fmt::print("{}: OK ({} sections, {} checked, {} tensors decoded in {})\n", pos[0], r.sections,
               formatBytes(r.bytesChecked), r.tensorsDecoded, formatDuration(r.seconds));
  }
  return kExitOk;
}

int runDecompress(ArgList& args) {
  const auto out = args.value("-o");
  const auto threads = args.number<int>("--threads");
  const auto pos = args.positionals(1, 1);
  if (!out) throw UsageError("missing -o DIR");
  installCancelHandlers();
  const EqzFile file = EqzFile::open(pos[0]);
  ThreadPool pool(threads ? static_cast<unsigned>(std::max(1, *threads)) : 0);
  ProgressLine line(true);
  const DecompressReport r = decompressEqz(file, *out, pool, keepGoing, progressPrinter(line));
  line.finish();
  fmt::print("Decompressed {} -> {}/model.safetensors ({} tensors, {}) and {} model files in {}\n", pos[0], *out,
             r.tensors, formatBytes(r.bytes), r.files, formatDuration(r.seconds));
  return kExitOk;
}

}  // namespace eq::cli
