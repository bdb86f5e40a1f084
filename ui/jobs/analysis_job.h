// The analysis on a worker (pipeline/analyze.h): every compressible tensor's rate-distortion curve and statistics,
// handed to the GUI in batches as the tensors finish (tensorsAnalyzed), so the table fills while it runs.
#pragma once

#include "jobs/background_job.h"
#include "pipeline/analyze.h"

#include <memory>
#include <vector>

namespace eq::ui {

class AnalysisJob : public BackgroundJob {
  Q_OBJECT

 public:
  using BackgroundJob::BackgroundJob;
  // `source` stays alive with the run (the session owns it).
  void analyze(std::shared_ptr<const ModelSource> source, AnalyzeOptions options);
  // After succeeded(): the whole analysis (moved out).
  Analysis take() { return std::move(result_); }

 signals:
  void tensorsAnalyzed(const std::vector<eq::TensorAnalysis>& tensors);

 private:
  struct State : Run {
    std::vector<TensorAnalysis> fresh;
    std::optional<Analysis> analysis;
  };
  void drain(Run& run) override;
  Analysis result_;
};

}  // namespace eq::ui

Q_DECLARE_METATYPE(std::vector<eq::TensorAnalysis>)
