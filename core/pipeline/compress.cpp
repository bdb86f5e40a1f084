#include "pipeline/compress.h"

#include "codec/rans.h"
#include "common/error.h"
#include "common/numerics.h"
#include "common/regex.h"
#include "common/mapped_file.h"
#include "common/thread_pool.h"
#include "format/eqz.h"
#include "format/safetensors.h"
#include "model/arch.h"
#include "pipeline/sensitivity.h"
#include "quant/baseline.h"
#include "quant/error_feedback.h"
#include "quant/row_scale_search.h"
#include "text/tokenizer.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <numeric>
#include <queue>

namespace eq {
namespace {

// An error while working on one tensor: a cancel becomes the job's "compression cancelled"; anything else gets the
// input's path and the tensor's name.
[[noreturn]] void rethrowForTensor(const Error& e, const ModelSource& source, const std::string& tensor) {
  if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
  throw e.withContext(fmt::format("{}: tensor \"{}\"", source.input().string(), tensor));
}

using Clock = std::chrono::steady_clock;

std::string isoNow() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::string_view allocationName(CompressOptions::Allocation a) {
  switch (a) {
    case CompressOptions::Allocation::Global: return "global";
    case CompressOptions::Allocation::Depth: return "depth";
    case CompressOptions::Allocation::Measured: return "measured";
    default: return "uniform";
  }
}

std::string_view calibrationName(const CompressOptions& o) {
  if (o.method != "entquant" || !o.scalesFile.empty()) return "none";
  switch (o.calibration) {
    case CompressOptions::Calibration::Self: return "self";
    case CompressOptions::Calibration::Text: return "text";
    default: return "none";
  }
}

// --calibration-text: the file's text cut into calibration texts with the model's own tokenizer.
std::vector<std::vector<std::int32_t>> textCalibration(const ModelSource& source, const CompressOptions& o) {
  const std::string file = o.calibrationFile.string();
  std::optional<MappedFile> f;
  try {
    f.emplace(o.calibrationFile);
  } catch (const Error& e) {
    throw e.withContext("--calibration-text");
  }
  const std::filesystem::path tokenizer = source.root() / "tokenizer.json";
  if (!std::filesystem::exists(tokenizer))
    fail(Errc::NotFound, "{}: no tokenizer.json; --calibration-text needs the model's tokenizer", source.input().string());
  const text::Tokenizer tok = text::Tokenizer::fromFile(tokenizer);
  const auto& cfg = source.config();
  std::int64_t length = o.calibrationOptions.length;
  if (length == 0) length = cfg && cfg->maxPositions > 1 ? std::min<std::int64_t>(512, cfg->maxPositions) : 512;
  std::optional<std::int32_t> bos;
  if (cfg && cfg->bosTokenId) bos = static_cast<std::int32_t>(*cfg->bosTokenId);
  const auto bytes = f->bytes();
  return calibrationTextsOf(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), tok, length,
                            o.calibrationOptions.sequences, bos, file);
}

std::string objectiveLabel(const CompressOptions& o) {
  return o.scalesFile.empty() ? std::string(quant::objectiveName(o.objective)) : "given-scales";
}

nlohmann::json settingsJson(const CompressOptions& o, const std::string& calibrationInputs) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& r : o.layerRules)
    rules.push_back({{"pattern", r.pattern}, {"bits", r.bits ? nlohmann::json(*r.bits) : nlohmann::json("keep")}});
  nlohmann::json j{{"method", o.method},
          {"code_format", std::string(quant::codeFormatName(o.format))},
          {"mode", o.target.mode == quant::RateTarget::Mode::Bits ? "bits" : "lambda"},
          {"allocation", std::string(allocationName(o.allocation))},
          {"objective", objectiveLabel(o)},
          {"calibration", std::string(calibrationName(o))},
          {"value", o.target.value},
          {"layer_bits", rules},
          {"segment_symbols", o.segmentSymbols}};
  if (!calibrationInputs.empty()) j["calibration_inputs"] = calibrationInputs;
  if (calibrationName(o) == "text") j["calibration_file"] = o.calibrationFile.string();
  if (calibrationName(o) == "self") j["calibration_seed"] = o.calibrationOptions.seed;
  if (o.allocation == CompressOptions::Allocation::Global || o.allocation == CompressOptions::Allocation::Depth)
    j["allocation_error"] = o.balancedAllocation ? "balanced" : "matrix";
  return j;
}

