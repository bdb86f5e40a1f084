// The selected layer's histograms at its operating point (pipeline/layer_detail.h), on a worker; a newer request
// cancels the older one (last request wins), so clicking through the table never queues work.
#pragma once

#include "jobs/background_job.h"
#include "pipeline/layer_detail.h"

#include <memory>

namespace eq::ui {

class LayerDetailJob : public BackgroundJob {
  Q_OBJECT

 public:
  using BackgroundJob::BackgroundJob;
  void inspect(std::shared_ptr<const ModelSource> source, std::string tensor, LayerDetailOptions options);
  const LayerDetail& result() const { return result_; }

 private:
  struct State : Run {
    std::optional<LayerDetail> detail;
  };
  void drain(Run& run) override;
  LayerDetail result_;
};

}  // namespace eq::ui
