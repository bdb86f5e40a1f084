#include "pipeline/compress.h"

#include "codec/rans.h"
#include "common/error.h"
#include "common/mapped_file.h"
#include "common/numerics.h"
#include "common/regex.h"
#include "common/thread_pool.h"
#include "format/eqz.h"
#include "format/safetensors.h"
#include "model/arch.h"
#include "pipeline/sensitivity.h"
#include "quant/baseline.h"
#include "quant/error_feedback.h"
#include "text/tokenizer.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <numeric>

namespace eq {
namespace {

using Clock = std::chrono::steady_clock;

// An error while working on one tensor: a cancel becomes the job's "compression cancelled"; anything else gets the
// input's path and the tensor's name.
[[noreturn]] void rethrowForTensor(const Error& e, const ModelSource& source, const std::string& tensor) {
  if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
  throw e.withContext(fmt::format("{}: tensor \"{}\"", source.input().string(), tensor));
}

// The same for an optional step of the job (calibration, measured sensitivities): marked with its setting.
[[noreturn]] void rethrowFor(const Error& e, Setting setting) {
  if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
  throw e.about(setting);
}

std::string isoNow() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

// Calibration applies to EntQuant with a search.
CalibrationSource effectiveCalibration(const PlanSettings& s, const CompressOptions& o) {
  return s.method == Method::EntQuant && !s.givenScales ? o.calibration : CalibrationSource::None;
}

// Calibration on the user's text: the file cut into calibration texts with the model's own tokenizer.
std::vector<std::vector<std::int32_t>> textCalibration(const ModelSource& source, const CompressOptions& o) {
  const std::string file = o.calibrationFile.string();
  std::optional<MappedFile> f;
  try {
    f.emplace(o.calibrationFile);
  } catch (const Error& e) {
    throw e.about(Setting::TextCalibration);
  }
  const std::filesystem::path tokenizer = source.root() / "tokenizer.json";
  if (!std::filesystem::exists(tokenizer))
    throw Error(Errc::NotFound,
                fmt::format("{}: no tokenizer.json; calibrating on a text needs the model's tokenizer",
                            source.input().string()),
                Setting::TextCalibration);
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

// The settings member of the file's index.
nlohmann::json settingsJson(const PlanSettings& s, const CompressOptions& o, const std::string& calibrationInputs) {
  nlohmann::json rules = nlohmann::json::array();
  for (const auto& r : s.rules)
    rules.push_back({{"pattern", r.pattern}, {"bits", r.bits ? nlohmann::json(*r.bits) : nlohmann::json("keep")}});
  const CalibrationSource calibration = effectiveCalibration(s, o);
  nlohmann::json j{{"method", std::string(methodName(s.method))},
                   {"code_format", std::string(quant::codeFormatName(s.format))},
                   {"mode", s.target.mode == quant::RateTarget::Mode::Bits ? "bits" : "lambda"},
                   {"allocation", std::string(allocationName(s.allocation))},
                   {"objective", s.givenScales ? "given-scales" : std::string(quant::objectiveName(s.objective))},
                   {"calibration", std::string(calibrationName(calibration))},
                   {"value", s.target.value},
                   {"layer_bits", rules},
                   {"segment_symbols", s.segmentSymbols}};
  if (s.holdTotal) j["hold_total"] = true;
  if (!calibrationInputs.empty()) j["calibration_inputs"] = calibrationInputs;
  if (calibration == CalibrationSource::Text) j["calibration_file"] = o.calibrationFile.string();
  if (calibration == CalibrationSource::Self) j["calibration_seed"] = o.calibrationOptions.seed;
  if (s.allocation == Allocation::Global || s.allocation == Allocation::Depth)
    j["allocation_error"] = s.balancedAllocation ? "balanced" : "matrix";
  return j;
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

// Reads and checks the given log2 scales of every tensor the plan compresses, before any work.
std::map<std::string, std::vector<float>> loadGivenScales(const ModelSource& source, const Plan& plan,
                                                          const std::filesystem::path& scalesFile) {
  const auto file = SafetensorsFile::open(scalesFile);
  const std::string path = scalesFile.string();
  std::map<std::string, std::vector<float>> out;
  for (std::size_t i = 0; i < plan.tensors.size(); ++i) {
    if (!plan.tensors[i].compress) continue;
    const ModelTensor& t = source.tensors()[i];
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

// The state of one compression: its thread pool, the calibration (which writes its texts before anything else and
// then follows the compressor block by block) and the measured allocation's probe.
class CompressJob {
 public:
  CompressJob(const ModelSource& source, const CompressOptions& o, const PlanSettings& settings)
      : start_(Clock::now()), source_(source), o_(o), s_(settings), pool_(o.threads), calibration_(effectiveCalibration(settings, o)) {
    if (!(s_.target.value > 0)) fail(Errc::InvalidArgument, "the rate target must be positive");
    if (calibration_ != CalibrationSource::None) startCalibration();
  }

  ThreadPool& pool() { return pool_; }

  // The measured allocation's sensitivities are measured on the first of the calibration's texts, or on as many
  // written for it alone.
  SensitivityProbe& probe() {
    try {
      std::vector<std::vector<std::int32_t>> texts;
      if (cal_) {
        const auto& all = cal_->texts();
        texts.assign(all.begin(), all.begin() + std::min<std::ptrdiff_t>(kSensitivityTexts, std::ssize(all)));
      } else {
        CalibrationOptions co = o_.calibrationOptions;
        co.sequences = std::min(co.sequences, kSensitivityTexts);
        co.keepGoing = o_.keepGoing;
        co.progress = o_.progress;
        texts = writeSelfTexts(source_, pool_, co);
      }
      probe_ = std::make_unique<SensitivityProbe>(source_, pool_, std::move(texts), o_.keepGoing,
                                                  o_.calibrationOptions.maxBytes);
    } catch (const Error& e) {
      rethrowFor(e, Setting::MeasuredAllocation);
    }
    return *probe_;
  }

  CompressSummary execute(const Plan& plan, const std::filesystem::path& output);

 private:
  void startCalibration() {
    CalibrationOptions co = o_.calibrationOptions;
    if (calibration_ == CalibrationSource::Text) co.texts = textCalibration(source_, o_);
    co.keepGoing = o_.keepGoing;
    co.progress = [this](const Progress& p) {
      if (p.pass.block < 0 || !current_) {
        if (o_.progress) o_.progress(p);
        return;
      }
      // a block's passes, while the tensor that needs them waits
      current_->report(currentDone_, currentBytes_, currentName_, false, p.pass);
    };
    try {
      cal_ = std::make_unique<SelfCalibration>(source_, pool_, co);
    } catch (const Error& e) {
      rethrowFor(e, calibrationSetting());
    }
  }

  Setting calibrationSetting() const {
    return calibration_ == CalibrationSource::Text ? Setting::TextCalibration : Setting::SelfCalibration;
  }

  // The statistics of a block's weight, gathered as the texts move through the blocks (pipeline/calibrate.h).
  std::shared_ptr<const quant::InputGram> gramOf(const std::string& name) {
    if (!cal_) return nullptr;
    try {
      return cal_->gram(name);
    } catch (const Error& e) {
      rethrowFor(e, calibrationSetting());
    }
  }

  // One tensor of the plan: its sections appended, its report filled in. Returns its index entry.
  nlohmann::json compressTensor(const ModelTensor& mt, const PlannedTensor& planned, EqzWriter& writer,
                                TensorReport& tr);
  nlohmann::json entquantTensor(const ModelTensor& mt, const PlannedTensor& planned, EqzWriter& writer,
                                TensorReport& tr);
  nlohmann::json baselineTensor(const ModelTensor& mt, quant::BaselineMethod method, EqzWriter& writer,
                                TensorReport& tr);

  Clock::time_point start_;
  const ModelSource& source_;
  const CompressOptions& o_;
  PlanSettings s_;
  ThreadPool pool_;
  CalibrationSource calibration_;
  std::unique_ptr<SelfCalibration> cal_;
  std::unique_ptr<SensitivityProbe> probe_;
  std::map<std::string, std::vector<float>> givenScales_;
  std::shared_ptr<const quant::InputGram> factoredGram_;  // the input statistics `factored_` belongs to
  std::optional<quant::ErrorFeedback> factored_;
  // The tensor being compressed, for the calibration's pass progress.
  PhaseProgress* current_ = nullptr;
  std::uint64_t currentDone_ = 0, currentBytes_ = 0;
  std::string currentName_;
};

nlohmann::json CompressJob::entquantTensor(const ModelTensor& mt, const PlannedTensor& planned, EqzWriter& writer,
                                           TensorReport& tr) {
  const TensorInfo& info = *mt.info;
  quant::MatrixView m = quant::MatrixView::of(source_.data(mt), info.dtype, info.shape);
  quant::QuantizeOptions qo;
  qo.format = s_.format;
  if (planned.target) qo.target = *planned.target;
  qo.objective = s_.objective;
  if (s_.givenScales) qo.log2Scales = givenScales_.at(info.name);
  std::vector<float> shifted;  // calibration with shift inputs: the weights that make up for the inputs' shift
  if (auto g = gramOf(info.name)) {
    // (all zero where nothing before the layer has changed yet: block 0's q, k and v)
    if (std::any_of(g->shift.begin(), g->shift.end(), [](double v) { return v != 0.0; })) {
      shifted.resize(static_cast<std::size_t>(m.numel()));
      for (std::int64_t r = 0; r < m.rows; ++r) m.row(r, shifted.data() + r * m.cols);
      quant::compensateInputShift(*g, shifted.data(), m.rows, 0.01, &pool_);
      m = quant::MatrixView::of(std::as_bytes(std::span(shifted)), DType::F32, {m.rows, m.cols});
    }
    if (g != factoredGram_) {  // q, k and v (gate and up) share theirs: factor once
      factored_.reset();
      factoredGram_.reset();
      factored_ = quant::ErrorFeedback::factor(*g, 0.01, &pool_);
      factoredGram_ = std::move(g);
    }
    qo.errorFeedback = &*factored_;
  }
  qo.segmentSymbols = s_.segmentSymbols;
  qo.keepGoing = o_.keepGoing;
  const quant::QuantizedTensor q = quant::quantizeTensor(m, qo, pool_);
  tr.encoding = Encoding::EntQuant;
  const EqzSection stream = writer.addSection(q.stream);
  const EqzSection scales = writer.addSection(std::as_bytes(std::span(q.scales)));
  if (planned.target && planned.target->mode == quant::RateTarget::Mode::Bits && !s_.givenScales)
    tr.targetBits = planned.target->value;
  tr.lambda = q.lambda;
  tr.entropyBits = q.entropyBits;
  tr.distinctSymbols = q.distinctSymbols;
  tr.relL1 = q.relL1;
  tr.relL2 = q.relL2;
  tr.targetClamped = q.targetClamped;
  tr.sensitivity = planned.sensitivity;
  if (cal_ && mt.cls.layer >= 0) cal_->replace(info.name, codesLinear(q, info.name, pool_));
  return {{"code_format", std::string(quant::codeFormatName(s_.format))},
          {"sections", {{"stream", stream.toJson()}, {"scales", scales.toJson()}}}};
}

nlohmann::json CompressJob::baselineTensor(const ModelTensor& mt, quant::BaselineMethod method, EqzWriter& writer,
                                           TensorReport& tr) {
  const auto m = quant::MatrixView::of(source_.data(mt), mt.info->dtype, mt.info->shape);
  std::vector<float> w(static_cast<std::size_t>(m.numel()));
  for (std::int64_t r = 0; r < m.rows; ++r) m.row(r, w.data() + r * m.cols);
  const auto b = quant::quantizeBaseline(method, w.data(), m.rows, m.cols);
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
  tr.encoding = *parseEncoding(quant::baselineMethodName(method));
  tr.relL1 = a1 > 0 ? e1 / a1 : 0;
  tr.relL2 = a2 > 0 ? std::sqrt(e2 / a2) : 0;
  return {{"sections", {{"payload", writer.addSection(quant::serializeBaseline(b)).toJson()}}},
          {"group_size", b.groupSize}};
}

nlohmann::json CompressJob::compressTensor(const ModelTensor& mt, const PlannedTensor& planned, EqzWriter& writer,
                                           TensorReport& tr) {
  const TensorInfo& info = *mt.info;
  nlohmann::json entry{{"name", info.name}, {"shape", info.shape}, {"dtype", std::string(dtypeName(info.dtype))}};
  nlohmann::json part;
  if (!planned.compress) {
    tr.encoding = Encoding::Raw;
    part = {{"sections", {{"data", writer.addSection(source_.data(mt)).toJson()}}}};
  } else if (s_.method == Method::EntQuant) {
    part = entquantTensor(mt, planned, writer, tr);
  } else {
    part = baselineTensor(mt, *quant::parseBaselineMethod(methodName(s_.method)), writer, tr);
  }
  if (part.contains("code_format")) entry["code_format"] = part["code_format"];
  entry["sections"] = part["sections"];
  if (part.contains("group_size")) entry["group_size"] = part["group_size"];
  entry["encoding"] = std::string(encodingName(tr.encoding));
  return entry;
}

CompressSummary CompressJob::execute(const Plan& plan, const std::filesystem::path& output) {
  const auto& tensors = source_.tensors();
  if (s_.givenScales) {
    try {
      givenScales_ = loadGivenScales(source_, plan, o_.scalesFile);
    } catch (const Error& e) {
      throw e.about(Setting::GivenScales);
    }
  }
  EqzWriter writer(output);
  CompressSummary sum;
  sum.input = source_.input().string();
  sum.output = output.string();
  sum.method = s_.method;
  sum.format = s_.format;
  sum.givenScales = s_.method == Method::EntQuant && s_.givenScales;
  if (s_.method == Method::EntQuant && !s_.givenScales) {
    sum.objective = s_.objective;
    sum.allocation = s_.effectiveAllocation();
  } else if (s_.method != Method::EntQuant) {
    sum.allocation = Allocation::Uniform;
  }
  sum.calibration = calibration_;
  if (cal_) {
    sum.calibrationTokens = cal_->tokens();
    sum.calibrationInputs = cal_->inputs();
  }
  sum.predictedBytes = plan.predictedFileBytes;
  for (const auto& f : source_.files()) sum.inputBytes += f.fileSize();
  std::uint64_t bytesTotal = 0, bytesDone = 0;
  for (const auto& t : tensors) bytesTotal += t.info->bytes();

  // Natural name order, which is block order; with calibration each block's weights in the order their inputs are
  // computed (q/k/v, o, gate/up, down), so that error feedback sees the compressed weights that feed each one.
  // The index and the report keep the natural order.
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  if (cal_)
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      const int la = tensors[a].cls.layer, lb = tensors[b].cls.layer;
      if (la != lb) return la < lb;
      return la >= 0 && calibrationStage(tensors[a].info->name) < calibrationStage(tensors[b].info->name);
    });
  PhaseProgress progress(o_.progress, Phase::Compress, Unit::Tensors, tensors.size(), bytesTotal);
  std::vector<nlohmann::json> entries(tensors.size());
  std::vector<TensorReport> reports(tensors.size());
  for (std::size_t k = 0; k < order.size(); ++k) {
    const std::size_t i = order[k];
    if (o_.keepGoing && !o_.keepGoing()) fail(Errc::Cancelled, "compression cancelled");
    const ModelTensor& mt = tensors[i];
    const TensorInfo& info = *mt.info;
    progress.report(k, bytesDone, info.name);
    current_ = &progress;
    currentDone_ = k;
    currentBytes_ = bytesDone;
    currentName_ = info.name;
    struct Forget {
      PhaseProgress*& current;
      ~Forget() { current = nullptr; }
    } forget{current_};
    const auto t0 = Clock::now();
    TensorReport tr;
    tr.name = info.name;
    tr.shape = info.shape;
    tr.dtype = info.dtype;
    tr.role = mt.cls.role;
    tr.numel = info.numel;
    nlohmann::json entry;
    try {
      entry = compressTensor(mt, plan.tensors[i], writer, tr);
    } catch (const Error& e) {
      rethrowForTensor(e, source_, info.name);
    }
    std::uint64_t stored = 0;
    for (const auto& [key, s] : entry["sections"].items()) stored += eqzSlotBytes(s["bytes"].get<std::uint64_t>());
    tr.storedBytes = stored;
    tr.effectiveBits = tr.numel ? 8.0 * static_cast<double>(stored) / static_cast<double>(tr.numel) : 0;
    tr.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (tr.encoding != Encoding::Raw) {
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
    source_.release(mt);
    bytesDone += info.bytes();
    progress.report(k + 1, bytesDone, info.name, true);
  }

  nlohmann::json tensorIndex = nlohmann::json::array();
  for (auto& e : entries) tensorIndex.push_back(std::move(e));
  sum.tensors = std::move(reports);
  if (cal_) sum.calibrationSeconds = cal_->seconds();
  const std::string calibrationInputs = cal_ ? std::string(calibrationInputsName(cal_->inputs())) : "";
  cal_.reset();
  if (probe_) {
    sum.sensitivityTokens = probe_->tokens();
    sum.sensitivitySeconds = probe_->seconds();
  }
  probe_.reset();

  nlohmann::json files = nlohmann::json::array();
  for (const auto& [name, bytes] : source_.otherFiles()) {
    if (name.ends_with(".safetensors.index.json") || bytes > o_.maxEmbeddedFileBytes) continue;
    const MappedFile f(source_.root() / name);
    files.push_back({{"name", name}, {"section", writer.addSection(f.bytes()).toJson()}});
  }
  if (o_.keepGoing && !o_.keepGoing()) fail(Errc::Cancelled, "compression cancelled");

  if (sum.compressedWeights) {
    sum.effectiveBpw = 8.0 * static_cast<double>(sum.compressedBytes) / static_cast<double>(sum.compressedWeights);
    sum.entropyBpw /= static_cast<double>(sum.compressedWeights);
  }
  nlohmann::json index{{"format", "entquant-eqz"},
                       {"version", fmt::format("{}.{}", kEqzMajor, kEqzMinor)},
                       {"tool", "entquant " ENTQUANT_VERSION},
                       {"created", isoNow()},
                       {"source", {{"input", sum.input}, {"kind", std::string(sourceKindName(source_.kind()))}}},
                       {"settings", settingsJson(s_, o_, calibrationInputs)},
                       {"config", source_.config() ? source_.config()->raw : nlohmann::json(nullptr)},
                       {"tensors", tensorIndex},
                       {"files", files}};
  sum.seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  index["summary"] = {{"effective_bpw", sum.effectiveBpw}, {"entropy_bpw", sum.entropyBpw},
                      {"compressed_weights", sum.compressedWeights}, {"total_weights", sum.totalWeights},
                      {"seconds", sum.seconds}};
  writer.finish(index);
  sum.outputBytes = writer.bytesWritten();
  sum.modelBpw = sum.totalWeights ? 8.0 * static_cast<double>(sum.outputBytes) / static_cast<double>(sum.totalWeights) : 0;
  return sum;
}

// The plan must be for this model: the same tensors in the same order, compressing only compressible ones.
void checkPlan(const ModelSource& source, const Plan& plan, const CompressOptions& o) {
  auto bad = [&](const std::string& what) {
    throw Error(Errc::InvalidArgument, fmt::format("the plan does not fit {}: {}", source.input().string(), what),
                Setting::Plan);
  };
  const auto& tensors = source.tensors();
  if (plan.tensors.size() != tensors.size())
    bad(fmt::format("it lists {} tensors, the model has {}", plan.tensors.size(), tensors.size()));
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const PlannedTensor& p = plan.tensors[i];
    const ModelTensor& t = tensors[i];
    if (p.name != t.info->name) bad(fmt::format("tensor {} is \"{}\" in the plan, \"{}\" in the model", i, p.name,
                                                t.info->name));
    if (p.numel != t.info->numel)
      bad(fmt::format("tensor \"{}\" has {} elements in the plan, {} in the model", p.name, p.numel, t.info->numel));
    if (p.compress && !t.cls.compressible) bad(fmt::format("tensor \"{}\" cannot be compressed", p.name));
    if (p.compress && plan.settings.method == Method::EntQuant && !plan.settings.givenScales && !p.target)
      bad(fmt::format("tensor \"{}\" is to be compressed without a target", p.name));
  }
  if (plan.settings.givenScales != !o.scalesFile.empty())
    bad(plan.settings.givenScales ? "it was made for given scales, and none are given"
                                  : "given scales need a plan made for them");
}

}  // namespace

std::string_view calibrationName(CalibrationSource c) {
  switch (c) {
    case CalibrationSource::Self: return "self";
    case CalibrationSource::Text: return "text";
    case CalibrationSource::None: break;
  }
  return "none";
}

PlanSettings CompressOptions::planSettings() const {
  PlanSettings s;
  s.method = method;
  s.format = format;
  s.objective = objective;
  s.target = target;
  s.allocation = allocation;
  s.balancedAllocation = balancedAllocation;
  s.holdTotal = holdTotal;
  s.rules = layerRules;
  s.givenScales = method == Method::EntQuant && !scalesFile.empty();
  s.segmentSymbols = segmentSymbols;
  return s;
}

CompressSummary compressModel(const ModelSource& source, const std::filesystem::path& output,
                              const CompressOptions& o) {
  const PlanSettings settings = o.planSettings();
  CompressJob job(source, o, settings);
  // The allocation's curves, for the tensors whose bits it moves (those no rule decides).
  const Allocation allocation = settings.effectiveAllocation();
  AnalyzeOptions ao;
  ao.format = settings.format;
  ao.objective = settings.objective;
  ao.segmentSymbols = settings.segmentSymbols;
  ao.maxEmbeddedFileBytes = o.maxEmbeddedFileBytes;
  ao.threads = o.threads;
  ao.progress = o.progress;
  ao.keepGoing = o.keepGoing;
  std::vector<Regex> rules;
  for (const auto& r : settings.rules) rules.emplace_back(r.pattern);
  ao.include = [&](const std::string& name) {
    return allocation != Allocation::Uniform &&
           std::none_of(rules.begin(), rules.end(), [&](const Regex& r) { return r.search(name); });
  };
  if (allocation == Allocation::Measured) {
    ao.probe = &job.probe();
    ao.probeTarget = settings.target;
  }
  Analysis analysis;
  try {
    analysis = analyzeModel(source, ao);
  } catch (const Error& e) {
    if (e.code() == Errc::Cancelled) fail(Errc::Cancelled, "compression cancelled");
    if (allocation == Allocation::Measured) throw e.about(Setting::MeasuredAllocation);
    throw;
  }
  return job.execute(planBits(analysis, settings), output);
}

CompressSummary compressModel(const ModelSource& source, const Plan& plan, const std::filesystem::path& output,
                              const CompressOptions& o) {
  checkPlan(source, plan, o);
  CompressJob job(source, o, plan.settings);
  return job.execute(plan, output);
}

nlohmann::ordered_json toJson(const CompressSummary& s) {
  const std::string objective = s.givenScales ? "given-scales" : s.objective ? std::string(quant::objectiveName(*s.objective)) : "";
  nlohmann::ordered_json j{{"input", s.input},
                           {"output", s.output},
                           {"method", std::string(methodName(s.method))},
                           {"code_format", std::string(quant::codeFormatName(s.format))},
                           {"objective", objective},
                           {"allocation", s.allocation ? std::string(allocationName(*s.allocation)) : "none"},
                           {"calibration", std::string(calibrationName(s.calibration))},
                           {"effective_bpw", s.effectiveBpw},
                           {"entropy_bpw", s.entropyBpw},
                           {"model_bpw", s.modelBpw},
                           {"compressed_weights", s.compressedWeights},
                           {"total_weights", s.totalWeights},
                           {"input_bytes", s.inputBytes},
                           {"output_bytes", s.outputBytes},
                           {"predicted_bytes", s.predictedBytes},
                           {"seconds", s.seconds}};
  if (s.calibration != CalibrationSource::None) {
    j["calibration_tokens"] = s.calibrationTokens;
    j["calibration_seconds"] = s.calibrationSeconds;
    j["calibration_inputs"] = s.calibrationInputs ? std::string(calibrationInputsName(*s.calibrationInputs)) : "";
  }
  if (s.allocation == Allocation::Measured) {
    j["sensitivity_tokens"] = s.sensitivityTokens;
    j["sensitivity_seconds"] = s.sensitivitySeconds;
  }
  nlohmann::ordered_json tensors = nlohmann::ordered_json::array();
  for (const auto& t : s.tensors) {
    nlohmann::ordered_json e{{"name", t.name}, {"shape", t.shape}, {"dtype", std::string(dtypeName(t.dtype))},
                             {"role", std::string(roleName(t.role))}, {"encoding", std::string(encodingName(t.encoding))},
                             {"stored_bytes", t.storedBytes}, {"effective_bpw", t.effectiveBits}};
    if (t.encoding != Encoding::Raw) {
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