// The target of one compressible tensor: the last matching rule, else its allocated bits, else the global target.
// `ruled` tells whether a rule decided it.
std::optional<quant::RateTarget> targetFor(const std::string& name, const CompressOptions& o,
                                           const std::vector<Regex>& rules,
                                           const std::map<std::string, double>& allocated, bool* ruled = nullptr) {
  std::optional<quant::RateTarget> t = o.target;
  if (const auto it = allocated.find(name); it != allocated.end()) t->value = it->second;
  if (ruled) *ruled = false;
  for (std::size_t i = 0; i < rules.size(); ++i)
    if (rules[i].search(name)) {
      if (ruled) *ruled = true;
      if (!o.layerRules[i].bits) t.reset();
      else t = quant::RateTarget{quant::RateTarget::Mode::Bits, *o.layerRules[i].bits};
    }
  return t;
}

// A compressed tensor as the engine multiplies with it: its codes decoded once more, its bf16 scales as floats.
model::Linear codesLinear(const quant::QuantizedTensor& q, const std::string& name, ThreadPool& pool) {
  model::Linear l;
  l.kind = model::Linear::Kind::Codes;
  l.format = q.format;
  l.rows = q.rows;
  l.cols = q.cols;
  l.codes.resize(static_cast<std::size_t>(q.rows * q.cols));
  codec::ransDecode(q.stream, l.codes, name, &pool);
  l.scales.reserve(q.scales.size());
  for (const std::uint16_t s : q.scales) l.scales.push_back(bf16ToF32(s));
  return l;
}

