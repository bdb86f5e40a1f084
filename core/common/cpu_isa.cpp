#include "common/cpu_isa.h"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#ifdef EQ_X86_KERNELS
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace eq {
namespace {

#ifdef EQ_X86_KERNELS
// AMX's tile data is a 8 KB part of the thread state that Linux (5.16 and later) hands out per process on request:
// without it the first tile instruction faults. Asked once; false where the kernel refuses or predates it.
bool amxGranted() {
  static const bool granted = [] {
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return granted;
}
#endif

KernelIsa bestIsa() {
  return kernelIsaSupported(KernelIsa::Amx)      ? KernelIsa::Amx
         : kernelIsaSupported(KernelIsa::Avx512) ? KernelIsa::Avx512
         : kernelIsaSupported(KernelIsa::Avx512Bw) ? KernelIsa::Avx512Bw
         : kernelIsaSupported(KernelIsa::Avx2)     ? KernelIsa::Avx2
                                                   : KernelIsa::Generic;
}

KernelIsa initialIsa() {
  const KernelIsa best = bestIsa();
  const char* env = std::getenv("ENTQUANT_ISA");
  if (!env || !*env) return best;
  for (const KernelIsa isa : {KernelIsa::Generic, KernelIsa::Avx2, KernelIsa::Avx512Bw, KernelIsa::Avx512, KernelIsa::Amx}) {
    if (kernelIsaName(isa) != env) continue;
    if (kernelIsaSupported(isa)) return isa;
    fmt::print(stderr, "ENTQUANT_ISA={}: this CPU or build lacks it; using {}\n", env, kernelIsaName(best));
    return best;
  }
  fmt::print(stderr, "ENTQUANT_ISA={} is not generic, avx2, avx512bw, avx512 or amx; using {}\n", env, kernelIsaName(best));
  return best;
}

std::atomic<int>& currentIsa() {
  static std::atomic<int> isa{static_cast<int>(initialIsa())};
  return isa;
}

}  // namespace

bool kernelIsaSupported(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Generic: return true;
#ifdef EQ_X86_KERNELS
    case KernelIsa::Avx2: return true;  // the build's baseline (x86-64-v3)
    case KernelIsa::Avx512:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi");
    case KernelIsa::Avx512Bw:
      __builtin_cpu_init();
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
    case KernelIsa::Amx:
      return kernelIsaSupported(KernelIsa::Avx512) && __builtin_cpu_supports("avx512bf16") &&
             __builtin_cpu_supports("amx-tile") && __builtin_cpu_supports("amx-bf16") && amxGranted();
#endif
    default: return false;
  }
}

KernelIsa kernelIsa() { return static_cast<KernelIsa>(currentIsa().load(std::memory_order_relaxed)); }

bool setKernelIsa(KernelIsa isa) {
  if (!kernelIsaSupported(isa)) return false;
  currentIsa().store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

std::string_view kernelIsaName(KernelIsa isa) {
  switch (isa) {
    case KernelIsa::Generic: return "generic";
    case KernelIsa::Avx2: return "avx2";
    case KernelIsa::Avx512: return "avx512";
    case KernelIsa::Avx512Bw: return "avx512bw";
    case KernelIsa::Amx: return "amx";
  }
  return "?";
}

}  // namespace eq
