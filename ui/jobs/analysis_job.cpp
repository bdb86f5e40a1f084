#include "jobs/analysis_job.h"

namespace eq::ui {

void AnalysisJob::analyze(std::shared_ptr<const ModelSource> source, AnalyzeOptions options) {
  qRegisterMetaType<std::vector<eq::TensorAnalysis>>();
  auto state = std::make_shared<State>();
  start(state, [source, options](Run& run) mutable {
    auto& s = static_cast<State&>(run);
    options.keepGoing = [&s] { return s.keepGoing(); };
    options.progress = [&s](const Progress& p) { s.report(p); };
    options.onTensor = [&s](const TensorAnalysis& t) {
      std::lock_guard lock(s.m);
      s.fresh.push_back(t);
    };
    Analysis a = analyzeModel(*source, options);
    std::lock_guard lock(s.m);
    s.analysis = std::move(a);
  });
}

void AnalysisJob::drain(Run& run) {
  auto& s = static_cast<State&>(run);
  std::vector<TensorAnalysis> fresh;
  {
    std::lock_guard lock(s.m);
    fresh.swap(s.fresh);
    if (s.done && s.analysis) result_ = std::move(*s.analysis), s.analysis.reset();
  }
  if (!fresh.empty()) emit tensorsAnalyzed(fresh);
}

}  // namespace eq::ui