// Global (depth, measured) allocation: per-tensor bits targets with the same weighted mean as o.target, chosen at
// equal slope mu of (sensitivity x relMSE) against bits (each tensor minimizes that + mu * bits on its measured
// curve). `probe` (measured): each tensor quantized alone at the target, its KL divergence per unit relMSE is its
// sensitivity. The sensitivities land in `sensitivities`.
std::map<std::string, double> allocateBits(const ModelSource& source, const CompressOptions& o,
                                           const std::vector<Regex>& rules, ThreadPool& pool, SensitivityProbe* probe,
                                           std::map<std::string, double>& sensitivities,
                                           const std::function<void(std::size_t, const std::string&)>& progress) {
  struct Curve {
    std::string name;
    double weights, sensitivity;
    std::vector<quant::RatePoint> points;
  };
  std::vector<Curve> curves;
  const auto& tensors = source.tensors();
  int layers = 0;
  for (const auto& t : tensors) layers = std::max(layers, t.cls.layer + 1);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const ModelTensor& t = tensors[i];
    bool ruled = false;
    if (!t.cls.compressible || !targetFor(t.info->name, o, rules, {}, &ruled) || ruled) continue;
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "compression cancelled");
    progress(i, t.info->name);
    quant::QuantizeOptions qo;
    qo.format = o.format;
    qo.segmentSymbols = o.segmentSymbols;
    qo.keepGoing = o.keepGoing;
    qo.objective = o.objective;
    const auto m = quant::MatrixView::of(source.data(t), t.info->dtype, t.info->shape);
    double sensitivity = o.allocation == CompressOptions::Allocation::Depth
                             ? depthSensitivity(t.info->name, t.cls.layer, layers) : 1.0;
    try {
      if (probe) {
        quant::QuantizeOptions po = qo;
        po.target = o.target;
        const quant::QuantizedTensor q = quant::quantizeTensor(m, po, pool);
        const double kl = probe->kl(t.info->name, codesLinear(q, t.info->name, pool));
        // KL per unit of relative MSE; a tensor whose probe changed nothing measurable still gets a small weight
        sensitivity = std::max(kl, 1e-9) / std::max(q.relL2 * q.relL2, 1e-12);
      }
      curves.push_back({t.info->name, static_cast<double>(m.numel()), sensitivity, quant::rateCurve(m, qo, pool)});
    } catch (const Error& e) {
      rethrowForTensor(e, source, t.info->name);
    }
    sensitivities[t.info->name] = sensitivity;
    source.release(t);
  }
  // Each curve's lower convex hull in (bits, relMSE); then the classic greedy for convex costs: start every tensor
  // at its fewest bits and keep buying the hull edge with the steepest error drop per bit until the budget is
  // spent, the last edge fractionally. This is the equal-slope optimum of sum weights * relMSE at fixed total bits.
  std::vector<std::vector<quant::RowPoint>> hulls;
  double total = 0, used = 0;
  const bool balanced = o.balancedAllocation && o.allocation != CompressOptions::Allocation::Measured;
  for (const auto& c : curves) {
    std::vector<quant::RowPoint> pts;
    for (std::size_t k = 0; k < c.points.size(); ++k)
      pts.push_back({static_cast<std::int32_t>(k), c.sensitivity * (balanced ? c.points[k].relMseBalanced : c.points[k].relMse),
                     c.points[k].bits});
    quant::lowerHull(pts);
    total += c.weights;
    used += c.weights * pts.front().rate;
    hulls.push_back(std::move(pts));
  }
  const double budget = o.target.value * total;
  std::vector<double> bits;
  std::vector<std::size_t> at(curves.size(), 0);
  for (const auto& h : hulls) bits.push_back(h.front().rate);
  using Edge = std::pair<double, std::size_t>;  // (error drop per bit, tensor)
  std::priority_queue<Edge> edges;
  auto pushNext = [&](std::size_t i) {
    const auto& h = hulls[i];
    if (at[i] + 1 < h.size())
      edges.push({(h[at[i]].err - h[at[i] + 1].err) / (h[at[i] + 1].rate - h[at[i]].rate), i});
  };
  for (std::size_t i = 0; i < hulls.size(); ++i) pushNext(i);
  while (!edges.empty() && used < budget) {
    const std::size_t i = edges.top().second;
    edges.pop();
    const auto& h = hulls[i];
    const double step = (h[at[i] + 1].rate - h[at[i]].rate) * curves[i].weights;
    if (used + step > budget) {  // the last edge, partly
      bits[i] += (budget - used) / curves[i].weights;
      used = budget;
      break;
    }
    used += step;
    bits[i] = h[++at[i]].rate;
    pushNext(i);
  }
  std::map<std::string, double> out;
  for (std::size_t i = 0; i < curves.size(); ++i) out[curves[i].name] = std::clamp(bits[i], 0.5, 8.0);
  return out;
}

