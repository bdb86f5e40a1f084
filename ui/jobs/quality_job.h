// The quality check on a worker: the original and the compressed model over the same windows of a text
// (pipeline/lm.h compareModels: perplexity of both, mean KL divergence, top-1 agreement, window by window), with
// progress and cancel. Both models are loaded for the run and freed after it.
#pragma once

#include "jobs/background_job.h"
#include "pipeline/lm.h"

namespace eq::ui {

struct QualityRequest {
  QString original, compressed, textFile;
  std::int64_t ctx = 512, maxWindows = 0;
  unsigned threads = 0;
};

class QualityJob : public BackgroundJob {
  Q_OBJECT

 public:
  using BackgroundJob::BackgroundJob;
  void run(const QualityRequest& request);
  const CompareResult& result() const { return result_; }

 private:
  struct State : Run {
    std::optional<CompareResult> result;
  };
  void drain(Run& run) override;
  CompareResult result_;
};

}  // namespace eq::ui
