#include "jobs/layer_detail_job.h"

namespace eq::ui {

void LayerDetailJob::inspect(std::shared_ptr<const ModelSource> source, std::string tensor,
                             LayerDetailOptions options) {
  auto state = std::make_shared<State>();
  start(state, [source, tensor, options](Run& run) mutable {
    auto& s = static_cast<State&>(run);
    options.keepGoing = [&s] { return s.keepGoing(); };
    LayerDetail d = inspectLayer(*source, tensor, options);
    std::lock_guard lock(s.m);
    s.detail = std::move(d);
  });
}

void LayerDetailJob::drain(Run& run) {
  auto& s = static_cast<State&>(run);
  std::lock_guard lock(s.m);
  if (s.done && s.detail) result_ = std::move(*s.detail), s.detail.reset();
}

}  // namespace eq::ui
