// The grid of row scales EntQuant searches: s(k) = bf16(2^(k/16)), built as P[k mod 16] * 2^floor(k/16) with
// P[p] = bf16(2^(p/16)), so that s(k + 16) = 2 s(k) exactly. In the range where LLM row scales live (|log2 s| in
// [8, 16)) this is exactly the grid of bf16-rounded log2 scales of ENTQUANT.md section 1; it is coarser than that
// grid for |log2 s| < 8 and finer for |log2 s| >= 16.
#pragma once

#include "common/numerics.h"

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

// The scale of grid index k as a float (exactly a bf16 value). Valid for k in [-16 * 126, 16 * 126].
inline float scaleOfIndex(int k) {
  const int octave = floorDiv16(k);
  return std::ldexp(scalePhase(k - 16 * octave), octave);
}

inline std::uint16_t scaleBitsOfIndex(int k) { return f32ToBf16(scaleOfIndex(k)); }

}  // namespace eq::quant
