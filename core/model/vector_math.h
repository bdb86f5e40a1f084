// The engine's elementwise math on eight floats at a time (x86-64-v3 builds: AVX2 and FMA; scalar otherwise): exp
// for the softmax and the gated MLP's SiLU, and the sum of squares of RMSNorm. Inline, header-only, one definition
// for the attention and the blocks, so that the two agree on every value.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::model::vmath {

#ifdef __AVX2__
// exp(x), Cephes' single-precision method: x = n ln 2 + r with ln 2 in two parts, a degree-6 polynomial on
// |r| <= ln 2 / 2 and 2^n from the exponent bits; within 2 ulp of std::exp on [-87, 88]. Below -87 it is 0 (where
// std::exp is subnormal, too small for any sum it enters), above 88 it stays at exp(88); NaN stays NaN.
inline __m256 exp8(__m256 x) {
  const __m256 under = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  // max/min return their second operand when either is NaN: x second keeps a NaN.
  const __m256 c = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.0f), x));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), c);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}
#endif

// exp for one value, the same function as exp8 (tails of vectors use it, so that a value does not depend on its
// position).
inline float exp1(float x) {
#ifdef __AVX2__
  return _mm256_cvtss_f32(exp8(_mm256_set1_ps(x)));
#else
  return std::exp(x);
#endif
}

// g[i] = silu(g[i]) * u[i] = g / (1 + exp(-g)) * u for i < count.
inline void siluMul(float* g, const float* u, std::int64_t count) {
  std::int64_t i = 0;
#ifdef __AVX2__
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  for (; i + 8 <= count; i += 8) {
    const __m256 x = _mm256_loadu_ps(g + i);
    const __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_xor_ps(x, sign))));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
  }
#endif
  for (; i < count; ++i) g[i] = g[i] / (1.0f + exp1(-g[i])) * u[i];
}

// The sum of x[i]^2 for i < n in double: four lanes in two accumulators, then the lanes in a fixed order.
inline double sumSquares(const float* x, std::int64_t n) {
  std::int64_t i = 0;
  double ss = 0;
#ifdef __AVX2__
  __m256d a0 = _mm256_setzero_pd(), a1 = _mm256_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    const __m256d lo = _mm256_cvtps_pd(_mm_loadu_ps(x + i)), hi = _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4));
    a0 = _mm256_fmadd_pd(lo, lo, a0);
    a1 = _mm256_fmadd_pd(hi, hi, a1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(a0, a1));
  ss = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  return ss;
}

}  // namespace eq::model::vmath
