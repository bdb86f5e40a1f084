#include "pipeline/analyze.h"

#include "codec/rans.h"
#include "common/error.h"
#include "common/json.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "model/arch.h"
#include "model/linear.h"
#include "pipeline/sensitivity.h"
#include "quant/matrix_view.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace eq {
namespace {

using Clock = std::chrono::steady_clock;

// Quantized alone at the target, swapped into the model: the KL divergence it causes per unit of its relative MSE.
double measuredSensitivity(SensitivityProbe& probe, const quant::MatrixView& m, quant::QuantizeOptions qo,
                           const quant::RateTarget& target, const std::string& name, ThreadPool& pool) {
  qo.target = target;
  const quant::QuantizedTensor q = quant::quantizeTensor(m, qo, pool);
  model::Linear l;
  l.kind = model::Linear::Kind::Codes;
  l.format = q.format;
  l.rows = q.rows;
  l.cols = q.cols;
  l.codes.resize(static_cast<std::size_t>(q.rows * q.cols));
  codec::ransDecode(q.stream, l.codes, name, &pool);
  l.scales.reserve(q.scales.size());
  for (const std::uint16_t s : q.scales) l.scales.push_back(bf16ToF32(s));
  const double kl = probe.kl(name, l);
  // a tensor whose probe changed nothing measurable still gets a small weight
  return std::max(kl, 1e-9) / std::max(q.relL2 * q.relL2, 1e-12);
}

WeightStats weightStats(const quant::MatrixView& m, std::int64_t maxRows) {
  WeightStats s;
  const std::int64_t step = std::max<std::int64_t>(1, (m.rows + maxRows - 1) / maxRows);
  std::vector<float> w(static_cast<std::size_t>(m.cols));
  double sum1 = 0, sum2 = 0, sum4 = 0, n = 0, zeros = 0;
  std::vector<float> sampled;
  for (std::int64_t r = 0; r < m.rows; r += step) {
    m.row(r, w.data());
    ++s.rowsSampled;
    for (const float x : w) {
      const double a = std::fabs(static_cast<double>(x));
      s.absMax = std::max(s.absMax, a);
      sum1 += a;
      sum2 += a * a;
      sum4 += a * a * a * a;
      zeros += x == 0.0f;
      n += 1;
    }
    sampled.insert(sampled.end(), w.begin(), w.end());
  }
  if (n > 0) {
    s.meanAbs = sum1 / n;
    s.rms = std::sqrt(sum2 / n);
    const double m2 = sum2 / n;
    s.kurtosis = m2 > 0 ? (sum4 / n) / (m2 * m2) - 3.0 : 0;
    s.zeroFraction = zeros / n;
  }
  s.histogram.assign(WeightStats::kHistogramBins, 0);
  if (s.absMax > 0)
    for (const float x : sampled) {
      const double u = (static_cast<double>(x) / s.absMax + 1.0) / 2.0;  // [0, 1]
      const int b = std::clamp(static_cast<int>(u * WeightStats::kHistogramBins), 0, WeightStats::kHistogramBins - 1);
      ++s.histogram[static_cast<std::size_t>(b)];
    }
  return s;
}

}  // namespace

