#include "jobs/open_job.h"

#include "common/error.h"
#include "pipeline/eqz_tools.h"

namespace eq::ui {

void OpenJob::open(const std::filesystem::path& path) {
  auto state = std::make_shared<State>();
  start(state, [path](Run& run) {
    auto& s = static_cast<State&>(run);
    SessionOptions so;
    so.keepGoing = [&s] { return s.keepGoing(); };
    so.progress = [&s](const Progress& p) { s.report(p); };
    OpenedModel m;
    m.session = ModelSession::open(path, so);
    m.report = m.session->inspect();
    m.hasTokenizer = m.session->hasTokenizer();
    try {
      m.hasChatTemplate = m.session->chatTemplate().has_value();
    } catch (const Error& e) {
      m.hasChatTemplate = true;
      m.chatTemplateError = QString::fromStdString(e.what());
    }
    if (const EqzFile* f = m.session->eqz()) m.measured = eqzTensorReports(*f);
    std::lock_guard lock(s.m);
    s.model = std::move(m);
  });
}

void OpenJob::drain(Run& run) {
  auto& s = static_cast<State&>(run);
  std::lock_guard lock(s.m);
  if (s.done && s.model.session) result_ = std::move(s.model);
}

}  // namespace eq::ui
