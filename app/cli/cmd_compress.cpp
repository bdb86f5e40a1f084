// entquant compress MODEL -o OUT.eqz [--bits B | --lambda L] [--layer-bits REGEX=B]... [--format fp8|int8]
//                   [--method entquant|rtn4|rtn3|rtn2|nf4]
//                   [--objective paper|paper-local|ecsq-l1|ecsq-mse|ecsq-l1-row|ecsq-mse-row|ecsq-rdo]
//                   [--allocation uniform|global|depth|measured] [--allocation-error balanced|matrix]
//                   [--calibration none|self | --calibration-text FILE]
//                   [--calibration-texts N] [--calibration-length N] [--calibration-seed S]
//                   [--calibration-inputs auto|shift|original|compressed]
//                   [--scales FILE.safetensors] [--threads N] [--json]
//                   [--verbose] [--quiet]
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/units.h"
#include "pipeline/compress.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace eq::cli {
namespace {

void printSummary(const CompressSummary& s, bool verbose) {
  if (verbose) {
    std::size_t width = 6;
    for (const auto& t : s.tensors) width = std::max(width, t.name.size());
    fmt::print("{:<{}}  {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>9}\n", "Tensor", width, "encoding", "eff.bpw",
               "entropy", "lambda", "rel.l1", "rel.l2", "sensitiv.");
    for (const auto& t : s.tensors) {
      if (t.encoding == "raw") continue;
      fmt::print("{:<{}}  {:>8} {:>8.3f} {:>8.3f} {:>9.3g} {:>7.4f} {:>7.4f} {:>9}{}\n", t.name, width, t.encoding,
                 t.effectiveBits, t.entropyBits, t.lambda, t.relL1, t.relL2,
                 t.sensitivity > 0 ? fmt::format("{:.3g}", t.sensitivity) : "-",
                 t.targetClamped ? "  (target unreachable)" : "");
    }
    fmt::print("\n");
  }
  std::size_t compressed = 0, clamped = 0;
  for (const auto& t : s.tensors) {
    compressed += t.encoding != "raw";
    clamped += t.targetClamped;
  }
  fmt::print("Compressed    {} -> {}\n", s.input, s.output);
  fmt::print("Method        {}{}\n", s.method,
             s.method == "entquant"
                 ? fmt::format(" ({} codes, {} objective, {} bit allocation{}{})", s.format, s.objective, s.allocation,
                               s.allocation == "measured"
                                   ? fmt::format(" (sensitivities measured on {} tokens in {})", s.sensitivityTokens,
                                                 formatDuration(s.sensitivitySeconds))
                                   : "",
                               s.calibration != "none"
                                   ? fmt::format(", error feedback calibrated on {} {} tokens ({} inputs) in {}",
                                                 s.calibrationTokens, s.calibration == "self" ? "self-written" : "text",
                                                 s.calibrationInputs, formatDuration(s.calibrationSeconds))
                                   : "")
                 : "");
  fmt::print("Tensors       {} compressed, {} kept as they are\n", compressed, s.tensors.size() - compressed);
  fmt::print("Size          {} -> {} ({:.2f}x smaller)\n", formatBytes(s.inputBytes), formatBytes(s.outputBytes),
             s.outputBytes ? static_cast<double>(s.inputBytes) / static_cast<double>(s.outputBytes) : 0.0);
  const std::string entropy = s.method == "entquant" ? fmt::format(", {:.3f} entropy", s.entropyBpw) : "";
  fmt::print("Bits/weight   {:.3f} effective (everything stored for the compressed tensors){}; {:.3f} for the whole "
             "file\n", s.effectiveBpw, entropy, s.modelBpw);
  fmt::print("Time          {}\n", formatDuration(s.seconds));
  if (clamped) fmt::print("warning: {} tensors could not reach their bits target (see --verbose)\n", clamped);
}

}  // namespace

