// Vectors whose storage starts on a cache line. The CPU engine's kernels walk a weight row in windows that start on
// cache lines, so how a row's products are grouped into sums depends on where the row lies within a line: with
// storage from plain new, that changed between runs (the heap's layout depends on which threads allocated first),
// and so did the last bits of every result — and through calibration, which codes a compressed file holds.
#pragma once

#include <cstddef>
#include <new>
#include <vector>

namespace eq {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kCacheLine}); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const noexcept {
    return true;
  }
};

template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace eq
