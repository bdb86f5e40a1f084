// The Gram products' tiles with AVX-512 (error_feedback.cpp; this file alone is built with -mavx512f and entered
// only when kernelIsa() is one of the AVX-512 sets, after their run-time CPU check). Each output element is
// the same chain of fused multiply-adds over the rows, in the same order, as the AVX2 tiles': the results are bit
// for bit the same.
#include "quant/gram_tiles.h"

#if defined(EQ_X86_KERNELS)
#include <immintrin.h>

namespace eq::quant::detail {

void gramTilesAvx512(const float* xa, const float* xb, std::int64_t rows, std::int64_t cp, std::int64_t c,
                     std::int64_t i0, bool upper, double* out) {
  constexpr std::int64_t kRows = 4, kCols = 32;
  for (std::int64_t j0 = upper ? i0 / kCols * kCols : 0; j0 < c; j0 += kCols) {
    // 4 x 32 floats in eight registers: per row of the inputs two loads, four broadcasts, eight FMAs.
    __m512 a0l = _mm512_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l, a2l = a0l, a2h = a0l, a3l = a0l, a3h = a0l;
    for (std::int64_t t = 0; t < rows; ++t) {
      const float* at = xa + t * cp;
      const float* bt = xb + t * cp;
      const __m512 lo = _mm512_loadu_ps(bt + j0), hi = _mm512_loadu_ps(bt + j0 + 16);
      __m512 v = _mm512_set1_ps(at[i0]);
      a0l = _mm512_fmadd_ps(v, lo, a0l), a0h = _mm512_fmadd_ps(v, hi, a0h);
      v = _mm512_set1_ps(at[i0 + 1]);
      a1l = _mm512_fmadd_ps(v, lo, a1l), a1h = _mm512_fmadd_ps(v, hi, a1h);
      v = _mm512_set1_ps(at[i0 + 2]);
      a2l = _mm512_fmadd_ps(v, lo, a2l), a2h = _mm512_fmadd_ps(v, hi, a2h);
      v = _mm512_set1_ps(at[i0 + 3]);
      a3l = _mm512_fmadd_ps(v, lo, a3l), a3h = _mm512_fmadd_ps(v, hi, a3h);
    }
    alignas(64) float acc[kRows][kCols];
    _mm512_store_ps(acc[0], a0l), _mm512_store_ps(acc[0] + 16, a0h);
    _mm512_store_ps(acc[1], a1l), _mm512_store_ps(acc[1] + 16, a1h);
    _mm512_store_ps(acc[2], a2l), _mm512_store_ps(acc[2] + 16, a2h);
    _mm512_store_ps(acc[3], a3l), _mm512_store_ps(acc[3] + 16, a3h);
    addTile(&acc[0][0], kRows, kCols, c, i0, j0, upper, out);
  }
}

}  // namespace eq::quant::detail
#endif
