#include "common/aligned.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace eq {

void adviseHugePages(void* base, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  ::madvise(base, bytes / kHugePage * kHugePage, MADV_HUGEPAGE);  // base is 2 MiB-aligned; the tail keeps 4 KiB pages
#else
  (void)base;
  (void)bytes;
#endif
}

}  // namespace eq
