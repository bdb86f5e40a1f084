#include "pipeline/plan.h"

#include "common/error.h"
#include "common/json.h"
#include "common/regex.h"
#include "format/eqz.h"
#include "quant/baseline.h"
#include "quant/row_scale_search.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <queue>

namespace eq {
namespace {

constexpr std::array<std::string_view, 5> kMethodNames{"entquant", "rtn4", "rtn3", "rtn2", "nf4"};
constexpr std::array<std::string_view, 4> kAllocationNames{"uniform", "global", "depth", "measured"};

std::optional<quant::BaselineMethod> baselineOf(Method m) {
  switch (m) {
    case Method::Rtn4: return quant::BaselineMethod::Rtn4;
    case Method::Rtn3: return quant::BaselineMethod::Rtn3;
    case Method::Rtn2: return quant::BaselineMethod::Rtn2;
    case Method::Nf4: return quant::BaselineMethod::Nf4;
    case Method::EntQuant: break;
  }
  return std::nullopt;
}

// The last matching rule decides: keep (nullopt), bits, or (-1) no rule matches.
struct RuleVerdict {
  bool matched = false;
  std::optional<double> bits;
};
RuleVerdict ruleFor(const std::string& name, const std::vector<LayerRule>& rules, const std::vector<Regex>& compiled) {
  RuleVerdict v;
  for (std::size_t i = 0; i < rules.size(); ++i)
    if (compiled[i].search(name)) v = {true, rules[i].bits};
  return v;
}

// Equal-slope allocation of sum(sensitivity x error) at a fixed total of bits: each curve's lower convex hull in
// (bits, error); then the classic greedy for convex costs: start every tensor at its fewest bits and keep buying
// the hull edge with the steepest error drop per bit until the budget is spent, the last edge fractionally.
// Returns each tensor's bits, clamped to [0.5, 8].
struct AllocCurve {
  std::size_t tensor;  // index into the plan
  double weights, sensitivity;
  const std::vector<quant::RatePoint>* points;
};
std::vector<double> allocate(const std::vector<AllocCurve>& curves, double targetBits, bool balanced) {
  std::vector<std::vector<quant::RowPoint>> hulls;
  double total = 0, used = 0;
  for (const auto& c : curves) {
    std::vector<quant::RowPoint> pts;
    for (std::size_t k = 0; k < c.points->size(); ++k) {
      const auto& p = (*c.points)[k];
      pts.push_back({static_cast<std::int32_t>(k), c.sensitivity * (balanced ? p.relMseBalanced : p.relMse), p.bits});
    }
    quant::lowerHull(pts);
    total += c.weights;
    used += c.weights * pts.front().rate;
    hulls.push_back(std::move(pts));
  }
  const double budget = targetBits * total;
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
  // A target beyond what the curves reach (each at its most bits): the rest spread evenly, as every tensor's rate
  // control can go past its curve's end.
  if (used < budget && total > 0)
    for (auto& b : bits) b += (budget - used) / total;
  for (auto& b : bits) b = std::clamp(b, 0.5, 8.0);
  return bits;
}

// The index's size, estimated from what it lists (measured on written files: a kept tensor's entry is its name and
// about 140 bytes, an EntQuant tensor's (two sections and its statistics) about 470, a baseline's about 330).
std::uint64_t indexEstimate(const Analysis& a, const Plan& plan) {
  std::uint64_t b = 600 + a.config.dump().size();
  for (const auto& [name, bytes] : a.embeddedFiles) b += name.size() + 100;
  for (const auto& t : plan.tensors)
    b += t.name.size() + (!t.compress ? 140 : plan.settings.method == Method::EntQuant ? 470 : 330);
  for (const auto& r : plan.settings.rules) b += r.pattern.size() + 30;
  return b;
}

}  // namespace

std::string_view methodName(Method m) { return kMethodNames[static_cast<std::size_t>(m)]; }
std::span<const std::string_view> methodNames() { return kMethodNames; }
std::optional<Method> parseMethod(std::string_view name) {
  for (std::size_t i = 0; i < kMethodNames.size(); ++i)
    if (kMethodNames[i] == name) return static_cast<Method>(i);
  return std::nullopt;
}

std::string_view allocationName(Allocation a) { return kAllocationNames[static_cast<std::size_t>(a)]; }
std::optional<Allocation> parseAllocation(std::string_view name) {
  for (std::size_t i = 0; i < kAllocationNames.size(); ++i)
    if (kAllocationNames[i] == name) return static_cast<Allocation>(i);
  return std::nullopt;
}

LayerRule LayerRule::parse(const std::string& text) {
  const auto eq = text.rfind('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size())
    throw Error(Errc::InvalidArgument, fmt::format("\"{}\": expected REGEX=BITS or REGEX=keep", text),
                Setting::LayerRule);
  LayerRule r;
  r.pattern = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  try {
    Regex check(r.pattern);
  } catch (const Error& e) {
    throw e.withContext(fmt::format("\"{}\"", text)).about(Setting::LayerRule);
  }
  if (value == "keep") return r;
  char* end = nullptr;
  const double bits = std::strtod(value.c_str(), &end);
  if (end != value.c_str() + value.size() || !(bits > 0 && bits <= 8))
    throw Error(Errc::InvalidArgument, fmt::format("\"{}\": bits must be a number in (0, 8] or \"keep\"", text),
                Setting::LayerRule);
  r.bits = bits;
  return r;
}

Allocation PlanSettings::effectiveAllocation() const {
  if (method != Method::EntQuant || givenScales || target.mode != quant::RateTarget::Mode::Bits)
    return Allocation::Uniform;
  return allocation;
}

std::optional<double> relMseAtBits(std::span<const quant::RatePoint> curve, double bits) {
  if (curve.empty()) return std::nullopt;
  std::vector<std::pair<double, double>> pts;  // (bits, log relMse), rising bits
  for (const auto& p : curve) pts.emplace_back(p.bits, std::log(std::max(p.relMse, 1e-30)));
  std::sort(pts.begin(), pts.end());
  if (bits <= pts.front().first) return std::exp(pts.front().second);
  if (bits >= pts.back().first) return std::exp(pts.back().second);
  const auto hi = std::lower_bound(pts.begin(), pts.end(), std::make_pair(bits, -HUGE_VAL));
  const auto lo = hi - 1;
  const double f = hi->first > lo->first ? (bits - lo->first) / (hi->first - lo->first) : 0;
  return std::exp(lo->second + f * (hi->second - lo->second));
}

const PlannedTensor* Plan::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

Plan planBits(const Analysis& a, const PlanSettings& s) {
  if (!(s.target.value > 0)) fail(Errc::InvalidArgument, "the rate target must be positive");
  if (s.givenScales)
    for (const auto& r : s.rules)
      if (r.bits)
        throw Error(Errc::InvalidArgument,
                    fmt::format("\"{}={}\": with given scales, rules can only keep tensors", r.pattern, *r.bits),
                    Setting::LayerRule);
  Plan plan;
  plan.settings = s;
  plan.input = a.input;
  std::vector<Regex> compiled;
  for (const auto& r : s.rules) compiled.emplace_back(r.pattern);
  const auto baseline = baselineOf(s.method);
  const Allocation allocation = s.effectiveAllocation();
  std::vector<AllocCurve> curves;
  for (const TensorAnalysis& ta : a.tensors) {
    PlannedTensor t;
    t.name = ta.name;
    t.numel = ta.numel;
    plan.totalWeights += ta.numel;
    const RuleVerdict rule = ta.compressible ? ruleFor(ta.name, s.rules, compiled) : RuleVerdict{};
    t.ruled = rule.matched;
    t.compress = ta.compressible && (!rule.matched || rule.bits);
    if (t.compress && s.method == Method::EntQuant && !s.givenScales) {
      t.target = s.target;
      if (rule.matched) t.target = quant::RateTarget{quant::RateTarget::Mode::Bits, *rule.bits};
    }
    if (t.compress && !rule.matched && allocation != Allocation::Uniform) {
      if (!ta.analyzed())
        fail(Errc::InvalidArgument, "{}: tensor \"{}\" has no rate-distortion curve; the {} allocation needs one",
             a.input, ta.name, allocationName(allocation));
      double sensitivity = 1.0;
      if (allocation == Allocation::Depth) sensitivity = ta.depthSensitivity;
      if (allocation == Allocation::Measured) {
        if (!ta.measuredSensitivity)
          fail(Errc::InvalidArgument, "{}: tensor \"{}\" has no measured sensitivity; the measured allocation needs one",
               a.input, ta.name);
        sensitivity = *ta.measuredSensitivity;
      }
      t.sensitivity = sensitivity;
      curves.push_back({plan.tensors.size(), static_cast<double>(ta.numel), sensitivity, &ta.curve});
    }
    plan.tensors.push_back(std::move(t));
  }
  // holdTotal: the free tensors (those no rule decides) average what the rules leave of the whole budget.
  double freeTarget = s.target.value;
  if (s.holdTotal && s.method == Method::EntQuant && !s.givenScales &&
      s.target.mode == quant::RateTarget::Mode::Bits) {
    double ruledBits = 0, ruledWeights = 0, freeWeights = 0;
    for (const auto& t : plan.tensors) {
      if (!t.compress || !t.target) continue;
      if (t.ruled) ruledBits += t.target->value * static_cast<double>(t.numel), ruledWeights += static_cast<double>(t.numel);
      else freeWeights += static_cast<double>(t.numel);
    }
    if (freeWeights > 0) {
      freeTarget = std::clamp((s.target.value * (ruledWeights + freeWeights) - ruledBits) / freeWeights, 0.5, 8.0);
      for (auto& t : plan.tensors)
        if (t.compress && t.target && !t.ruled) t.target->value = freeTarget;
    }
  }
  if (!curves.empty()) {
    const bool balanced = s.balancedAllocation && allocation != Allocation::Measured;
    const auto bits = allocate(curves, freeTarget, balanced);
    for (std::size_t i = 0; i < curves.size(); ++i) plan.tensors[curves[i].tensor].target->value = bits[i];
  }
  // Predictions.
  std::uint64_t sections = 0, compressedBytes = 0;
  double errSum = 0;
  bool allErrors = true;
  for (std::size_t i = 0; i < plan.tensors.size(); ++i) {
    PlannedTensor& t = plan.tensors[i];
    const TensorAnalysis& ta = a.tensors[i];
    if (!t.compress) {
      t.predictedBytes = eqzSlotBytes(ta.bytes);
    } else if (baseline) {
      t.predictedBytes = eqzSlotBytes(quant::baselinePayloadBytes(*baseline, ta.rows, ta.cols));
      t.predictedBits = 8.0 * static_cast<double>(t.predictedBytes) / static_cast<double>(ta.numel);
    } else if (t.target && t.target->mode == quant::RateTarget::Mode::Bits) {
      t.predictedBits = t.target->value;
      t.predictedBytes = static_cast<std::uint64_t>(std::llround(t.target->value * static_cast<double>(ta.numel) / 8));
    } else {
      // a lambda target (or given scales): the bits follow from the weights; for the paper's lambda the curve
      // tells them, else the tensor is counted at 8 bits, an upper bound
      std::optional<double> b;
      if (t.target && s.objective == quant::Objective::Paper && ta.analyzed()) {
        std::vector<std::pair<double, double>> pts;  // (log lambda, bits)
        for (const auto& p : ta.curve) pts.emplace_back(std::log(p.lambda), p.bits);
        const double x = std::log(t.target->value);
        if (x <= pts.front().first) b = pts.front().second;
        else if (x >= pts.back().first) b = pts.back().second;
        else
          for (std::size_t k = 1; k < pts.size(); ++k)
            if (x <= pts[k].first) {
              const double f = (x - pts[k - 1].first) / (pts[k].first - pts[k - 1].first);
              b = pts[k - 1].second + f * (pts[k].second - pts[k - 1].second);
              break;
            }
      }
      t.predictedBits = b;
      t.predictedBytes = static_cast<std::uint64_t>(std::llround(b.value_or(8.0) * static_cast<double>(ta.numel) / 8));
    }
    if (t.compress) {
      plan.compressedWeights += ta.numel;
      compressedBytes += t.predictedBytes;
      if (t.predictedBits && ta.analyzed() && !baseline) t.predictedRelMse = relMseAtBits(ta.curve, *t.predictedBits);
      if (t.predictedRelMse) errSum += *t.predictedRelMse * static_cast<double>(ta.numel);
      else allErrors = false;
    }
    sections += t.predictedBytes;
  }
  for (const auto& [name, bytes] : a.embeddedFiles) sections += eqzSlotBytes(bytes);
  plan.predictedFileBytes = kEqzAlign + sections + indexEstimate(a, plan);
  if (plan.compressedWeights) {
    plan.predictedEffectiveBits = 8.0 * static_cast<double>(compressedBytes) / static_cast<double>(plan.compressedWeights);
    if (allErrors) plan.predictedRelMse = errSum / static_cast<double>(plan.compressedWeights);
  }
  return plan;
}

// ---- JSON ------------------------------------------------------------------------------------------------------------

nlohmann::ordered_json Plan::toJson() const {
  using J = nlohmann::ordered_json;
  J rules = J::array();
  for (const auto& r : settings.rules) rules.push_back({{"pattern", r.pattern}, {"bits", r.bits ? J(*r.bits) : J("keep")}});
  J list = J::array();
  for (const auto& t : tensors) {
    J j{{"name", t.name}, {"action", t.compress ? "compress" : "keep"}, {"numel", t.numel}};
    if (t.target)
      j["target"] = {{"mode", t.target->mode == quant::RateTarget::Mode::Bits ? "bits" : "lambda"},
                     {"value", t.target->value}};
    if (t.ruled) j["ruled"] = true;
    if (t.sensitivity > 0) j["sensitivity"] = t.sensitivity;
    j["predicted_bytes"] = t.predictedBytes;
    if (t.predictedBits) j["predicted_bits"] = *t.predictedBits;
    if (t.predictedRelMse) j["predicted_rel_mse"] = *t.predictedRelMse;
    list.push_back(std::move(j));
  }
  J j{{"format", "entquant-plan"},
      {"version", 1},
      {"input", input},
      {"settings",
       {{"method", std::string(methodName(settings.method))},
        {"code_format", std::string(quant::codeFormatName(settings.format))},
        {"objective", std::string(quant::objectiveName(settings.objective))},
        {"mode", settings.target.mode == quant::RateTarget::Mode::Bits ? "bits" : "lambda"},
        {"value", settings.target.value},
        {"allocation", std::string(allocationName(settings.allocation))},
        {"allocation_error", settings.balancedAllocation ? "balanced" : "matrix"},
        {"layer_bits", rules},
        {"hold_total", settings.holdTotal},
        {"given_scales", settings.givenScales},
        {"segment_symbols", settings.segmentSymbols}}},
      {"predicted",
       {{"file_bytes", predictedFileBytes},
        {"compressed_weights", compressedWeights},
        {"total_weights", totalWeights},
        {"effective_bpw", predictedEffectiveBits ? J(*predictedEffectiveBits) : J(nullptr)},
        {"rel_mse", predictedRelMse ? J(*predictedRelMse) : J(nullptr)}}},
      {"tensors", list}};
  return j;
}

Plan Plan::fromJson(const nlohmann::json& j, const std::string& label) {
  try {
    const JsonReader r(j, label);
    if (r.string("format") != "entquant-plan")
      fail(Errc::InvalidJson, "{}: not a plan (\"format\" is not \"entquant-plan\")", label);
    if (r.integer("version") != 1) fail(Errc::Unsupported, "{}: plan version {} is not 1", label, r.integer("version"));
    Plan p;
    p.input = r.string("input");
    const JsonReader sr(r.object("settings"), label + ": settings");
    auto bad = [&](const char* what, const std::string& v) {
      fail(Errc::InvalidJson, "{}: settings: unknown {} \"{}\"", label, what, v);
    };
    const auto method = parseMethod(sr.string("method"));
    if (!method) bad("method", sr.string("method"));
    const auto format = quant::parseCodeFormat(sr.string("code_format"));
    if (!format) bad("code format", sr.string("code_format"));
    const auto objective = quant::parseObjective(sr.string("objective"));
    if (!objective) bad("objective", sr.string("objective"));
    const auto allocation = parseAllocation(sr.string("allocation"));
    if (!allocation) bad("allocation", sr.string("allocation"));
    auto modeOf = [&](const JsonReader& rr) {
      const std::string m = rr.string("mode");
      if (m != "bits" && m != "lambda") fail(Errc::InvalidJson, "{}: \"mode\" must be bits or lambda", rr.label());
      return m == "bits" ? quant::RateTarget::Mode::Bits : quant::RateTarget::Mode::Lambda;
    };
    PlanSettings& s = p.settings;
    s.method = *method;
    s.format = *format;
    s.objective = *objective;
    s.allocation = *allocation;
    s.target = {modeOf(sr), sr.number("value")};
    s.balancedAllocation = sr.string("allocation_error") != "matrix";
    s.givenScales = sr.boolean("given_scales");
    s.holdTotal = sr.has("hold_total") && sr.boolean("hold_total");
    s.segmentSymbols = static_cast<std::uint32_t>(sr.unsignedInteger("segment_symbols"));
    for (const auto& rj : sr.array("layer_bits")) {
      const JsonReader rr(rj, label + ": layer_bits");
      LayerRule rule;
      rule.pattern = rr.string("pattern");
      Regex check(rule.pattern);
      if (!rj["bits"].is_string() || rj["bits"] != "keep") rule.bits = rr.number("bits");
      s.rules.push_back(std::move(rule));
    }
    const JsonReader pr(r.object("predicted"), label + ": predicted");
    p.predictedFileBytes = pr.unsignedInteger("file_bytes");
    p.compressedWeights = pr.unsignedInteger("compressed_weights");
    p.totalWeights = pr.unsignedInteger("total_weights");
    if (j["predicted"]["effective_bpw"].is_number()) p.predictedEffectiveBits = pr.number("effective_bpw");
    if (j["predicted"]["rel_mse"].is_number()) p.predictedRelMse = pr.number("rel_mse");
    for (const auto& tj : r.array("tensors")) {
      const JsonReader tr(tj, label + ": tensors");
      PlannedTensor t;
      t.name = tr.string("name");
      const std::string action = tr.string("action");
      if (action != "compress" && action != "keep")
        fail(Errc::InvalidJson, "{}: tensor \"{}\": \"action\" must be compress or keep", label, t.name);
      t.compress = action == "compress";
      t.numel = tr.unsignedInteger("numel");
      if (tr.has("target")) {
        const JsonReader gr(tr.object("target"), label + ": tensor \"" + t.name + "\": target");
        t.target = quant::RateTarget{modeOf(gr), gr.number("value")};
        if (!(t.target->value > 0) || (t.target->mode == quant::RateTarget::Mode::Bits && t.target->value > 8))
          fail(Errc::InvalidArgument, "{}: tensor \"{}\": the target {} is outside (0, 8] bits", label, t.name,
               t.target->value);
      }
      t.ruled = tr.has("ruled") && tr.boolean("ruled");
      if (tr.has("sensitivity")) t.sensitivity = tr.number("sensitivity");
      t.predictedBytes = tr.unsignedInteger("predicted_bytes");
      if (tr.has("predicted_bits")) t.predictedBits = tr.number("predicted_bits");
      if (tr.has("predicted_rel_mse")) t.predictedRelMse = tr.number("predicted_rel_mse");
      p.tensors.push_back(std::move(t));
    }
    return p;
  } catch (const Error& e) {
    throw e.about(Setting::Plan);
  }
}

}  // namespace eq
