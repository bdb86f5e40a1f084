// entquant compress MODEL -o OUT.eqz [--bits B | --lambda L] [--layer-bits REGEX=B]... [--format fp8|int8]
//                   [--method entquant|rtn4|rtn3|rtn2|nf4]
//                   [--objective paper|paper-local|ecsq-l1|ecsq-mse|ecsq-l1-row|ecsq-mse-row|ecsq-rdo]
//                   [--allocation uniform|global|depth|measured] [--allocation-error balanced|matrix]
//                   [--calibration none|self | --calibration-text FILE]
//                   [--calibration-texts N] [--calibration-length N] [--calibration-seed S]
//                   [--calibration-inputs auto|shift|original|compressed]
//                   [--scales FILE.safetensors] [--plan PLAN.json] [--threads N] [--json] [--verbose] [--quiet]
// entquant plan MODEL [--bits B | --lambda L] [--layer-bits REGEX=B]... [--format] [--method] [--objective]
//                   [--allocation] [--allocation-error] [--hold-total] [-o PLAN.json] [--threads N] [--json]
// entquant analyze MODEL [--format fp8|int8] [--objective O] [-o ANALYSIS.json] [--threads N] [--json]
// entquant analyze MODEL --layer NAME [--bits B] [--row R] [--format] [--objective] [--json]
#include "cli/commands.h"
#include "cli/progress.h"
#include "common/atomic_file.h"
#include "common/json.h"
#include "common/units.h"
#include "pipeline/compress.h"
#include "pipeline/layer_detail.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <sstream>

