// Opening a model on a worker: the session (an archive is unpacked here, with progress and cancel), its header-only
// report, whether it has a tokenizer and a chat template, and for an .eqz file the values compress measured.
#pragma once

#include "jobs/background_job.h"
#include "pipeline/compress.h"
#include "pipeline/model_session.h"

#include <filesystem>
#include <memory>
#include <vector>

namespace eq::ui {

struct OpenedModel {
  std::shared_ptr<ModelSession> session;
  InspectReport report;
  bool hasTokenizer = false;
  bool hasChatTemplate = false;
  QString chatTemplateError;  // a template that is there but does not parse
  std::vector<TensorReport> measured;  // .eqz: from its index
};

class OpenJob : public BackgroundJob {
  Q_OBJECT

 public:
  using BackgroundJob::BackgroundJob;
  void open(const std::filesystem::path& path);
  // After succeeded(): the model (moved out).
  OpenedModel take() { return std::move(result_); }

 private:
  struct State : Run {
    OpenedModel model;
  };
  void drain(Run& run) override;
  OpenedModel result_;
};

}  // namespace eq::ui
