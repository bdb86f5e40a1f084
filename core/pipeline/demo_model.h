// The bundled demo model (resources/demo-model): the default wherever a model is expected and none is given (the
// CLI now, the GUI's start screen later). Looked up next to the program first (installed: ../share/entquant/
// demo-model), then in the source tree the program was built from.
#pragma once

#include <filesystem>

namespace eq {

// The demo model's folder; throws Error(NotFound) naming the places searched when it is not there.
std::filesystem::path demoModelPath();
// The held-out text its card reports perplexity on (KJV books never seen in training).
std::filesystem::path demoTextPath();

}  // namespace eq
