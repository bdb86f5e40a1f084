// Compression of a plan on a worker (pipeline/compress.h), with the core's progress (tensor, bytes, ETA) and
// cancel; a failure or a cancel leaves no file. Also decompression of an .eqz file to a model folder.
#pragma once

#include "jobs/background_job.h"
#include "pipeline/compress.h"

#include <filesystem>
#include <memory>

namespace eq::ui {

class CompressJob : public BackgroundJob {
  Q_OBJECT

 public:
  using BackgroundJob::BackgroundJob;
  void compress(std::shared_ptr<const ModelSource> source, Plan plan, std::filesystem::path output,
                CompressOptions options);
  // Writes a HuggingFace folder (bf16 safetensors and the embedded files) from `eqz`.
  void decompress(std::shared_ptr<const EqzFile> eqz, std::filesystem::path folder, unsigned threads);
  const CompressSummary& summary() const { return summary_; }

 private:
  struct State : Run {
    std::optional<CompressSummary> summary;
  };
  void drain(Run& run) override;
  CompressSummary summary_;
};

}  // namespace eq::ui
