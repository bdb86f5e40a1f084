#include "jobs/quality_job.h"

#include "common/error.h"
#include "pipeline/model_session.h"

#include <fstream>
#include <sstream>

namespace eq::ui {

void QualityJob::run(const QualityRequest& r) {
  auto state = std::make_shared<State>();
  start(state, [r](Run& run) {
    auto& s = static_cast<State&>(run);
    std::ifstream in(r.textFile.toStdString(), std::ios::binary);
    if (!in) fail(Errc::NotFound, "{}: cannot be read", r.textFile.toStdString());
    std::ostringstream buf;
    buf << in.rdbuf();
    SessionOptions so;
    so.contextLength = r.ctx;
    so.threads = r.threads;
    so.keepGoing = [&s] { return s.keepGoing(); };
    so.progress = [&s](const Progress& p) { s.report(p); };
    const auto a = ModelSession::open(r.original.toStdString(), so);
    const auto b = ModelSession::open(r.compressed.toStdString(), so);
    PerplexityOptions o;
    o.ctx = r.ctx;
    o.maxWindows = r.maxWindows;
    o.keepGoing = so.keepGoing;
    o.progress = so.progress;
    CompareResult result = compareModels(a->engine(), b->engine(), a->tokenizer(), buf.str(), o);
    std::lock_guard lock(s.m);
    s.result = std::move(result);
  });
}

void QualityJob::drain(Run& run) {
  auto& s = static_cast<State&>(run);
  std::lock_guard lock(s.m);
  if (s.done && s.result) result_ = std::move(*s.result), s.result.reset();
}

}  // namespace eq::ui