namespace eq::cli {
namespace {

// "a, b or c"
std::string oneOf(std::span<const std::string_view> names) {
  return fmt::format("{} or {}", fmt::join(names.first(names.size() - 1), ", "), names.back());
}

unsigned threadsOf(ArgList& args) {
  const auto t = args.number<int>("--threads");
  if (t && *t < 1) throw UsageError("--threads must be at least 1");
  return t ? static_cast<unsigned>(*t) : 0;
}

// The options that say how many bits each tensor gets and how it is coded (compress and plan share them).
struct PlanArgs {
  bool bits = false, lambda = false, objective = false, allocation = false, allocationError = false;
};

PlanArgs readPlanOptions(ArgList& args, CompressOptions& o) {
  PlanArgs given;
  const auto bits = args.number<double>("--bits");
  const auto lambda = args.number<double>("--lambda");
  given.bits = bits.has_value();
  given.lambda = lambda.has_value();
  if (bits && lambda) throw UsageError("--bits and --lambda exclude each other");
  if (bits) o.target = {quant::RateTarget::Mode::Bits, *bits};
  if (lambda) o.target = {quant::RateTarget::Mode::Lambda, *lambda};
  if (o.target.value <= 0 || (bits && *bits > 8)) throw UsageError("the target must be positive (bits at most 8)");
  for (const auto& rule : args.values("--layer-bits")) o.layerRules.push_back(LayerRule::parse(rule));
  o.holdTotal = args.flag("--hold-total");
  if (o.holdTotal && lambda) throw UsageError("--hold-total keeps a bits target's total; it excludes --lambda");
  if (const auto f = args.value("--format")) {
    const auto parsed = quant::parseCodeFormat(*f);
    if (!parsed) throw UsageError(fmt::format("--format must be fp8 or int8, not \"{}\"", *f));
    o.format = *parsed;
  }
  if (const auto m = args.value("--method")) {
    const auto parsed = parseMethod(*m);
    if (!parsed) throw UsageError(fmt::format("--method must be {}, not \"{}\"", oneOf(methodNames()), *m));
    o.method = *parsed;
  }
  if (const auto objective = args.value("--objective")) {
    given.objective = true;
    const auto parsed = quant::parseObjective(*objective);
    if (!parsed)
      throw UsageError(fmt::format("--objective must be {}, not \"{}\"", oneOf(quant::objectiveNames()), *objective));
    o.objective = *parsed;
  } else if (lambda) {
    o.objective = quant::Objective::Paper;  // --lambda is the paper's mode: its lambda means the paper's trade-off
  }
  if (const auto allocation = args.value("--allocation")) {
    given.allocation = true;
    const auto parsed = parseAllocation(*allocation);
    if (!parsed)
      throw UsageError(
          fmt::format("--allocation must be uniform, global, depth or measured, not \"{}\"", *allocation));
    o.allocation = *parsed;
    if (lambda && o.allocation != Allocation::Uniform)
      throw UsageError(fmt::format("--allocation {} needs a bits target, not --lambda", *allocation));
  }
  if (const auto allocationError = args.value("--allocation-error")) {
    given.allocationError = true;
    if (*allocationError != "balanced" && *allocationError != "matrix")
      throw UsageError(fmt::format("--allocation-error must be balanced or matrix, not \"{}\"", *allocationError));
    if (lambda || (o.allocation != Allocation::Global && o.allocation != Allocation::Depth))
      throw UsageError("--allocation-error applies to a bits target with --allocation global or depth");
    o.balancedAllocation = *allocationError == "balanced";
  }
  return given;
}

void readCalibrationOptions(ArgList& args, CompressOptions& o) {
  const auto calibration = args.value("--calibration");
  if (calibration) {
    if (*calibration == "self") o.calibration = CalibrationSource::Self;
    else if (*calibration != "none")
      throw UsageError(fmt::format("--calibration must be none or self, not \"{}\"", *calibration));
  }
  if (const auto file = args.value("--calibration-text")) {
    if (calibration)
      throw UsageError("--calibration-text calibrates on that text; it excludes --calibration none|self");
    o.calibration = CalibrationSource::Text;
    o.calibrationFile = *file;
  }
  const auto texts = args.number<int>("--calibration-texts");
  const auto length = args.number<int>("--calibration-length");
  const auto inputs = args.value("--calibration-inputs");
  if ((texts || length || inputs) && o.calibration == CalibrationSource::None)
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
    if (o.calibration != CalibrationSource::Self)
      throw UsageError("--calibration-seed chooses the texts the model writes; it needs --calibration self");
    if (*seed < 0) throw UsageError("--calibration-seed must be 0 or more");
    o.calibrationOptions.seed = static_cast<std::uint64_t>(*seed);
  }
}

std::string methodLine(const CompressSummary& s) {
  if (s.method != Method::EntQuant) return std::string(methodName(s.method));
  const std::string objective = s.givenScales ? "given-scales" : std::string(quant::objectiveName(*s.objective));
  const std::string allocation = s.allocation ? std::string(allocationName(*s.allocation)) : "none";
  std::string extra;
  if (s.allocation == Allocation::Measured)
    extra += fmt::format(" (sensitivities measured on {} tokens in {})", s.sensitivityTokens,
                         formatDuration(s.sensitivitySeconds));
  if (s.calibration != CalibrationSource::None)
    extra += fmt::format(", error feedback calibrated on {} {} tokens ({} inputs) in {}", s.calibrationTokens,
                         s.calibration == CalibrationSource::Self ? "self-written" : "text",
                         calibrationInputsName(*s.calibrationInputs), formatDuration(s.calibrationSeconds));
  return fmt::format("entquant ({} codes, {} objective, {} bit allocation{})", quant::codeFormatName(s.format),
                     objective, allocation, extra);
}

void printSummary(const CompressSummary& s, bool verbose) {
  if (verbose) {
    std::size_t width = 6;
    for (const auto& t : s.tensors) width = std::max(width, t.name.size());
    fmt::print("{:<{}}  {:>8} {:>8} {:>8} {:>9} {:>7} {:>7} {:>9}\n", "Tensor", width, "encoding", "eff.bpw",
               "entropy", "lambda", "rel.l1", "rel.l2", "sensitiv.");
    for (const auto& t : s.tensors) {
      if (t.encoding == Encoding::Raw) continue;
      fmt::print("{:<{}}  {:>8} {:>8.3f} {:>8.3f} {:>9.3g} {:>7.4f} {:>7.4f} {:>9}{}\n", t.name, width,
                 encodingName(t.encoding), t.effectiveBits, t.entropyBits, t.lambda, t.relL1, t.relL2,
                 t.sensitivity > 0 ? fmt::format("{:.3g}", t.sensitivity) : "-",
                 t.targetClamped ? "  (target unreachable)" : "");
    }
    fmt::print("\n");
  }
  std::size_t compressed = 0, clamped = 0;
  for (const auto& t : s.tensors) {
    compressed += t.encoding != Encoding::Raw;
    clamped += t.targetClamped;
  }
  fmt::print("Compressed    {} -> {}\n", s.input, s.output);
  fmt::print("Method        {}\n", methodLine(s));
  fmt::print("Tensors       {} compressed, {} kept as they are\n", compressed, s.tensors.size() - compressed);
  fmt::print("Size          {} -> {} ({:.2f}x smaller)\n", formatBytes(s.inputBytes), formatBytes(s.outputBytes),
             s.outputBytes ? static_cast<double>(s.inputBytes) / static_cast<double>(s.outputBytes) : 0.0);
  const std::string entropy = s.method == Method::EntQuant ? fmt::format(", {:.3f} entropy", s.entropyBpw) : "";
  fmt::print("Bits/weight   {:.3f} effective (everything stored for the compressed tensors){}; {:.3f} for the whole "
             "file\n", s.effectiveBpw, entropy, s.modelBpw);
  fmt::print("Time          {}\n", formatDuration(s.seconds));
  if (clamped) fmt::print("warning: {} tensors could not reach their bits target (see --verbose)\n", clamped);
}

nlohmann::json readJsonArg(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(Errc::NotFound, "{}: cannot be read", path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return parseJson(buf.str(), path + ":");
}

void writeJsonFile(const std::string& path, const nlohmann::ordered_json& j) {
  AtomicFile f(path);
  const std::string text = j.dump(1) + "\n";
  f.write(std::as_bytes(std::span(text.data(), text.size())));
  f.commit();
}

}  // namespace

int runCompress(ArgList& args) {
  const bool json = args.flag("--json"), verbose = args.flag("--verbose"), quiet = args.flag("--quiet");
  CompressOptions o;
  const auto out = args.value("-o");
  const auto planFile = args.value("--plan");
  const PlanArgs given = readPlanOptions(args, o);
  readCalibrationOptions(args, o);
  if (const auto sc = args.value("--scales")) {
    if (given.bits || given.lambda || given.objective || given.allocation || given.allocationError ||
        o.calibration != CalibrationSource::None)
      throw UsageError("--scales excludes --bits, --lambda, --objective, --allocation and --calibration");
    o.scalesFile = *sc;
  }
  if (o.method != Method::EntQuant &&
      (given.objective || o.calibration != CalibrationSource::None || !o.scalesFile.empty()))
    throw UsageError(fmt::format("--objective, --calibration and --scales apply to --method entquant, not {}",
                                 methodName(o.method)));
  if (planFile && (given.bits || given.lambda || given.objective || given.allocation || given.allocationError ||
                   !o.layerRules.empty() || args.value("--method") || args.value("--format")))
    throw UsageError("--plan holds the bits, rules, method, format and objective; it excludes the options that set them");
  o.threads = threadsOf(args);
  const std::string modelPath = args.modelOrDemo();
  if (!out) throw UsageError("missing -o OUT.eqz");

  installCancelHandlers();
  std::optional<Plan> plan;
  if (planFile) plan = Plan::fromJson(readJsonArg(*planFile), *planFile);
  ProgressLine line(!quiet && (!json || ::isatty(2)));
  const auto source = ModelSource::open(modelPath, OpenOptions{keepGoing, progressPrinter(line)});
  o.keepGoing = keepGoing;
  o.progress = progressPrinter(line);
  const CompressSummary s = plan ? compressModel(*source, *plan, *out, o) : compressModel(*source, *out, o);
  line.finish();
  if (json) fmt::print("{}\n", toJson(s).dump(1));
  else printSummary(s, verbose);
  return kExitOk;
}

int runPlan(ArgList& args) {
  const bool json = args.flag("--json");
  CompressOptions o;
  const auto out = args.value("-o");
  readPlanOptions(args, o);
  o.threads = threadsOf(args);
  const std::string modelPath = args.modelOrDemo();
  if (o.allocation == Allocation::Measured)
    throw UsageError("--allocation measured runs the model while compressing; entquant plan does not");
  installCancelHandlers();
  ProgressLine line(!json || ::isatty(2));
  const auto source = ModelSource::open(modelPath, OpenOptions{keepGoing, progressPrinter(line)});
  const PlanSettings settings = o.planSettings();
  AnalyzeOptions ao;
  ao.format = o.format;
  ao.objective = o.objective;
  ao.threads = o.threads;
  ao.keepGoing = keepGoing;
  ao.progress = progressPrinter(line);
  const bool curves = settings.effectiveAllocation() != Allocation::Uniform;
  ao.include = [&](const std::string&) { return curves; };
  const Plan plan = planBits(analyzeModel(*source, ao), settings);
  line.finish();
  if (out) writeJsonFile(*out, plan.toJson());
  if (json) {
    fmt::print("{}\n", plan.toJson().dump(1));
    return kExitOk;
  }
  std::size_t width = 6;
  for (const auto& t : plan.tensors) width = std::max(width, t.name.size());
  fmt::print("{:<{}}  {:>8} {:>12} {:>10}\n", "Tensor", width, "bits", "bytes", "rel.MSE");
  for (const auto& t : plan.tensors)
    fmt::print("{:<{}}  {:>8} {:>12} {:>10}\n", t.name, width,
               !t.compress ? "keep" : t.predictedBits ? fmt::format("{:.3f}", *t.predictedBits) : "?",
               formatBytes(t.predictedBytes), t.predictedRelMse ? fmt::format("{:.3g}", *t.predictedRelMse) : "-");
  fmt::print("\nPredicted     {} for the whole file", formatBytes(plan.predictedFileBytes));
  if (plan.predictedEffectiveBits) fmt::print(", {:.3f} effective bits per compressed weight", *plan.predictedEffectiveBits);
  if (plan.predictedRelMse) fmt::print(", mean relative MSE {:.3g}", *plan.predictedRelMse);
  fmt::print("\n");
  if (out) fmt::print("Plan written to {} (entquant compress {} --plan {} -o OUT.eqz)\n", *out, modelPath, *out);
  return kExitOk;
}

// entquant analyze MODEL --layer NAME [--bits B]: one tensor at its operating point (pipeline/layer_detail.h).
int runLayerDetail(ArgList& args, const std::string& layer, const AnalyzeOptions& ao, bool json) {
  LayerDetailOptions lo;
  lo.format = ao.format;
  lo.objective = ao.objective;
  if (const auto b = args.number<double>("--bits")) {
    if (!(*b > 0 && *b <= 8)) throw UsageError("--bits must be in (0, 8]");
    lo.target.value = *b;
  }
  if (const auto r = args.number<long long>("--row")) lo.row = *r;
  lo.threads = ao.threads;
  const std::string modelPath = args.modelOrDemo();
  installCancelHandlers();
  lo.keepGoing = keepGoing;
  const LayerDetail d = inspectLayer(*ModelSource::open(modelPath, OpenOptions{keepGoing, {}}), layer, lo);
  if (json) {
    fmt::print("{}\n", d.toJson().dump(1));
    return kExitOk;
  }
  fmt::print("{}: {} x {}, {} rows sampled, at {:.3f} effective bits\n", d.name, d.rows, d.cols, d.rowsSampled,
             d.effectiveBits);
  fmt::print("codes        {} distinct, entropy {:.3f} bits per weight\n", d.distinctCodes, d.entropyBits);
  fmt::print("error        relative L2 {:.4f}, |w_hat - w| up to {:.3g}\n", d.relL2, d.errors.hi);
  fmt::print("row {}       scale {:.4g}: {} values within |w| <= {:.3g}\n", d.row, d.rowScale, d.grid.size(), d.weights.hi);
  return kExitOk;
}

int runAnalyze(ArgList& args) {
  const bool json = args.flag("--json");
  const auto out = args.value("-o");
  const auto layer = args.value("--layer");
  AnalyzeOptions ao;
  if (const auto f = args.value("--format")) {
    const auto parsed = quant::parseCodeFormat(*f);
    if (!parsed) throw UsageError(fmt::format("--format must be fp8 or int8, not \"{}\"", *f));
    ao.format = *parsed;
  }
  if (const auto objective = args.value("--objective")) {
    const auto parsed = quant::parseObjective(*objective);
    if (!parsed)
      throw UsageError(fmt::format("--objective must be {}, not \"{}\"", oneOf(quant::objectiveNames()), *objective));
    ao.objective = *parsed;
  }
  ao.threads = threadsOf(args);
  if (layer) return runLayerDetail(args, *layer, ao, json);
  const std::string modelPath = args.modelOrDemo();
  installCancelHandlers();
  ProgressLine line(!json || ::isatty(2));
  const auto source = ModelSource::open(modelPath, OpenOptions{keepGoing, progressPrinter(line)});
  ao.keepGoing = keepGoing;
  ao.progress = progressPrinter(line);
  const Analysis a = analyzeModel(*source, ao);
  line.finish();
  if (out) writeJsonFile(*out, a.toJson());
  if (json) {
    fmt::print("{}\n", a.toJson().dump(1));
    return kExitOk;
  }
  std::size_t width = 6;
  for (const auto& t : a.tensors) width = std::max(width, t.name.size());
  fmt::print("{:<{}}  {:>12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "Tensor", width, "shape", "absmax", "kurtosis",
             "MSE@2b", "MSE@3b", "MSE@4b", "depth w.");
  for (const auto& t : a.tensors) {
    if (!t.analyzed()) continue;
    auto at = [&](double b) { return fmt::format("{:.3g}", relMseAtBits(t.curve, b).value_or(0)); };
    fmt::print("{:<{}}  {:>12} {:>9.3g} {:>9.2f} {:>9} {:>9} {:>9} {:>9.3g}\n", t.name, width,
               fmt::format("{}x{}", t.rows, t.cols), t.stats->absMax, t.stats->kurtosis, at(2), at(3), at(4),
               t.depthSensitivity);
  }
  fmt::print("\nAnalyzed {} tensors in {}{}\n",
             std::count_if(a.tensors.begin(), a.tensors.end(), [](const auto& t) { return t.analyzed(); }),
             formatDuration(a.seconds), out ? fmt::format("; written to {}", *out) : "");
  return kExitOk;
}

}  // namespace eq::cli