const TensorAnalysis* Analysis::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Analysis analyzeModel(const ModelSource& source, const AnalyzeOptions& o) {
  const auto start = Clock::now();
  Analysis a;
  a.input = source.input().string();
  a.format = o.format;
  a.objective = o.objective;
  a.curveRows = o.curveRows;
  if (source.config()) a.config = source.config()->raw;
  for (const auto& [name, bytes] : source.otherFiles())
    if (!name.ends_with(".safetensors.index.json") && bytes <= o.maxEmbeddedFileBytes)
      a.embeddedFiles.emplace_back(name, bytes);
  const auto& tensors = source.tensors();
  int layers = 0;
  for (const auto& t : tensors) layers = std::max(layers, t.cls.layer + 1);
  std::size_t todo = 0;
  for (const auto& t : tensors) todo += t.cls.compressible && (!o.include || o.include(t.info->name));
  PhaseProgress progress(o.progress, Phase::Analyze, Unit::Tensors, todo);
  std::optional<ThreadPool> poolStorage;  // only when something is analyzed: a headers-only call starts no threads
  if (todo) poolStorage.emplace(o.threads);
  std::size_t done = 0;
  for (const ModelTensor& t : tensors) {
    TensorAnalysis ta;
    ta.name = t.info->name;
    ta.shape = t.info->shape;
    ta.dtype = t.info->dtype;
    ta.role = t.cls.role;
    ta.layer = t.cls.layer;
    ta.compressible = t.cls.compressible;
    ta.numel = t.info->numel;
    ta.bytes = t.info->bytes();
    if (ta.compressible) {
      ta.cols = ta.shape.back();
      ta.rows = ta.cols ? static_cast<std::int64_t>(ta.numel / static_cast<std::uint64_t>(ta.cols)) : 0;
      ta.depthSensitivity = depthSensitivity(ta.name, ta.layer, layers);
    }
    if (ta.compressible && (!o.include || o.include(ta.name))) {
      if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "analysis cancelled");
      progress.report(done, 0, ta.name);
      quant::QuantizeOptions qo;
      qo.format = o.format;
      qo.segmentSymbols = o.segmentSymbols;
      qo.keepGoing = o.keepGoing;
      qo.objective = o.objective;
      try {
        const auto m = quant::MatrixView::of(source.data(t), t.info->dtype, t.info->shape);
        ThreadPool& pool = *poolStorage;
        if (o.probe) ta.measuredSensitivity = measuredSensitivity(*o.probe, m, qo, o.probeTarget, ta.name, pool);
        ta.curve = quant::rateCurve(m, qo, pool, o.curveRows, o.sampledNormalization);
        ta.stats = weightStats(m, o.curveRows);
      } catch (const Error& e) {
        if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "analysis cancelled");
        throw e.withContext(fmt::format("{}: tensor \"{}\"", a.input, ta.name));
      }
      source.release(t);
      if (o.onTensor) o.onTensor(ta);
      progress.report(++done, 0, ta.name, true);
    }
    a.tensors.push_back(std::move(ta));
  }
  a.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return a;
}

// ---- JSON ------------------------------------------------------------------------------------------------------------

nlohmann::ordered_json Analysis::toJson() const {
  using J = nlohmann::ordered_json;
  J tensorsJson = J::array();
  for (const auto& t : tensors) {
    J j{{"name", t.name}, {"shape", t.shape}, {"dtype", std::string(dtypeName(t.dtype))},
        {"role", std::string(roleName(t.role))}, {"layer", t.layer}, {"compressible", t.compressible},
        {"numel", t.numel}, {"bytes", t.bytes}};
    if (t.compressible) {
      j["rows"] = t.rows;
      j["cols"] = t.cols;
      j["depth_sensitivity"] = t.depthSensitivity;
    }
    if (t.measuredSensitivity) j["measured_sensitivity"] = *t.measuredSensitivity;
    if (t.analyzed()) {
      J curve = J::array();
      for (const auto& p : t.curve)
        curve.push_back({{"lambda", p.lambda}, {"bits", p.bits}, {"rel_mse", p.relMse},
                         {"rel_mse_balanced", p.relMseBalanced}});
      j["curve"] = curve;
    }
    if (t.stats)
      j["stats"] = {{"rows_sampled", t.stats->rowsSampled}, {"abs_max", t.stats->absMax},
                    {"mean_abs", t.stats->meanAbs}, {"rms", t.stats->rms}, {"kurtosis", t.stats->kurtosis},
                    {"zero_fraction", t.stats->zeroFraction}, {"histogram", t.stats->histogram}};
    tensorsJson.push_back(std::move(j));
  }
  J files = J::array();
  for (const auto& [name, bytes] : embeddedFiles) files.push_back({{"name", name}, {"bytes", bytes}});
  return J{{"format", "entquant-analysis"},
           {"version", 1},
           {"input", input},
           {"code_format", std::string(quant::codeFormatName(format))},
           {"objective", std::string(quant::objectiveName(objective))},
           {"curve_rows", curveRows},
           {"seconds", seconds},
           {"config", config},
           {"embedded_files", files},
           {"tensors", tensorsJson}};
}