// Reads and checks the given log2 scales of every tensor that will be compressed, before any work.
std::map<std::string, std::vector<float>> loadGivenScales(const ModelSource& source, const CompressOptions& o,
                                                          const std::vector<Regex>& rules) {
  for (const auto& r : o.layerRules)
    if (r.bits)
      fail(Errc::InvalidArgument, "--layer-bits \"{}={}\": with --scales, rules can only keep tensors", r.pattern,
           *r.bits);
  const auto file = SafetensorsFile::open(o.scalesFile);
  const std::string path = o.scalesFile.string();
  std::map<std::string, std::vector<float>> out;
  for (const ModelTensor& t : source.tensors()) {
    if (!t.cls.compressible || !targetFor(t.info->name, o, rules, {})) continue;
    const std::string& name = t.info->name;
    const std::vector<std::int64_t> rowShape(t.info->shape.begin(), t.info->shape.end() - 1);
    std::int64_t rows = 1;
    for (auto d : rowShape) rows *= d;
    const TensorInfo* s = file.find(name);
    if (!s) fail(Errc::MissingTensor, "{}: no tensor \"{}\" (the log2 scales of that weight's {} rows)", path, name, rows);
    if (s->dtype != DType::F32 && s->dtype != DType::BF16)
      fail(Errc::InvalidArgument, "{}: tensor \"{}\" is {}; log2 scales must be F32 or BF16", path, name,
           dtypeName(s->dtype));
    if (s->shape != std::vector<std::int64_t>{rows} && s->shape != rowShape)
      fail(Errc::ShapeMismatch, "{}: tensor \"{}\" has shape [{}]; expected [{}], one log2 scale per row", path, name,
           fmt::join(s->shape, ", "), rows);
    std::vector<float> l(static_cast<std::size_t>(rows));
    convertToFloat(s->dtype, file.data(*s).data(), l.size(), l.data());
    for (std::size_t r = 0; r < l.size(); ++r) {
      if (!std::isfinite(l[r]))
        fail(Errc::InvalidArgument, "{}: tensor \"{}\": the log2 scale of row {} is not finite", path, name, r);
      const float e = bf16ToF32(f32ToBf16(l[r]));
      if (e < -126 || e > 127)
        fail(Errc::InvalidArgument, "{}: tensor \"{}\": the log2 scale of row {} is {}, outside [-126, 127]", path, name,
             r, l[r]);
    }
    out[name] = std::move(l);
  }
  return out;
}

}  // namespace

LayerRule LayerRule::parse(const std::string& text) {
  const auto eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    fail(Errc::InvalidArgument, "--layer-bits \"{}\": expected REGEX=BITS or REGEX=keep", text);
  LayerRule r;
  r.pattern = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  try {
    Regex check(r.pattern);
  } catch (const Error& e) {
    throw e.withContext(fmt::format("--layer-bits \"{}\"", text));
  }
  if (value == "keep") return r;
  char* end = nullptr;
  const double bits = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !(bits > 0 && bits <= 8))
    fail(Errc::InvalidArgument, "--layer-bits \"{}\": bits must be a number in (0, 8] or \"keep\"", text);
  r.bits = bits;
  return r;
}

