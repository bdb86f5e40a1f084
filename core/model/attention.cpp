#include "model/attention.h"

#include "common/thread_pool.h"
#include "model/vector_math.h"

#include <algorithm>
#include <cmath>
#include <vector>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::model {
namespace {

// q . k over one head: eight lanes in two accumulators (a fixed order: the same sums on every run and thread), the
// rest scalar. A plain loop is one dependent add per element, which made attention most of a long prompt's time.
inline float headDot(const float* a, const float* b, std::int64_t n) {
  std::int64_t t = 0;
  float d = 0;
#ifdef __AVX2__
  if (n >= 16) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    for (; t + 16 <= n; t += 16) {
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t), _mm256_loadu_ps(b + t), s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + t + 8), _mm256_loadu_ps(b + t + 8), s1);
    }
    const __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    d = _mm_cvtss_f32(h);
  }
#endif
  for (; t < n; ++t) d += a[t] * b[t];
  return d;
}

#ifdef __AVX2__
// q . k for eight keys at once (k + u * stride, u < 8), hd a multiple of 8: one sum of eight lanes per key, reduced
// together by a tree of horizontal adds (the same order for every key, run and thread). Reducing each key alone made
// the reduction, not the multiplies, most of the time of a long prompt's scores.
inline void headDots8(const float* q, const float* k, std::int64_t stride, std::int64_t hd, float* out) {
  __m256 a[8];
  for (auto& x : a) x = _mm256_setzero_ps();
  for (std::int64_t t = 0; t < hd; t += 8) {
    const __m256 qv = _mm256_loadu_ps(q + t);
    for (int u = 0; u < 8; ++u) a[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k + u * stride + t), a[u]);
  }
  // hadd(x, y) = [x0+x1, x2+x3, y0+y1, y2+y3 | x4+x5, x6+x7, y4+y5, y6+y7]: after two levels the low 128 bits hold
  // the sums of lanes 0-3 of four keys and the high 128 bits those of lanes 4-7.
  const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31)));
}

#endif

// sc[j] = exp(sc[j] - mx) for j < count; returns their sum (eight lanes, then the lanes in a fixed order).
inline float softmaxExp(float* sc, std::int64_t count, float mx) {
  std::int64_t j = 0;
  float sum = 0;
#ifdef __AVX2__
  __m256 acc = _mm256_setzero_ps();
  const __m256 m = _mm256_set1_ps(mx);
  for (; j + 8 <= count; j += 8) {
    const __m256 v = vmath::exp8(_mm256_sub_ps(_mm256_loadu_ps(sc + j), m));
    _mm256_storeu_ps(sc + j, v);
    acc = _mm256_add_ps(acc, v);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  for (const float l : lanes) sum += l;
#endif
  for (; j < count; ++j) sum += (sc[j] = vmath::exp1(sc[j] - mx));
  return sum;
}

// out[0, n) = sum over j < count of w[j] * rows[j * stride + t], summed over j in order with one fused multiply-add
// per term (out[t] = fma(w[j], row[t], out[t]), as the plain loop compiles on x86-64-v3), the sums kept in registers
// across the rows: the plain loop's load and store of out per row made one head's attention output a chain of
// store-to-load forwards, the largest cost of a long prompt's attention.
#ifdef __AVX2__
// weightedRows over the 8 * U columns from t0: U sums of eight lanes in registers.
template <int U>
inline void weightedColumns(const float* w, std::int64_t count, const float* rows, std::int64_t stride,
                            std::int64_t t0, float* out) {
  __m256 a[U];
  for (auto& x : a) x = _mm256_setzero_ps();
  const float* r = rows + t0;
  for (std::int64_t j = 0; j < count; ++j, r += stride) {
    const __m256 wj = _mm256_set1_ps(w[j]);
    for (int u = 0; u < U; ++u) a[u] = _mm256_fmadd_ps(wj, _mm256_loadu_ps(r + 8 * u), a[u]);
  }
  for (int u = 0; u < U; ++u) _mm256_storeu_ps(out + t0 + 8 * u, a[u]);
}
#endif

inline void weightedRows(const float* w, std::int64_t count, const float* rows, std::int64_t stride, std::int64_t n,
                         float* out) {
  std::int64_t t0 = 0;
#ifdef __AVX2__
  for (; t0 + 64 <= n; t0 += 64) weightedColumns<8>(w, count, rows, stride, t0, out);  // one FMA latency per row
  for (; t0 + 32 <= n; t0 += 32) weightedColumns<4>(w, count, rows, stride, t0, out);
#endif
  for (std::int64_t t = t0; t < n; ++t) {
    float a = 0;
    for (std::int64_t j = 0; j < count; ++j) a = std::fma(w[j], rows[j * stride + t], a);
    out[t] = a;
  }
}

}  // namespace

void causalAttention(const AttentionShape& s, const float* q, std::int64_t n, const std::int64_t* positions,
                     const float* const* keys, const float* const* values, float* out, ThreadPool& pool) {
  const std::int64_t hd = s.headDim, nh = s.heads, qd = nh * hd, kvd = s.kvHeads * hd, group = nh / s.kvHeads;
  pool.parallelFor(static_cast<std::size_t>(n * nh), [&](std::size_t task) {
    const std::int64_t i = static_cast<std::int64_t>(task) / nh, hh = static_cast<std::int64_t>(task) % nh;
    const std::int64_t p = positions[i], kvh = hh / group;
    const float* kc = keys[i];
    const float* vc = values[i];
    const std::int64_t first = s.window ? std::max<std::int64_t>(0, p - *s.window + 1) : 0;
    const float* qh = q + i * qd + hh * hd;
    const std::int64_t count = p - first + 1;
    thread_local std::vector<float> scores;
    if (scores.size() < static_cast<std::size_t>(count)) scores.resize(static_cast<std::size_t>(count));
    float* sc = scores.data();
    float mx = -INFINITY;
    const float* kh = kc + first * kvd + kvh * hd;
    std::int64_t j = 0;
#ifdef __AVX2__
    if (hd % 8 == 0)
      for (; j + 8 <= count; j += 8) headDots8(qh, kh + j * kvd, kvd, hd, sc + j);
#endif
    for (; j < count; ++j) sc[j] = headDot(qh, kh + j * kvd, hd);
    for (j = 0; j < count; ++j) {
      float v = sc[j] * s.scale;
      if (s.softcap > 0) v = std::tanh(v / s.softcap) * s.softcap;
      sc[j] = v;
      mx = std::max(mx, v);
    }
    const float sum = softmaxExp(sc, count, mx);
    for (j = 0; j < count; ++j) sc[j] /= sum;
    weightedRows(sc, count, vc + first * kvd + kvh * hd, kvd, hd, out + i * qd + hh * hd);
  });
}

}  // namespace eq::model