Analysis Analysis::fromJson(const nlohmann::json& j, const std::string& label) {
  const JsonReader r(j, label);
  if (r.string("format") != "entquant-analysis")
    fail(Errc::InvalidJson, "{}: not an analysis (\"format\" is not \"entquant-analysis\")", label);
  if (r.integer("version") != 1) fail(Errc::Unsupported, "{}: analysis version {} is not 1", label, r.integer("version"));
  Analysis a;
  a.input = r.string("input");
  const auto format = quant::parseCodeFormat(r.string("code_format"));
  const auto objective = quant::parseObjective(r.string("objective"));
  if (!format || !objective) fail(Errc::InvalidJson, "{}: unknown code format or objective", label);
  a.format = *format;
  a.objective = *objective;
  a.curveRows = r.integer("curve_rows");
  a.seconds = r.number("seconds");
  a.config = j.contains("config") ? j["config"] : nlohmann::json(nullptr);
  for (const auto& f : r.array("embedded_files")) {
    const JsonReader fr(f, label + ": embedded_files");
    a.embeddedFiles.emplace_back(fr.string("name"), fr.unsignedInteger("bytes"));
  }
  for (const auto& tj : r.array("tensors")) {
    const JsonReader tr(tj, label + ": tensors");
    TensorAnalysis t;
    t.name = tr.string("name");
    t.shape = tr.integers("shape");
    const auto dtype = parseDType(tr.string("dtype"));
    if (!dtype) fail(Errc::InvalidJson, "{}: tensor \"{}\": unknown dtype", label, t.name);
    t.dtype = *dtype;
    const auto role = parseRole(tr.string("role"));
    if (!role) fail(Errc::InvalidJson, "{}: tensor \"{}\": unknown role", label, t.name);
    t.role = *role;
    t.layer = static_cast<int>(tr.integer("layer"));
    t.compressible = tr.boolean("compressible");
    t.numel = tr.unsignedInteger("numel");
    t.bytes = tr.unsignedInteger("bytes");
    if (t.compressible) {
      t.rows = tr.integer("rows");
      t.cols = tr.integer("cols");
      t.depthSensitivity = tr.number("depth_sensitivity");
    }
    if (tj.contains("measured_sensitivity")) t.measuredSensitivity = tr.number("measured_sensitivity");
    if (tj.contains("curve"))
      for (const auto& pj : tr.array("curve")) {
        const JsonReader pr(pj, label + ": tensor \"" + t.name + "\": curve");
        t.curve.push_back({pr.number("lambda"), pr.number("bits"), pr.number("rel_mse"), pr.number("rel_mse_balanced")});
      }
    if (tj.contains("stats")) {
      const JsonReader sr(tj["stats"], label + ": tensor \"" + t.name + "\": stats");
      WeightStats s;
      s.rowsSampled = sr.integer("rows_sampled");
      s.absMax = sr.number("abs_max");
      s.meanAbs = sr.number("mean_abs");
      s.rms = sr.number("rms");
      s.kurtosis = sr.number("kurtosis");
      s.zeroFraction = sr.number("zero_fraction");
      for (const auto v : sr.integers("histogram")) s.histogram.push_back(static_cast<std::uint64_t>(v));
      t.stats = std::move(s);
    }
    a.tensors.push_back(std::move(t));
  }
  return a;
}

}  // namespace eq