int runCompress(ArgList& args) {
  const bool json = args.flag("--json"), verbose = args.flag("--verbose"), quiet = args.flag("--quiet");
  CompressOptions o;
  const auto out = args.value("-o");
  const auto bits = args.number<double>("--bits");
  const auto lambda = args.number<double>("--lambda");
  if (bits && lambda) throw UsageError("--bits and --lambda exclude each other");
  if (bits) o.target = {quant::RateTarget::Mode::Bits, *bits};
  if (lambda) o.target = {quant::RateTarget::Mode::Lambda, *lambda};
  if (o.target.value <= 0 || (bits && *bits > 8)) throw UsageError("the target must be positive (bits at most 8)");
  for (const auto& rule : args.values("--layer-bits")) o.layerRules.push_back(LayerRule::parse(rule));
  if (const auto f = args.value("--format")) {
    const auto parsed = quant::parseCodeFormat(*f);
    if (!parsed) throw UsageError(fmt::format("--format must be fp8 or int8, not \"{}\"", *f));
    o.format = *parsed;
  }
  if (const auto m = args.value("--method")) o.method = *m;
  const auto objective = args.value("--objective");
  if (objective) {
    const auto parsed = quant::parseObjective(*objective);
    if (!parsed) {
      const auto names = quant::objectiveNames();
      throw UsageError(fmt::format("--objective must be {} or {}, not \"{}\"",
                                   fmt::join(names.first(names.size() - 1), ", "), names.back(), *objective));
    }
    o.objective = *parsed;
  } else if (lambda) {
    o.objective = quant::Objective::Paper;  // --lambda is the paper's mode: its lambda means the paper's trade-off
  }
  const auto allocation = args.value("--allocation");
  if (allocation) {
    if (*allocation == "uniform") o.allocation = CompressOptions::Allocation::Uniform;
    else if (*allocation == "global") o.allocation = CompressOptions::Allocation::Global;
    else if (*allocation == "depth") o.allocation = CompressOptions::Allocation::Depth;
    else if (*allocation == "measured") o.allocation = CompressOptions::Allocation::Measured;
    else
      throw UsageError(
          fmt::format("--allocation must be uniform, global, depth or measured, not \"{}\"", *allocation));
    if (lambda && o.allocation != CompressOptions::Allocation::Uniform)
      throw UsageError(fmt::format("--allocation {} needs a bits target, not --lambda", *allocation));
  }
  const auto allocationError = args.value("--allocation-error");
  if (allocationError) {
    if (*allocationError != "balanced" && *allocationError != "matrix")
      throw UsageError(fmt::format("--allocation-error must be balanced or matrix, not \"{}\"", *allocationError));
    if (lambda ||
        (o.allocation != CompressOptions::Allocation::Global && o.allocation != CompressOptions::Allocation::Depth))
      throw UsageError("--allocation-error applies to a bits target with --allocation global or depth");
    o.balancedAllocation = *allocationError == "balanced";
  }
  const auto calibration = args.value("--calibration");
  if (calibration) {
    if (*calibration == "self") o.calibration = CompressOptions::Calibration::Self;
    else if (*calibration != "none")
      throw UsageError(fmt::format("--calibration must be none or self, not \"{}\"", *calibration));
  }
  if (const auto file = args.value("--calibration-text")) {
    if (calibration)
      throw UsageError("--calibration-text calibrates on that text; it excludes --calibration none|self");
    o.calibration = CompressOptions::Calibration::Text;
    o.calibrationFile = *file;
  }
  const auto texts = args.number<int>("--calibration-texts");
  const auto length = args.number<int>("--calibration-length");
  const auto inputs = args.value("--calibration-inputs");
  if ((texts || length || inputs) && o.calibration == CompressOptions::Calibration::None)
    throw UsageError(
        "--calibration-texts, --calibration-length and --calibration-inputs need --calibration self or "
        "--calibration-text");
  if (inputs) {
    const auto parsed = parseCalibrationInputs(*inputs);
    if (!parsed)
      throw UsageError(
          fmt::format("--calibration-inputs must be auto, shift, original or compressed, not \"{}\"", *inputs));
    o.calibrationOptions.inputs = *parsed;
  }
  if (texts) {
    if (*texts < 1) throw UsageError("--calibration-texts must be at least 1");
    o.calibrationOptions.sequences = *texts;
  }
  if (length) {
    if (*length < 2) throw UsageError("--calibration-length must be at least 2");
    o.calibrationOptions.length = *length;
  }
  if (const auto seed = args.number<long long>("--calibration-seed")) {
    if (o.calibration != CompressOptions::Calibration::Self)
      throw UsageError("--calibration-seed chooses the texts the model writes; it needs --calibration self");
    if (*seed < 0) throw UsageError("--calibration-seed must be 0 or more");
    o.calibrationOptions.seed = static_cast<std::uint64_t>(*seed);
  }
  if (const auto sc = args.value("--scales")) {
    if (bits || lambda || objective || allocation || allocationError || o.calibration != CompressOptions::Calibration::None)
      throw UsageError("--scales excludes --bits, --lambda, --objective, --allocation and --calibration");
    o.scalesFile = *sc;
  }
  if (o.method != "entquant" && o.method != "rtn4" && o.method != "rtn3" && o.method != "rtn2" && o.method != "nf4")
    throw UsageError(fmt::format("--method must be entquant, rtn4, rtn3, rtn2 or nf4, not \"{}\"", o.method));
  if (o.method != "entquant" &&
      (objective || o.calibration != CompressOptions::Calibration::None || !o.scalesFile.empty()))
    throw UsageError(
        fmt::format("--objective, --calibration and --scales apply to --method entquant, not {}", o.method));
  if (const auto t = args.number<int>("--threads")) {
    if (*t < 1) throw UsageError("--threads must be at least 1");
    o.threads = static_cast<unsigned>(*t);
  }
  const std::string modelPath = args.modelOrDemo();
  if (!out) throw UsageError("missing -o OUT.eqz");

  const auto source = ModelSource::open(modelPath, OpenOptions{keepGoing});
  installCancelHandlers();
  ProgressLine line(!quiet && (!json || ::isatty(2)));
  o.keepGoing = keepGoing;
  o.progress = [&](const CompressProgress& p) {
    const std::string phase = p.phase;
    if (phase == "calibrate") {  // tokens, not tensors
      const std::string eta = p.etaSeconds > 0 ? "  ETA " + formatDuration(p.etaSeconds) : "";
      // index counts the tokens written; the line shows the item being worked on, one past the last done
      line.update(p.index > 0 ? p.index - 1 : 0, p.count, "tokens: the model writes its own calibration text" + eta, 0,
                  0, p.done);
      return;
    }
    const std::string what = phase == "analyze" ? "analyzing " + p.tensor : p.tensor;
    line.update(p.index, p.count, what, p.bytesPerSecond, p.etaSeconds, p.done && p.index + 1 == p.count, p.detail);
  };
  const CompressSummary s = compressModel(*source, *out, o);
  line.finish();
  if (json) fmt::print("{}\n", toJson(s).dump(1));
  else printSummary(s, verbose);
  return kExitOk;
}

}  // namespace eq::cli
