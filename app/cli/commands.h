// The entquant subcommands. Each returns the process exit code: 0 ok, 1 failure, 2 usage, 130 cancelled.
#pragma once

#include "cli/arg_list.h"
#include "common/error.h"

namespace eq::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitCancelled = 130;

// What the CLI puts before a core error that concerns one of its settings: the flag that set it
// ("--calibration self: "), so that core messages need not name flags.
std::string settingFlag(Setting setting);

struct Command {
  const char* name;
  const char* usage;    // after "entquant "
  const char* summary;  // one line
  int (*run)(ArgList& args);
};

int runInspect(ArgList& args);
int runAnalyze(ArgList& args);
int runPlan(ArgList& args);
int runCompress(ArgList& args);
int runVerify(ArgList& args);
int runDecompress(ArgList& args);
int runLogits(ArgList& args);
int runTokenize(ArgList& args);
int runPpl(ArgList& args);
int runGenerate(ArgList& args);
int runCompare(ArgList& args);
int runChat(ArgList& args);

}  // namespace eq::cli
