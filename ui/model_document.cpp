#include "model_document.h"

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"

#include <QFileInfo>

#include <fstream>
#include <sstream>

namespace eq::ui {

ModelDocument::ModelDocument(QObject* parent) : QObject(parent) {
  connect(&openJob_, &BackgroundJob::progressed, this, &ModelDocument::openProgress);
  connect(&openJob_, &BackgroundJob::succeeded, this, &ModelDocument::onOpened);
  connect(&openJob_, &BackgroundJob::failed, this, [this](const JobError& e) { emit openFailed(openingPath_, e); });
  connect(&openJob_, &BackgroundJob::cancelled, this, &ModelDocument::openCancelled);

  connect(&analysisJob_, &BackgroundJob::progressed, this, &ModelDocument::analysisProgress);
  connect(&analysisJob_, &AnalysisJob::tensorsAnalyzed, this, [this](const std::vector<TensorAnalysis>& fresh) {
    QStringList names;
    for (const auto& t : fresh) {
      const auto it = index_.find(t.name);
      if (it == index_.end()) continue;
      analysis_.tensors[it->second] = t;
      names << QString::fromStdString(t.name);
    }
    emit tensorsAnalyzed(names);
    replan();
  });
  connect(&analysisJob_, &BackgroundJob::succeeded, this, [this] {
    analysis_ = analysisJob_.take();
    analysisComplete_ = true;
    replan();
    emit analysisFinished();
  });
  connect(&analysisJob_, &BackgroundJob::failed, this, &ModelDocument::analysisFailed);
  connect(&analysisJob_, &BackgroundJob::cancelled, this, &ModelDocument::analysisCancelled);

  connect(&layerJob_, &BackgroundJob::succeeded, this, [this] { emit layerDetailReady(layerRequested_); });
  connect(&layerJob_, &BackgroundJob::failed, this,
          [this](const JobError& e) { emit layerDetailFailed(layerRequested_, e); });

  connect(&compressJob_, &BackgroundJob::progressed, this, &ModelDocument::compressProgress);
  connect(&compressJob_, &BackgroundJob::succeeded, this, [this] {
    if (decompressing_) {
      decompressing_ = false;
      emit decompressFinished(compressOutput_);
      return;
    }
    summary_ = compressJob_.summary();
    measured_.clear();
    for (const auto& t : summary_->tensors) measured_[t.name] = t;
    emit compressFinished(compressOutput_);
  });
  connect(&compressJob_, &BackgroundJob::failed, this, [this](const JobError& e) {
    decompressing_ = false;
    emit compressFailed(e);
  });
  connect(&compressJob_, &BackgroundJob::cancelled, this, [this] {
    decompressing_ = false;
    emit compressCancelled();
  });
}

std::shared_ptr<const ModelSource> ModelDocument::source() const {
  if (!hasModel() || !model_.session->checkpoint()) return nullptr;
  return std::shared_ptr<const ModelSource>(model_.session, model_.session->checkpoint());  // keeps the session alive
}

void ModelDocument::open(const QString& path) {
  openingPath_ = path;
  emit openStarted(path);
  openJob_.open(path.toStdString());
}

void ModelDocument::cancelOpen() { openJob_.cancel(); }

void ModelDocument::onOpened() {
  analysisJob_.cancel();
  layerJob_.cancel();
  model_ = openJob_.take();
  path_ = openingPath_;
  analysisComplete_ = false;
  analysis_ = {};
  index_.clear();
  measured_.clear();
  summary_.reset();
  settings_.rules.clear();  // rules belong to a model
  if (const auto src = source()) {
    AnalyzeOptions headers;  // every tensor with its shape and role; curves come from the worker
    headers.format = settings_.format;
    headers.objective = settings_.objective;
    headers.include = [](const std::string&) { return false; };
    analysis_ = analyzeModel(*src, headers);
  } else {
    for (const auto& r : model_.measured) measured_[r.name] = r;
    for (const auto& t : model_.report.tensors) {
      TensorAnalysis ta;
      ta.name = t.name;
      ta.shape = t.shape;
      ta.dtype = t.dtype;
      ta.role = t.cls.role;
      ta.layer = t.cls.layer;
      ta.compressible = t.encoding && *t.encoding != Encoding::Raw;
      ta.numel = t.numel;
      ta.bytes = t.bytes;
      if (ta.compressible && !ta.shape.empty()) {
        ta.cols = ta.shape.back();
        ta.rows = ta.cols ? static_cast<std::int64_t>(ta.numel / static_cast<std::uint64_t>(ta.cols)) : 0;
      }
      analysis_.tensors.push_back(std::move(ta));
    }
    analysis_.input = path_.toStdString();
  }
  for (std::size_t i = 0; i < analysis_.tensors.size(); ++i) index_[analysis_.tensors[i].name] = i;
  plan_.reset();
  emit modelOpened();
  if (source()) startAnalysis();
  replan();
}

void ModelDocument::startAnalysis() {
  analysisComplete_ = false;
  for (auto& t : analysis_.tensors) {
    t.curve.clear();
    t.stats.reset();
  }
  analysis_.format = settings_.format;
  analysis_.objective = settings_.objective;
  AnalyzeOptions o;
  o.format = settings_.format;
  o.objective = settings_.objective;
  o.segmentSymbols = settings_.segmentSymbols;
  o.threads = codeSettings_.threads;
  o.sampledNormalization = true;  // only the sampled rows are read: a large model's analysis in a minute
  analysisJob_.analyze(source(), o);
}

void ModelDocument::setSettings(const PlanSettings& s) {
  const bool curvesChange = s.format != settings_.format || s.objective != settings_.objective;
  settings_ = s;
  if (curvesChange && source()) startAnalysis();
  replan();
}

std::string ModelDocument::exactRule(const std::string& name) {
  std::string p = "^";
  for (const char c : name) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) p += '\\';
    p += c;
  }
  return p + "$";
}

