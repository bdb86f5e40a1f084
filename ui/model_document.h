// The open model and everything the app knows about it, on the GUI thread: the session and its report, the
// analysis as it arrives, the plan settings (target, rules, method, ...) and the plan made from them, the last
// compression's measured values, and the workers that open, analyze, inspect a layer and compress. Widgets and
// models read it and call it; it never blocks: each job runs on a worker, a new request cancels the one in flight,
// and planning (the allocation over cached curves) is fast enough to redo on every change.
#pragma once

#include "jobs/analysis_job.h"
#include "jobs/compress_job.h"
#include "jobs/layer_detail_job.h"
#include "jobs/open_job.h"

#include <QObject>
#include <QString>
#include <QStringList>

#include <map>
#include <optional>

namespace eq::ui {

// How the codes are chosen beside the plan (compress options that do not change the bits).
struct CodeSettings {
  CalibrationSource calibration = CalibrationSource::None;
  QString calibrationFile;  // CalibrationSource::Text
  unsigned threads = 0;
};

class ModelDocument : public QObject {
  Q_OBJECT

 public:
  explicit ModelDocument(QObject* parent = nullptr);

  // ---- The model ----
  // Opens `path` on a worker; the model open so far stays until it succeeds (a failure leaves it as it was).
  void open(const QString& path);
  void cancelOpen();
  bool opening() const { return openJob_.running(); }
  bool hasModel() const { return static_cast<bool>(model_.session); }
  bool isEqz() const { return hasModel() && model_.session->eqz(); }
  QString path() const { return path_; }
  const OpenedModel& model() const { return model_; }
  std::shared_ptr<const ModelSource> source() const;

  // ---- Analysis and plan ----
  // Every tensor of the model (headers, and curves and statistics as the analysis delivers them).
  const Analysis& analysis() const { return analysis_; }
  bool analyzing() const { return analysisJob_.running(); }
  void cancelAnalysis() { analysisJob_.cancel(); }
  bool analysisComplete() const { return analysisComplete_; }
  const PlanSettings& settings() const { return settings_; }
  // New settings: re-plans; a change of code format or objective (which change the curves) restarts the analysis.
  void setSettings(const PlanSettings& settings);
  // Sets (or, nullopt, keeps as they are) the bits of these tensors: one exact-name rule each, at the end of the
  // rules so that it wins. With settings().holdTotal the other tensors re-balance to hold the file size.
  void setTensorBits(const QStringList& names, std::optional<double> bits);
  // The rule "^name$" a tensor's own setting is written as.
  static std::string exactRule(const std::string& name);
  // The plan of the current settings. While the analysis runs it is uniform (the allocation needs every curve) and
  // provisional() is true.
  const std::optional<Plan>& plan() const { return plan_; }
  bool provisional() const { return provisional_; }
  // Plans saved as JSON (pipeline/plan.h; `entquant compress --plan` takes the same file).
  void savePlan(const QString& file) const;  // throws eq::Error
  void loadPlan(const QString& file);        // throws eq::Error; its settings become the current ones

  // ---- Compression ----
  CodeSettings& codeSettings() { return codeSettings_; }
  // A name for the output beside the model: "<model>-<bits>b.eqz".
  QString defaultOutput() const;
  void compress(const QString& output);
  void decompress(const QString& folder);
  void cancelCompress() { compressJob_.cancel(); }
  bool compressing() const { return compressJob_.running(); }
  // What the last compression of this model measured, by tensor (also an .eqz's own values).
  const std::map<std::string, TensorReport>& measured() const { return measured_; }
  const std::optional<CompressSummary>& lastSummary() const { return summary_; }

  // ---- The selected layer's histograms ----
  // Last request wins. `row`: the row whose code grid is drawn (-1: the sampled row with the largest |w|).
  void requestLayerDetail(const QString& tensor, qint64 row = -1);
  const LayerDetail& layerDetail() const { return layerJob_.result(); }

 signals:
  void openStarted(const QString& path);
  void openProgress(const eq::Progress& progress);
  void openFailed(const QString& path, const eq::ui::JobError& error);
  void openCancelled();
  void modelOpened();  // a new model replaced the old: everything is new
  void analysisProgress(const eq::Progress& progress);
  void tensorsAnalyzed(const QStringList& names);
  void analysisFinished();
  void analysisFailed(const eq::ui::JobError& error);
  void analysisCancelled();
  void planChanged();
  void compressProgress(const eq::Progress& progress);
  void compressFinished(const QString& output);
  void compressFailed(const eq::ui::JobError& error);
  void compressCancelled();
  void decompressFinished(const QString& folder);
  void layerDetailReady(const QString& tensor);
  void layerDetailFailed(const QString& tensor, const eq::ui::JobError& error);

 private:
  void onOpened();
  void startAnalysis();
  void replan();

  OpenJob openJob_;
  AnalysisJob analysisJob_;
  LayerDetailJob layerJob_;
  CompressJob compressJob_;
  QString path_, openingPath_, layerRequested_, compressOutput_;
  OpenedModel model_;
  Analysis analysis_;
  std::map<std::string, std::size_t> index_;  // tensor name -> position in analysis_.tensors
  bool analysisComplete_ = false;
  PlanSettings settings_;
  std::optional<Plan> plan_;
  bool provisional_ = false;
  CodeSettings codeSettings_;
  std::map<std::string, TensorReport> measured_;
  std::optional<CompressSummary> summary_;
  bool decompressing_ = false;
};

}  // namespace eq::ui
