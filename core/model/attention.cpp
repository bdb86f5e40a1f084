#include "model/attention.h"

#include "common/thread_pool.h"

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
    for (std::int64_t j = first; j <= p; ++j) {
      const float* kh = kc + j * kvd + kvh * hd;
      float v = headDot(qh, kh, hd) * s.scale;
      if (s.softcap > 0) v = std::tanh(v / s.softcap) * s.softcap;
      sc[j - first] = v;
      mx = std::max(mx, v);
    }
    float sum = 0;
    for (std::int64_t j = 0; j < count; ++j) sum += (sc[j] = std::exp(sc[j] - mx));
    for (std::int64_t j = 0; j < count; ++j) sc[j] /= sum;
    weightedRows(sc, count, vc + first * kvd + kvh * hd, kvd, hd, out + i * qd + hh * hd);
  });
}

}  // namespace eq::model
