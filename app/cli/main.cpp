// entquant: the command-line face of EntQuant Studio. Argument parsing and wiring only; the work is in core/.
#include "cli/commands.h"
#include "common/allocator.h"
#include "common/error.h"

#include <fmt/format.h>

#include <array>
#include <cstdio>
#include <string_view>

namespace {

using namespace eq::cli;

constexpr std::array<Command, 12> kCommands{{
    {"inspect", "inspect MODEL|FILE.eqz [--json]",
     "architecture, parameter counts, size and memory needs, and every tensor of a model (headers only)",
     runInspect},
    {"analyze",
     "analyze MODEL [--format fp8|int8] [--objective O] [-o ANALYSIS.json] [--threads N] [--json]\n"
     "       analyze MODEL --layer NAME [--bits B] [--row R] [--format fp8|int8] [--objective O] [--json]",
     "every compressible tensor's rate-distortion curve (bits against relative error) and weight statistics, or one "
     "tensor's weight, code and error histograms at a target",
     runAnalyze},
    {"plan",
     "plan MODEL [--bits B | --lambda L] [--layer-bits REGEX=B|keep]... [--format fp8|int8]\n"
     "                  [--method entquant|rtn4|rtn3|rtn2|nf4] [--objective O] [--allocation uniform|global|depth]\n"
     "                  [--allocation-error balanced|matrix] [--hold-total] [-o PLAN.json] [--threads N] [--json]",
     "each tensor's bits, bytes and error as compress would choose them, and the file's size, without compressing",
     runPlan},
    {"compress",
     "compress MODEL -o OUT.eqz [--bits B | --lambda L] [--layer-bits REGEX=B|keep]... [--hold-total]\n"
     "                  [--format fp8|int8]\n"
     "                  [--method entquant|rtn4|rtn3|rtn2|nf4]\n"
     "                  [--objective paper|paper-local|ecsq-l1|ecsq-mse|ecsq-l1-row|ecsq-mse-row|ecsq-rdo]\n"
     "                  [--allocation uniform|global|depth|measured] [--allocation-error balanced|matrix]\n"
     "                  [--calibration none|self | --calibration-text FILE]\n"
     "                  [--calibration-texts N] [--calibration-length N] [--calibration-seed S]\n"
     "                  [--calibration-inputs auto|shift|original|compressed]\n"
     "                  [--scales FILE.safetensors] [--plan PLAN.json] [--threads N]\n"
     "                  [--json] [--verbose] [--quiet]",
     "compress a model into one .eqz file (default: 3.0 effective bits per weight, FP8 codes, ecsq-mse, depth)",
     runCompress},
    {"verify", "verify FILE.eqz [--threads N] [--json]",
     "check every checksum of an .eqz file and decode every tensor", runVerify},
    {"decompress", "decompress FILE.eqz -o DIR [--threads N]",
     "write a HuggingFace folder (bf16 safetensors, config, tokenizer files) from an .eqz file", runDecompress},
    {"logits", "logits MODEL|FILE.eqz --ids 1,2,3 [--threads N] [--json]",
     "run the model on token ids: argmax of every position and all logits of the last (Llama, Mistral, Qwen2/3, Phi-3, Mixtral, Gemma 1/2)",
     runLogits},
    {"tokenize", "tokenize MODEL|FILE.eqz|tokenizer.json --text TEXT [--no-special] [--json]",
     "token ids of a text with the model's own tokenizer (BPE tokenizer.json)", runTokenize},
    {"ppl", "ppl MODEL|FILE.eqz --text FILE [--ctx 512] [--max-windows N] [--threads N] [--json]",
     "perplexity of a text file (non-overlapping windows of --ctx tokens)", runPpl},
    {"generate",
     "generate MODEL|FILE.eqz --prompt TEXT [--chat [--system TEXT]] [--max-tokens N] [--temperature T] [--top-k K]\n"
     "                  [--top-p P] [--min-p M] [--repetition-penalty R] [--seed S] [--stop TEXT]... [--threads N]\n"
     "                  [--json]",
     "continue a prompt, or answer it as a chat message with --chat (greedy unless --temperature > 0), streaming",
     runGenerate},
    {"chat",
     "chat MODEL|FILE.eqz [--system TEXT] [--max-tokens N] [--ctx N] [--temperature T] [--top-k K] [--top-p P]\n"
     "                  [--min-p M] [--repetition-penalty R] [--seed S] [--threads N]",
     "talk with a model in the terminal (its chat template and sampling settings; keeps the history, shows tok/s)",
     runChat},
    {"compare", "compare ORIGINAL FILE.eqz --text FILE [--ctx 512] [--max-windows N] [--threads N] [--json]",
     "quality after compression: perplexity of both, mean KL divergence and top-1 agreement of their predictions",
     runCompare},
}};

void printHelp(std::FILE* out) {
  fmt::print(out,
             "entquant {} - entropy-coded Float8 compression of language models\n\n"
             "usage: entquant COMMAND [ARGS]\n\ncommands:\n",
             ENTQUANT_VERSION);
  for (const auto& c : kCommands) fmt::print(out, "  {:<10} {}\n", c.name, c.summary);
  fmt::print(out,
             "\nMODEL is a HuggingFace folder, a .safetensors file or an archive of a model folder\n"
             "(.zip, .tar, .tar.gz, .tar.xz, .tar.zst). Left out, it is the bundled demo model (resources/demo-model),\n"
             "and --text defaults to the demo model's held-out text.\n"
             "Exit codes: 0 success, 1 failure (one sentence on stderr), 2 usage error, 130 cancelled.\n"
             "Run 'entquant COMMAND --help' for a command's options.\n");
}

}  // namespace

