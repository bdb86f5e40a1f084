// The GEMV (one token: the decode step) and the blocked GEMM (many tokens: prefill) of the AVX2 and AVX-512 kernel
// sets, written once against a small vector interface `Isa` that each kernel unit defines before including this
// file. Everything here has internal linkage: each unit gets its own copy, compiled with that unit's -m flags.
//
// An Isa provides:
//   V, kLanes                    the float vector and its width; a window (linear_kernels.h) is 4 vectors
//   zero(), load(p), store(p, v), add(a, b), fma(a, b, c) = a * b + c, broadcast(f), sum(v)
//   kRowTile, kTokenVecs          the GEMM's register tile: kRowTile weight rows x kTokenVecs vectors of tokens
//   kAlignedWindows               start windows at cache-line boundaries (worth it where partial loads are cheap)
//   Decoder<WeightType>           one window of stored weights to 4 float vectors:
//     Elem                        the stored element type
//     order                       slot order of the floats (Layout::order), or nullptr for element order
//     factor                      the decoded floats are this many times too small (folded into the row scale)
//     full(p, out)                the whole window at p
//     partial(p, from, to, out)   elements [from, to) of the window at p, zeros elsewhere; the rest of the window
//                                 may lie outside the matrix and must not be read
#pragma once

#include "model/linear_kernels.h"

#include <cstdint>
#include <cstring>

