#include "chat/compute_priority.h"

#if defined(__linux__)
#include <sys/resource.h>
#endif

namespace eq::ui {

namespace {
constexpr int kNiceStep = 3;  // CFS weight 1024 -> 526: the GUI thread gets a core at once when it wakes
}

void lowerComputePriority() {
#if defined(__linux__)
  // On Linux the nice value belongs to the thread: PRIO_PROCESS with 0 means the calling thread.
  const int now = getpriority(PRIO_PROCESS, 0);
  setpriority(PRIO_PROCESS, 0, now + kNiceStep);
#endif
}

}  // namespace eq::ui