CompressSummary compressModel(const ModelSource& source, const std::filesystem::path& output,
                              const CompressOptions& o) {
  const auto start = Clock::now();
  const bool entquant = o.method == "entquant";
  const auto baseline = entquant ? std::nullopt : quant::parseBaselineMethod(o.method);
  if (!entquant && !baseline)
    fail(Errc::InvalidArgument, "unknown method \"{}\" (entquant, rtn4, rtn3, rtn2, nf4)", o.method);
  if (o.target.value <= 0) fail(Errc::InvalidArgument, "the rate target must be positive");
  std::vector<Regex> rules;
  for (const auto& r : o.layerRules) rules.emplace_back(r.pattern);
  auto cancelled = [&] { return o.keepGoing && !o.keepGoing(); };

  const bool given = entquant && !o.scalesFile.empty();
  const auto givenScales = given ? loadGivenScales(source, o, rules) : std::map<std::string, std::vector<float>>{};
  ThreadPool pool(o.threads);
  const CompressProgress* current = nullptr;  // the tensor being compressed, for the calibration's passes
  const bool calibrate = entquant && !given && o.calibration != CompressOptions::Calibration::None;
  // The model writing its texts (--calibration self, --allocation measured): tokens written so far.
  auto writingProgress = [&](std::int64_t done, std::int64_t total) {
    if (!o.progress) return;
    CompressProgress p;
    p.phase = "calibrate";
    p.index = static_cast<std::size_t>(done);
    p.count = static_cast<std::size_t>(total);
    p.done = done == total;
    p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    p.etaSeconds = done > 0 ? p.seconds * static_cast<double>(total - done) / static_cast<double>(done) : 0;
    o.progress(p);
  };
  const char* calibrationFlag =
      o.calibration == CompressOptions::Calibration::Text ? "--calibration-text" : "--calibration self";
  std::unique_ptr<SelfCalibration> cal;
  if (calibrate) {
    CalibrationOptions co = o.calibrationOptions;
    if (o.calibration == CompressOptions::Calibration::Text) co.texts = textCalibration(source, o);
    co.keepGoing = o.keepGoing;
    co.progress = writingProgress;
    co.passProgress = [&](std::int64_t block, int pass, std::int64_t done, std::int64_t texts) {
      if (!o.progress || !current) return;
      CompressProgress p = *current;
      p.detail = fmt::format("(calibration: block {} pass {}, {}/{} texts)", block, pass, done, texts);
      p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      o.progress(p);
    };
    try {
      cal = std::make_unique<SelfCalibration>(source, pool, co);
    } catch (const Error& e) {
      if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
      throw e.withContext(calibrationFlag);
    }
  }
  // The statistics of a block's weight, gathered as the texts move through the blocks (pipeline/calibrate.h).
  auto gramOf = [&](const std::string& name) -> std::shared_ptr<const quant::InputGram> {
    if (!cal) return nullptr;
    try {
      return cal->gram(name);
    } catch (const Error& e) {
      if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
      throw e.withContext(calibrationFlag);
    }
  };
  std::shared_ptr<const quant::InputGram> factoredGram;  // the input statistics `factored` belongs to
  std::optional<quant::ErrorFeedback> factored;
  std::map<std::string, double> allocated;
  const bool global = o.allocation != CompressOptions::Allocation::Uniform && entquant && !given &&
                      o.target.mode == quant::RateTarget::Mode::Bits;
  // --allocation measured: the sensitivities are measured on the first of the calibration's texts, or on as many
  // written for it alone.
  std::unique_ptr<SensitivityProbe> probe;
  std::map<std::string, double> sensitivities;
  if (global && o.allocation == CompressOptions::Allocation::Measured) {
    try {
      std::vector<std::vector<std::int32_t>> texts;
      if (cal) {
        const auto& all = cal->texts();
        texts.assign(all.begin(), all.begin() + std::min<std::ptrdiff_t>(kSensitivityTexts, std::ssize(all)));
      } else {
        CalibrationOptions co = o.calibrationOptions;
        co.sequences = std::min(co.sequences, kSensitivityTexts);
        co.keepGoing = o.keepGoing;
        co.progress = writingProgress;
        texts = writeSelfTexts(source, pool, co);
      }
      probe = std::make_unique<SensitivityProbe>(source, pool, std::move(texts), o.keepGoing,
                                                 o.calibrationOptions.maxBytes);
    } catch (const Error& e) {
      if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
      throw e.withContext("--allocation measured");
    }
  }
  if (global)
    allocated = allocateBits(source, o, rules, pool, probe.get(), sensitivities,
                             [&](std::size_t i, const std::string& name) {
      if (o.progress) {
        CompressProgress p;
        p.phase = "analyze";
        p.index = i;
        p.count = source.tensors().size();
        p.tensor = name;
        o.progress(p);
      }
    });
  EqzWriter writer(output);
  CompressSummary sum;
  sum.allocation = given ? "none" : global ? std::string(allocationName(o.allocation)) : "uniform";
  sum.objective = entquant ? objectiveLabel(o) : "";
  sum.calibration = calibrate ? std::string(calibrationName(o)) : "none";
  if (cal) {
    sum.calibrationTokens = cal->tokens();
    sum.calibrationInputs = std::string(calibrationInputsName(cal->inputs()));
  }
  sum.input = source.input().string();
  sum.output = output.string();
  sum.method = o.method;
  sum.format = std::string(quant::codeFormatName(o.format));
  for (const auto& f : source.files()) sum.inputBytes += f.fileSize();
  std::uint64_t bytesTotal = 0, bytesDone = 0;
  for (const auto& t : source.tensors()) bytesTotal += t.info->bytes();

  const auto& tensors = source.tensors();
  // Natural name order, which is block order; with calibration each block's weights in the order their inputs are
  // computed (q/k/v, o, gate/up, down), so that error feedback sees the compressed weights that feed each one.
  // The index and the report keep the natural order.
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (cal)
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const int la = tensors[a].cls.layer, lb = tensors[b].cls.layer;
      if (la != lb) return la < lb;
      return la >= 0 && calibrationStage(tensors[a].info->name) < calibrationStage(tensors[b].info->name);
    });
  std::vector<nlohmann::json> entries(tensors.size());
  std::vector<TensorReport> reports(tensors.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    if (cancelled()) fail(Errc::Cancelled, "compression cancelled");
    const ModelTensor& mt = tensors[i];
    const TensorInfo& info = *mt.info;
    CompressProgress p{"compress", k, tensors.size(), info.name, false, bytesDone, bytesTotal, 0, 0, 0, {}};
    auto report = [&](bool done) {
      p.done = done;
      p.bytesDone = bytesDone;
      p.seconds = std::chrono::duration<double>(Clock::now() - start).count();
      p.bytesPerSecond = p.seconds > 0 ? static_cast<double>(bytesDone) / p.seconds : 0;
      p.etaSeconds = p.bytesPerSecond > 0 ? static_cast<double>(bytesTotal - bytesDone) / p.bytesPerSecond : 0;
      if (o.progress) o.progress(p);
    };
    report(false);
    current = &p;
    struct Forget {
      const CompressProgress*& current;
      ~Forget() { current = nullptr; }
    } forget{current};
    const auto t0 = Clock::now();
    TensorReport tr;
    tr.name = info.name;
    tr.shape = info.shape;
    tr.dtype = info.dtype;
    tr.role = std::string(roleName(mt.cls.role));
    tr.numel = info.numel;
    nlohmann::json entry{{"name", info.name}, {"shape", info.shape}, {"dtype", std::string(dtypeName(info.dtype))}};
    const auto data = source.data(mt);
    const auto target = mt.cls.compressible ? targetFor(info.name, o, rules, allocated) : std::nullopt;
    try {
      if (!target) {
        tr.encoding = "raw";
        entry["sections"] = {{"data", writer.addSection(data).toJson()}};
      } else if (entquant) {
        quant::MatrixView m = quant::MatrixView::of(data, info.dtype, info.shape);
        quant::QuantizeOptions qo;
        qo.format = o.format;
        qo.target = *target;
        qo.objective = o.objective;
        if (given) qo.log2Scales = givenScales.at(info.name);
        std::vector<float> shifted;  // --calibration-inputs shift: the weights that make up for the inputs' shift
        if (auto g = gramOf(info.name)) {
          // (all zero where nothing before the layer has changed yet: block 0's q, k and v)
          if (std::any_of(g->shift.begin(), g->shift.end(), [](double v) { return v != 0.0; })) {
            shifted.resize(static_cast<std::size_t>(m.numel()));
            for (std::int64_t r = 0; r < m.rows; ++r) m.row(r, shifted.data() + r * m.cols);
            quant::compensateInputShift(*g, shifted.data(), m.rows, 0.01, &pool);
            m = quant::MatrixView::of(std::as_bytes(std::span(shifted)), DType::F32, {m.rows, m.cols});
          }
          if (g != factoredGram) {  // q, k and v (gate and up) share theirs: factor once
            factored.reset();
            factoredGram.reset();
            factored = quant::ErrorFeedback::factor(*g, 0.01, &pool);
            factoredGram = std::move(g);
          }
          qo.errorFeedback = &*factored;
        }
        qo.segmentSymbols = o.segmentSymbols;
        qo.keepGoing = o.keepGoing;
        const quant::QuantizedTensor q = quant::quantizeTensor(m, qo, pool);
        tr.encoding = "entquant";
        entry["code_format"] = std::string(quant::codeFormatName(o.format));
        const EqzSection stream = writer.addSection(q.stream);
        const EqzSection scales = writer.addSection(std::as_bytes(std::span(q.scales)));
        entry["sections"] = {{"stream", stream.toJson()}, {"scales", scales.toJson()}};
        if (target->mode == quant::RateTarget::Mode::Bits && !given) tr.targetBits = target->value;
        tr.lambda = q.lambda;
        tr.entropyBits = q.entropyBits;
        tr.distinctSymbols = q.distinctSymbols;
        tr.relL1 = q.relL1;
        tr.relL2 = q.relL2;
        tr.targetClamped = q.targetClamped;
        if (const auto it = sensitivities.find(info.name); it != sensitivities.end()) tr.sensitivity = it->second;
        if (cal && mt.cls.layer >= 0) cal->replace(info.name, codesLinear(q, info.name, pool));
      } else {
        const auto m = quant::MatrixView::of(data, info.dtype, info.shape);
        std::vector<float> w(static_cast<std::size_t>(m.numel()));
        for (std::int64_t r = 0; r < m.rows; ++r) m.row(r, w.data() + r * m.cols);
        const auto b = quant::quantizeBaseline(*baseline, w.data(), m.rows, m.cols);
        std::vector<std::uint16_t> deq(w.size());
        quant::dequantizeBaseline(b, deq.data());
        double e1 = 0, e2 = 0, a1 = 0, a2 = 0;
        for (std::size_t j = 0; j < w.size(); ++j) {
          const double d = static_cast<double>(bf16ToF32(deq[j])) - w[j];
          e1 += std::fabs(d);
          e2 += d * d;
          a1 += std::fabs(w[j]);
          a2 += static_cast<double>(w[j]) * w[j];
        }
        tr.encoding = o.method;
        entry["sections"] = {{"payload", writer.addSection(quant::serializeBaseline(b)).toJson()}};
        entry["group_size"] = b.groupSize;
        tr.relL1 = a1 > 0 ? e1 / a1 : 0;
        tr.relL2 = a2 > 0 ? std::sqrt(e2 / a2) : 0;
      }
    } catch (const Error& e) {
      rethrowForTensor(e, source, info.name);
    }
    entry["encoding"] = tr.encoding;
    std::uint64_t stored = 0;
    for (const auto& [k, s] : entry["sections"].items()) stored += eqzSlotBytes(s["bytes"].get<std::uint64_t>());
    tr.storedBytes = stored;
    tr.effectiveBits = tr.numel ? 8.0 * static_cast<double>(stored) / static_cast<double>(tr.numel) : 0;
    tr.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (tr.encoding != "raw") {
      entry["stats"] = {{"effective_bpw", tr.effectiveBits}, {"entropy_bpw", tr.entropyBits}, {"lambda", tr.lambda},
                        {"distinct_symbols", tr.distinctSymbols}, {"rel_l1", tr.relL1}, {"rel_l2", tr.relL2}};
      if (tr.sensitivity > 0) entry["stats"]["sensitivity"] = tr.sensitivity;
      sum.compressedWeights += tr.numel;
      sum.compressedBytes += stored;
      sum.entropyBpw += tr.entropyBits * static_cast<double>(tr.numel);
    }
    sum.totalWeights += tr.numel;
    entries[i] = std::move(entry);
    reports[i] = std::move(tr);
    source.release(mt);
    bytesDone += info.bytes();
    report(true);
  }

  nlohmann::json tensorIndex = nlohmann::json::array();
  for (auto& e : entries) tensorIndex.push_back(std::move(e));
  sum.tensors = std::move(reports);
  if (cal) sum.calibrationSeconds = cal->seconds();
  cal.reset();
  if (probe) {
    sum.sensitivityTokens = probe->tokens();
    sum.sensitivitySeconds = probe->seconds();
  }
  probe.reset();

  nlohmann::json files = nlohmann::json::array();
  for (const auto& [name, bytes] : source.otherFiles()) {
    if (name.ends_with(".safetensors.index.json") || bytes > o.maxEmbeddedFileBytes) continue;
    const MappedFile f(source.root() / name);
    files.push_back({{"name", name}, {"section", writer.addSection(f.bytes()).toJson()}});
  }
  if (cancelled()) fail(Errc::Cancelled, "compression cancelled");

  if (sum.compressedWeights) {
    sum.effectiveBpw = 8.0 * static_cast<double>(sum.compressedBytes) / static_cast<double>(sum.compressedWeights);
    sum.entropyBpw /= static_cast<double>(sum.compressedWeights);
  }
  nlohmann::json index{{"format", "entquant-eqz"},
                       {"version", fmt::format("{}.{}", kEqzMajor, kEqzMinor)},
                       {"tool", "entquant " ENTQUANT_VERSION},
                       {"created", isoNow()},
                       {"source", {{"input", sum.input}, {"kind", std::string(sourceKindName(source.kind()))}}},
                       {"settings", settingsJson(o, sum.calibrationInputs)},
                       {"config", source.config() ? source.config()->raw : nlohmann::json(nullptr)},
                       {"tensors", tensorIndex},
                       {"files", files}};
  // The whole-file figure counts the index too; estimate it from its size before the summary goes in.
  const std::uint64_t indexEstimate = index.dump().size() + 512;
  sum.outputBytes = writer.bytesWritten() + indexEstimate;
  sum.modelBpw = sum.totalWeights ? 8.0 * static_cast<double>(sum.outputBytes) / static_cast<double>(sum.totalWeights) : 0;
  sum.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  index["summary"] = {{"effective_bpw", sum.effectiveBpw}, {"entropy_bpw", sum.entropyBpw},
                      {"compressed_weights", sum.compressedWeights}, {"total_weights", sum.totalWeights},
                      {"seconds", sum.seconds}};
  writer.finish(index);
  sum.outputBytes = writer.bytesWritten();
  sum.modelBpw = sum.totalWeights ? 8.0 * static_cast<double>(sum.outputBytes) / static_cast<double>(sum.totalWeights) : 0;
  return sum;
}

