// Vectors whose storage lies at a fixed place relative to the cache lines: 16 bytes past a line boundary. The CPU
// engine's kernels walk a weight row in windows that start on cache lines, so how a row's products are grouped into
// sums depends on where the row lies within a line: with storage from plain new, that changed between runs (the
// heap's layout depends on which threads allocated first), and so did the last bits of every result and, through
// calibration, which codes a compressed file holds. Why 16 and not 0: large blocks from malloc start 16 bytes past
// a page, and bf16 rows exactly on cache lines decoded 15-20 % slower on the test machine (Zen 5; measured in
// bench_infer, the reason not found); FP8 codes run the same either way.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace eq {

inline constexpr std::size_t kCacheLine = 64;
inline constexpr std::size_t kLineOffset = 16;  // storage starts this far past a cache line

template <class T>
struct LinePlacedAllocator {
  static_assert(alignof(T) <= kLineOffset, "the offset must keep T aligned");
  using value_type = T;
  LinePlacedAllocator() = default;
  template <class U>
  LinePlacedAllocator(const LinePlacedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    auto* base = static_cast<std::byte*>(::operator new(n * sizeof(T) + kLineOffset, std::align_val_t{kCacheLine}));
    return reinterpret_cast<T*>(base + kLineOffset);
  }
  void deallocate(T* p, std::size_t) noexcept {
    ::operator delete(reinterpret_cast<std::byte*>(p) - kLineOffset, std::align_val_t{kCacheLine});
  }
  template <class U>
  bool operator==(const LinePlacedAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using LinePlacedVector = std::vector<T, LinePlacedAllocator<T>>;

}  // namespace eq
