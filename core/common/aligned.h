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

// With Huge, blocks of at least kHugeFrom (a weight matrix) start on a 2 MiB boundary and ask the kernel for
// transparent huge pages (where it grants them only on request, Debian's default): decoding a token streams every
// weight once, and with 4 KiB pages each page of a matrix costs a TLB miss and a page walk. The engine asks for it
// for its 8-bit codes (Linear::codes): `entquant generate` of the 1.1B model at 3 bits decoded 15.5 tok/s against
// 12.5 without (median of four alternating runs, docs/BENCHMARKS.md). Not for bf16 matrices: on the test VM their
// load (a copy out of the mapped file into fresh huge pages) took 5-7 s instead of 1.4-2 s for 2.2 GB, most of it in
// the kernel zeroing pages, for 8 % more decode speed.
inline constexpr std::size_t kHugeFrom = std::size_t(4) << 20;
inline constexpr std::size_t kHugePage = std::size_t(2) << 20;
void adviseHugePages(void* base, std::size_t bytes) noexcept;  // common/aligned.cpp; a hint, failures ignored

template <class T, bool Huge = false>
struct LinePlacedAllocator {
  static_assert(alignof(T) <= kLineOffset, "the offset must keep T aligned");
  using value_type = T;
  template <class U>
  struct rebind {
    using other = LinePlacedAllocator<U, Huge>;
  };
  LinePlacedAllocator() = default;
  template <class U>
  LinePlacedAllocator(const LinePlacedAllocator<U, Huge>&) noexcept {}
  static constexpr std::size_t alignmentFor(std::size_t bytes) {
    return Huge && bytes >= kHugeFrom ? kHugePage : kCacheLine;
  }
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T) + kLineOffset;
    auto* base = static_cast<std::byte*>(::operator new(bytes, std::align_val_t{alignmentFor(bytes)}));
    if (Huge && bytes >= kHugeFrom) adviseHugePages(base, bytes);
    return reinterpret_cast<T*>(base + kLineOffset);
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T) + kLineOffset;
    ::operator delete(reinterpret_cast<std::byte*>(p) - kLineOffset, std::align_val_t{alignmentFor(bytes)});
  }
  template <class U>
  bool operator==(const LinePlacedAllocator<U, Huge>&) const noexcept {
    return true;
  }
};

template <class T, bool Huge = false>
using LinePlacedVector = std::vector<T, LinePlacedAllocator<T, Huge>>;

}  // namespace eq