nlohmann::ordered_json toJson(const CompressSummary& s) {
  nlohmann::ordered_json j{{"input", s.input},
                           {"output", s.output},
                           {"method", s.method},
                           {"code_format", s.format},
                           {"objective", s.objective},
                           {"allocation", s.allocation},
                           {"calibration", s.calibration},
                           {"effective_bpw", s.effectiveBpw},
                           {"entropy_bpw", s.entropyBpw},
                           {"model_bpw", s.modelBpw},
                           {"compressed_weights", s.compressedWeights},
                           {"total_weights", s.totalWeights},
                           {"input_bytes", s.inputBytes},
                           {"output_bytes", s.outputBytes},
                           {"seconds", s.seconds}};
  if (s.calibration != "none") {
    j["calibration_tokens"] = s.calibrationTokens;
    j["calibration_seconds"] = s.calibrationSeconds;
    j["calibration_inputs"] = s.calibrationInputs;
  }
  if (s.allocation == "measured") {
    j["sensitivity_tokens"] = s.sensitivityTokens;
    j["sensitivity_seconds"] = s.sensitivitySeconds;
  }
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const auto& t : s.tensors) {
    nlohmann::ordered_json e{{"name", t.name}, {"shape", t.shape}, {"dtype", std::string(dtypeName(t.dtype))},
                             {"role", t.role}, {"encoding", t.encoding}, {"stored_bytes", t.storedBytes},
                             {"effective_bpw", t.effectiveBits}};
    if (t.encoding != "raw") {
      e["target_bpw"] = t.targetBits ? nlohmann::ordered_json(*t.targetBits) : nlohmann::ordered_json(nullptr);
      e["lambda"] = t.lambda;
      e["entropy"] = t.entropyBits;
      e["distinct_symbols"] = t.distinctSymbols;
      e["rel_l1"] = t.relL1;
      e["rel_l2"] = t.relL2;
      e["seconds"] = t.seconds;
      if (t.sensitivity > 0) e["sensitivity"] = t.sensitivity;
      if (t.targetClamped) e["target_unreachable"] = true;
    }
    tensors.push_back(e);
  }
  j["tensors"] = tensors;
  return j;
}

}  // namespace eq