namespace eq::model::kernels {
namespace {  // one copy per including unit, on purpose (see above)

inline std::int64_t smaller(std::int64_t a, std::int64_t b) { return a < b ? a : b; }
inline std::int64_t roundUp(std::int64_t a, std::int64_t m) { return (a + m - 1) / m * m; }

template <class Isa>
constexpr std::int64_t kWindow = 4 * Isa::kLanes;

// The GEMM decodes this many slots of its rows at a time into an L1/L2-resident f32 block; the activations of
// those slots (kBlockSlots x tokens) are reused by every row of the task.
constexpr std::int64_t kBlockSlots = 256;
// Rows per GEMM task: enough to reuse each activation block many times, few enough for small matrices to split.
constexpr std::int64_t kGemmRowsPerTask = 48;
// The weight stream is prefetched this far ahead of the window being decoded: the hardware prefetchers alone left
// the FP8 GEMV about 25 % below what it reaches with it on the 2-core test VM (Zen 5); 1 KB ahead gave less.
constexpr std::uintptr_t kPrefetchBytes = 4096;

template <class Isa, WeightType T>
Layout layoutFor(const Weights& w) {
  using Dec = typename Isa::template Decoder<T>;
  constexpr std::int64_t elem = sizeof(typename Dec::Elem);
  Layout l;
  l.window = kWindow<Isa>;
  l.order = Dec::order;
  // When every row starts at the same offset inside a cache line, start each row's windows at that line: no load
  // then straddles two lines, which streams from memory markedly faster (20-35 % for a plain read on the test VM).
  if (Isa::kAlignedWindows && (w.cols * elem) % 64 == 0)
    l.lead = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(w.data) % 64) / elem;
  l.windows = (l.lead + w.cols + l.window - 1) / l.window;
  return l;
}

template <class Isa>
Layout layout(const Weights& w) {
  switch (w.type) {
    case WeightType::F32: return layoutFor<Isa, WeightType::F32>(w);
    case WeightType::BF16: return layoutFor<Isa, WeightType::BF16>(w);
    case WeightType::Fp8: return layoutFor<Isa, WeightType::Fp8>(w);
    case WeightType::Int8: return layoutFor<Isa, WeightType::Int8>(w);
  }
  return {};
}

template <class Dec>
float rowFactor(const Weights& w, std::int64_t r) {
  return (w.scales ? w.scales[r] : 1.0f) * Dec::factor;
}

// Calls f(k, v) with the decoded floats v[4] of windows [k0, k1) of row r. Only the first and the last window of
// a row can be partial; they are peeled off so that the loop over the others has no branch but its own.
template <class Isa, class Dec, class F>
inline void forWindows(const Dec& dec, const Weights& w, const Layout& l, std::int64_t r, std::int64_t k0,
                       std::int64_t k1, F&& f) {
  using Elem = typename Dec::Elem;
  constexpr std::int64_t win = kWindow<Isa>;
  // The row's first window begins `lead` elements before the row: integer arithmetic, as that address may lie
  // before the matrix (partial() reads nothing there).
  const auto origin = reinterpret_cast<std::uintptr_t>(static_cast<const Elem*>(w.data) + r * w.cols) -
                      static_cast<std::uintptr_t>(l.lead) * sizeof(Elem);
  const auto window = [&](std::int64_t k, int from, int to) {
    const std::uintptr_t a = origin + static_cast<std::uintptr_t>(k * win) * sizeof(Elem);
    __builtin_prefetch(reinterpret_cast<const void*>(a + kPrefetchBytes));  // may point past the matrix: harmless
    typename Isa::V v[4];
    if (from == 0 && to == win) dec.full(reinterpret_cast<const Elem*>(a), v);
    else dec.partial(reinterpret_cast<const Elem*>(a), from, to, v);
    f(k, v);
  };
  const std::int64_t last = l.windows - 1;
  const int lastEnd = static_cast<int>(l.lead + w.cols - last * win);  // elements of the last window in the row
  std::int64_t k = k0, kEnd = k1;
  if (k0 == 0 && k1 > 0 && (l.lead != 0 || last == 0)) window(k++, static_cast<int>(l.lead), last == 0 ? lastEnd : win);
  const bool partialLast = k1 == l.windows && last > 0 && lastEnd != win;
  if (partialLast) kEnd = last;
  for (; k < kEnd; ++k) window(k, 0, win);
  if (partialLast && k <= last) window(last, 0, lastEnd);
}

template <class Isa, WeightType T>
void gemv(const Weights& w, const Layout& l, std::int64_t r0, std::int64_t r1, const float* xs, float* y) {
  using Dec = typename Isa::template Decoder<T>;
  using V = typename Isa::V;
  const Dec dec;
  for (std::int64_t r = r0; r < r1; ++r) {
    // One row at a time: interleaving several rows (to share the loads of x) made the weight stream slower here.
    V a[4] = {Isa::zero(), Isa::zero(), Isa::zero(), Isa::zero()};
    forWindows<Isa>(dec, w, l, r, 0, l.windows, [&](std::int64_t k, const V* v) {
      const float* x = xs + k * kWindow<Isa>;
      for (int i = 0; i < 4; ++i) a[i] = Isa::fma(v[i], Isa::load(x + i * Isa::kLanes), a[i]);
    });
    const float dot = Isa::sum(Isa::add(Isa::add(a[0], a[1]), Isa::add(a[2], a[3])));
    y[r] = dot * rowFactor<Dec>(w, r) + (w.bias ? w.bias[r] : 0.0f);
  }
}

// The register tile: yt[kRowTile][NV vectors] += wd[kRowTile][slots] * xt[slots][NV vectors], one weight broadcast
// against NV token vectors per FMA group. wd rows are kBlockSlots apart, xt and yt rows nPad apart.
template <class Isa, int NV>
void tile(const float* wd, const float* xt, std::int64_t nPad, std::int64_t slots, float* yt) {
  using V = typename Isa::V;
  constexpr int kRows = Isa::kRowTile, kLanes = Isa::kLanes;
  V acc[kRows][NV];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = Isa::load(yt + r * nPad + v * kLanes);
  for (std::int64_t p = 0; p < slots; ++p) {
    V x[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) x[v] = Isa::load(xt + p * nPad + v * kLanes);
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      const V b = Isa::broadcast(wd[r * kBlockSlots + p]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = Isa::fma(b, x[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) Isa::store(yt + r * nPad + v * kLanes, acc[r][v]);
}

// tile<Isa, nv> for a run-time nv in [1, NV].
template <class Isa, int NV>
void tileUpTo(int nv, const float* wd, const float* xt, std::int64_t nPad, std::int64_t slots, float* yt) {
  if constexpr (NV > 1) {
    if (nv < NV) return tileUpTo<Isa, NV - 1>(nv, wd, xt, nPad, slots, yt);
  }
  tile<Isa, NV>(wd, xt, nPad, slots, yt);
}

template <class Isa>
std::int64_t gemmScratchFloats(const Layout&, std::int64_t nPad) {
  return roundUp(kGemmRowsPerTask, Isa::kRowTile) * (kBlockSlots + nPad);
}

// Rows [r0, r1) (at most kGemmRowsPerTask) for n tokens: each block of kBlockSlots slots of these rows is decoded
// once into wd, then multiplied with every token in register tiles, accumulating in yt (rows x tokens).
template <class Isa, WeightType T>
void gemm(const Weights& w, const Layout& l, std::int64_t r0, std::int64_t r1, const float* xt, std::int64_t n,
          std::int64_t nPad, float* y, float* scratch) {
  using Dec = typename Isa::template Decoder<T>;
  using V = typename Isa::V;
  constexpr std::int64_t win = kWindow<Isa>, kLanes = Isa::kLanes, kTileTokens = Isa::kTokenVecs * Isa::kLanes;
  const Dec dec;
  const std::int64_t rows = r1 - r0, rowsPad = roundUp(rows, Isa::kRowTile);
  float* wd = scratch;                        // rowsPad x kBlockSlots
  float* yt = scratch + rowsPad * kBlockSlots;  // rowsPad x nPad
  std::memset(yt, 0, static_cast<std::size_t>(rowsPad * nPad) * sizeof(float));
  // Rows that only fill up the last register tile multiply zeros and are never written out.
  std::memset(wd + rows * kBlockSlots, 0, static_cast<std::size_t>((rowsPad - rows) * kBlockSlots) * sizeof(float));
  for (std::int64_t k0 = 0; k0 < l.windows; k0 += kBlockSlots / win) {
    const std::int64_t k1 = smaller(l.windows, k0 + kBlockSlots / win), slots = (k1 - k0) * win;
    for (std::int64_t r = 0; r < rows; ++r) {
      float* d = wd + r * kBlockSlots;
      forWindows<Isa>(dec, w, l, r0 + r, k0, k1, [&](std::int64_t k, const V* v) {
        for (int i = 0; i < 4; ++i) Isa::store(d + (k - k0) * win + i * kLanes, v[i]);
      });
    }
    const float* xb = xt + k0 * win * nPad;
    for (std::int64_t rt = 0; rt < rowsPad; rt += Isa::kRowTile)
      for (std::int64_t t0 = 0; t0 < nPad; t0 += kTileTokens)
        tileUpTo<Isa, Isa::kTokenVecs>(static_cast<int>(smaller(kTileTokens, nPad - t0) / kLanes),
                                       wd + rt * kBlockSlots, xb + t0, nPad, slots, yt + rt * nPad + t0);
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    const float f = rowFactor<Dec>(w, r0 + r), b = w.bias ? w.bias[r0 + r] : 0.0f;
    for (std::int64_t t = 0; t < n; ++t) y[t * w.rows + r0 + r] = yt[r * nPad + t] * f + b;
  }
}

// Constant: the table is built at compile time, so that taking it runs no code of its unit.
template <class Isa>
constexpr KernelSet makeKernelSet(const char* name) {
  KernelSet k{};
  k.name = name;
  k.layout = layout<Isa>;
  k.gemvRowsPerTask = 32;
  k.gemmRowsPerTask = kGemmRowsPerTask;
  k.tokenPad = Isa::kLanes;
  k.gemv = [](const Weights& w, const Layout& l, std::int64_t r0, std::int64_t r1, const float* xs, float* y) {
    switch (w.type) {
      case WeightType::F32: return gemv<Isa, WeightType::F32>(w, l, r0, r1, xs, y);
      case WeightType::BF16: return gemv<Isa, WeightType::BF16>(w, l, r0, r1, xs, y);
      case WeightType::Fp8: return gemv<Isa, WeightType::Fp8>(w, l, r0, r1, xs, y);
      case WeightType::Int8: return gemv<Isa, WeightType::Int8>(w, l, r0, r1, xs, y);
    }
  };
  k.gemm = [](const Weights& w, const Layout& l, std::int64_t r0, std::int64_t r1, const float* xt, std::int64_t n,
              std::int64_t nPad, float* y, float* scratch) {
    switch (w.type) {
      case WeightType::F32: return gemm<Isa, WeightType::F32>(w, l, r0, r1, xt, n, nPad, y, scratch);
      case WeightType::BF16: return gemm<Isa, WeightType::BF16>(w, l, r0, r1, xt, n, nPad, y, scratch);
      case WeightType::Fp8: return gemm<Isa, WeightType::Fp8>(w, l, r0, r1, xt, n, nPad, y, scratch);
      case WeightType::Int8: return gemm<Isa, WeightType::Int8>(w, l, r0, r1, xt, n, nPad, y, scratch);
    }
  };
  k.gemmScratchFloats = gemmScratchFloats<Isa>;
  return k;
}

}  // namespace
}  // namespace eq::model::kernels
