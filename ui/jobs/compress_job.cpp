#include "jobs/compress_job.h"

#include "common/thread_pool.h"
#include "pipeline/eqz_tools.h"

namespace eq::ui {

void CompressJob::compress(std::shared_ptr<const ModelSource> source, Plan plan, std::filesystem::path output,
                           CompressOptions options) {
  auto state = std::make_shared<State>();
  start(state, [source, plan = std::move(plan), output, options](Run& run) mutable {
    auto& s = static_cast<State&>(run);
    options.keepGoing = [&s] { return s.keepGoing(); };
    options.progress = [&s](const Progress& p) { s.report(p); };
    CompressSummary summary = compressModel(*source, plan, output, options);
    std::lock_guard lock(s.m);
    s.summary = std::move(summary);
  });
}

void CompressJob::decompress(std::shared_ptr<const EqzFile> eqz, std::filesystem::path folder, unsigned threads) {
  auto state = std::make_shared<State>();
  start(state, [eqz, folder, threads](Run& run) {
    auto& s = static_cast<State&>(run);
    ThreadPool pool(threads);
    decompressEqz(*eqz, folder, pool, [&s] { return s.keepGoing(); }, [&s](const Progress& p) { s.report(p); });
  });
}

void CompressJob::drain(Run& run) {
  auto& s = static_cast<State&>(run);
  std::lock_guard lock(s.m);
  if (s.done && s.summary) summary_ = std::move(*s.summary), s.summary.reset();
}

}  // namespace eq::ui