void ModelDocument::setTensorBits(const QStringList& names, std::optional<double> bits) {
  for (const QString& n : names) {
    const std::string pattern = exactRule(n.toStdString());
    std::erase_if(settings_.rules, [&](const LayerRule& r) { return r.pattern == pattern; });
    settings_.rules.push_back({pattern, bits});
  }
  replan();
}

void ModelDocument::replan() {
  provisional_ = false;
  if (!hasModel() || isEqz()) {
    plan_.reset();
    emit planChanged();
    return;
  }
  PlanSettings s = settings_;
  if (!analysisComplete_ && s.effectiveAllocation() != Allocation::Uniform) {
    s.allocation = Allocation::Uniform;  // until every curve is in
    provisional_ = true;
  }
  try {
    plan_ = planBits(analysis_, s);
  } catch (const Error&) {
    plan_.reset();  // e.g. given scales with a bits rule: the controls show why
  }
  emit planChanged();
}

void ModelDocument::savePlan(const QString& file) const {
  if (!plan_ || provisional_) fail(Errc::InvalidArgument, "the plan is not complete yet: the analysis is still running");
  AtomicFile f(file.toStdString());
  const std::string text = plan_->toJson().dump(1) + "\n";
  f.write(std::as_bytes(std::span(text.data(), text.size())));
  f.commit();
}

void ModelDocument::loadPlan(const QString& file) {
  std::ifstream in(file.toStdString(), std::ios::binary);
  if (!in) fail(Errc::NotFound, "{}: cannot be read", file.toStdString());
  std::ostringstream buf;
  buf << in.rdbuf();
  const Plan p = Plan::fromJson(parseJson(buf.str(), file.toStdString() + ":"), file.toStdString());
  setSettings(p.settings);
}

QString ModelDocument::defaultOutput() const {
  QFileInfo info(path_);
  QString base = info.isDir() ? info.absoluteFilePath() : info.absolutePath() + "/" + info.completeBaseName();
  if (base.endsWith(".tar")) base.chop(4);
  const double bits = plan_ && plan_->predictedEffectiveBits ? *plan_->predictedEffectiveBits : settings_.target.value;
  return QStringLiteral("%1-%2b.eqz").arg(base).arg(bits, 0, 'f', 1);
}

void ModelDocument::compress(const QString& output) {
  if (!plan_ || provisional_ || !source()) return;
  CompressOptions o;
  o.calibration = codeSettings_.calibration;
  o.calibrationFile = codeSettings_.calibrationFile.toStdString();
  o.threads = codeSettings_.threads;
  compressOutput_ = output;
  decompressing_ = false;
  compressJob_.compress(source(), *plan_, output.toStdString(), o);
}

void ModelDocument::decompress(const QString& folder) {
  if (!isEqz()) return;
  compressOutput_ = folder;
  decompressing_ = true;
  compressJob_.decompress(std::shared_ptr<const EqzFile>(model_.session, model_.session->eqz()),
                          folder.toStdString(), codeSettings_.threads);
}

void ModelDocument::requestLayerDetail(const QString& tensor, qint64 row) {
  if (!source()) return;
  const std::string name = tensor.toStdString();
  const auto it = index_.find(name);
  if (it == index_.end() || !analysis_.tensors[it->second].compressible) return;
  LayerDetailOptions o;
  o.format = settings_.format;
  o.objective = settings_.objective;
  o.threads = codeSettings_.threads;
  o.row = row;
  if (plan_)
    if (const PlannedTensor* t = plan_->find(name); t && t->target) o.target = *t->target;
  layerRequested_ = tensor;
  layerJob_.inspect(source(), name, o);
}

}  // namespace eq::ui
