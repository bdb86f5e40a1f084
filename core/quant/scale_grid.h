// The grid of row scales EntQuant searches: s(k) = bf16(2^(k/16)), built as P[k mod 16] * 2^floor(k/16) with
// P[p] = bf16(2^(p/16)), so that s(k + 16) = 2 s(k) exactly. In the range where LLM row scales live (|log2 s| in
// [8, 16)) this is exactly the grid of bf16-rounded log2 scales of ENTQUANT.md section 1; it is coarser than that
// grid for |log2 s| < 8 and finer for |log2 s| >= 16.
#pragma once

#include "common/numerics.h"

#include <bit>
#include <cmath>
#include <cstdint>

namespace eq::quant {

inline constexpr int kScalePhases = 16;

inline float scalePhase(int p) {
  static const float table[kScalePhases] = {
#define EQ_PHASE(i) bf16ToF32(f32ToBf16(static_cast<float>(std::exp2(static_cast<double>(i) / 16.0))))
      EQ_PHASE(0),  EQ_PHASE(1),  EQ_PHASE(2),  EQ_PHASE(3),  EQ_PHASE(4),  EQ_PHASE(5),  EQ_PHASE(6),  EQ_PHASE(7),
      EQ_PHASE(8),  EQ_PHASE(9),  EQ_PHASE(10), EQ_PHASE(11), EQ_PHASE(12), EQ_PHASE(13), EQ_PHASE(14), EQ_PHASE(15),
#undef EQ_PHASE
  };
  return table[p];
}

inline int floorDiv16(int k) { return k >= 0 ? k / 16 : -((-k + 15) / 16); }

// 2^e exactly: built from its bits where it is a normal number (what std::ldexp(1, e) gives, without a libm call:
// the grid's octaves and the row search's per-octave factors are normal numbers), else by std::ldexp.
inline float pow2f(int e) {
  return e >= -126 && e <= 127 ? std::bit_cast<float>(static_cast<std::uint32_t>(e + 127) << 23) : std::ldexp(1.0f, e);
}
inline double pow2d(int e) {
  return e >= -1022 && e <= 1023 ? std::bit_cast<double>(static_cast<std::uint64_t>(e + 1023) << 52)
                                 : std::ldexp(1.0, e);
}

// The scale of grid index k as a float (exactly a bf16 value). Valid for k in [-16 * 126, 16 * 126].
inline float scaleOfIndex(int k) {
  const int octave = floorDiv16(k);
  return scalePhase(k - 16 * octave) * pow2f(octave);
}

inline std::uint16_t scaleBitsOfIndex(int k) { return f32ToBf16(scaleOfIndex(k)); }

}  // namespace eq::quant