namespace eq::cli {

std::string settingFlag(Setting setting) {
  switch (setting) {
    case Setting::LayerRule: return "--layer-bits ";  // the message starts with the rule in quotes
    case Setting::SelfCalibration: return "--calibration self: ";
    case Setting::TextCalibration: return "--calibration-text: ";
    case Setting::CalibrationInputs: return "--calibration-inputs: ";
    case Setting::MeasuredAllocation: return "--allocation measured: ";
    case Setting::GivenScales:  // the messages name the scales file
    case Setting::Plan:         // and the plan file
    case Setting::None: break;
  }
  return "";
}

}  // namespace eq::cli

int main(int argc, char** argv) {
  eq::keepFreedBuffers();
  if (argc < 2) {
    printHelp(stderr);
    return kExitUsage;
  }
  const std::string_view name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    printHelp(stdout);
    return kExitOk;
  }
  if (name == "--version") {
    fmt::print("entquant {}\n", ENTQUANT_VERSION);
    return kExitOk;
  }
  const Command* command = nullptr;
  for (const auto& c : kCommands)
    if (name == c.name) command = &c;
  if (!command) {
    fmt::print(stderr, "entquant: unknown command \"{}\"; run 'entquant --help' for the list\n", name);
    return kExitUsage;
  }
  ArgList args(std::vector<std::string>(argv + 2, argv + argc));
  try {
    if (args.flag("--help") || args.flag("-h")) {
      fmt::print("usage: entquant {}\n{}\n", command->usage, command->summary);
      return kExitOk;
    }
    return command->run(args);
  } catch (const UsageError& e) {
    fmt::print(stderr, "entquant {}: {}\nusage: entquant {}\n", command->name, e.what(), command->usage);
    return kExitUsage;
  } catch (const eq::Error& e) {
    fmt::print(stderr, "entquant {}: {}{}\n", command->name, settingFlag(e.setting()), e.what());
    return e.code() == eq::Errc::Cancelled ? kExitCancelled : kExitFailure;
  } catch (const std::bad_alloc&) {
    fmt::print(stderr, "entquant {}: out of memory\n", command->name);
    return kExitFailure;
  } catch (const std::exception& e) {
    fmt::print(stderr, "entquant {}: internal error: {}\n", command->name, e.what());
    return kExitFailure;
  }
}
