#include "pipeline/demo_model.h"

#include "common/error.h"

#include <system_error>
#include <vector>

namespace eq {
namespace fs = std::filesystem;

fs::path demoModelPath() {
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share/entquant/demo-model");
#ifdef ENTQUANT_SOURCE_DIR
  candidates.push_back(fs::path(ENTQUANT_SOURCE_DIR) / "resources/demo-model");
#endif
  std::string searched;
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c / "config.json", ec)) return c;
    searched += (searched.empty() ? "" : ", ") + c.string();
  }
  fail(Errc::NotFound, "the bundled demo model was not found (looked in {}); give a model folder instead", searched);
}

fs::path demoTextPath() { return demoModelPath() / "heldout.txt"; }

}  // namespace eq
