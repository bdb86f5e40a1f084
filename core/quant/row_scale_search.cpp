#include "quant/row_scale_search.h"

#include "quant/scale_grid.h"

#include <algorithm>
#include <cmath>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::quant {
namespace {

constexpr int kMinIndex = -16 * 120, kMaxIndex = 16 * 120;  // scales stay normal bf16/f32 numbers
constexpr float kTinyRow = 0x1p-90f;  // below this the exponent tricks meet f32 subnormals: use the definition

inline float roundBf16(float x) { return bf16ToF32(f32ToBf16(x)); }

// bf16 rounding of a finite float without the NaN branch, so loops over it vectorize.
inline float roundBf16Finite(float x) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(x);
  return std::bit_cast<float>((u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u);
}

// Round a normal float to 3 mantissa bits, nearest even (what FP8 E4M3 keeps in its normal range).
inline float round3(float t) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(t);
  return std::bit_cast<float>((u + 0x7FFFFu + ((u >> 20) & 1u)) & ~0xFFFFFu);
}

inline int exponentOf(float t) { return static_cast<int>((std::bit_cast<std::uint32_t>(t) >> 23) & 0xFF) - 127; }

}  // namespace

RowScaleSearch::RowScaleSearch(CodeFormat format) : format_(format) {}

std::pair<int, int> RowScaleSearch::range(float absmax) const {
  if (!(absmax > 0)) return {0, 0};
  const bool fp8 = format_ == CodeFormat::Fp8E4M3;
  const int start = static_cast<int>(std::floor(std::log2(absmax / (fp8 ? 448.0 : 127.0)))) - 2;
  const int octaves = fp8 ? 36 : 12;
  const int first = std::clamp(16 * start, kMinIndex, kMaxIndex);
  const int last = std::clamp(16 * (start + octaves) + 15, kMinIndex, kMaxIndex);
  return {first, last};
}

RowPoint RowScaleSearch::evaluate(CodeFormat format, const float* w, std::int64_t n, int k) {
  const float s = scaleOfIndex(k);
  RowPoint p{k, 0, 0};
  for (std::int64_t j = 0; j < n; ++j) {
    const std::uint8_t q = quantizeOne(format, w[j], s);
    p.err += std::fabs(static_cast<double>(bf16ToF32(dequantizeOne(format, q, s))) - w[j]);
    p.rate += std::fabs(codeValue(format, q));
  }
  return p;
}

void RowScaleSearch::candidates(const float* w, std::int64_t n, std::vector<RowPoint>& out) {
  out.clear();
  float absmax = 0;
  for (std::int64_t j = 0; j < n; ++j) absmax = std::max(absmax, std::fabs(w[j]));
  if (!(absmax > 0)) {
    out.push_back({0, 0, 0});
    return;
  }
  const auto [first, last] = range(absmax);
  if (absmax < kTinyRow) {
    for (int k = first; k <= last; ++k) out.push_back(evaluate(format_, w, n, k));
    return;
  }
  sortMagnitudes(w, n);
  const int o0 = floorDiv16(first), o1 = floorDiv16(last);
  for (int p = 0; p < kScalePhases; ++p) {
    if (format_ == CodeFormat::Fp8E4M3) fp8Phase(p, o0, o1, out);
    else int8Phase(p, o0, o1, out);
  }
}

// LSD radix sort of |w| by its bit pattern (non-negative floats order like their bits), 8 bits a pass; passes
// whose byte is the same for every weight are skipped (the low two for bf16 weights).
void RowScaleSearch::sortMagnitudes(const float* w, std::int64_t n) {
  keys_.resize(n);
  idx_.resize(n);
  tmpKeys_.resize(n);
  tmpIdx_.resize(n);
  for (std::int64_t j = 0; j < n; ++j) {
    keys_[j] = std::bit_cast<std::uint32_t>(w[j]) & 0x7FFFFFFFu;
    idx_[j] = static_cast<std::uint32_t>(j);
  }
  for (int shift = 0; shift < 32; shift += 8) {
    std::int64_t count[257] = {};
    for (std::int64_t j = 0; j < n; ++j) ++count[((keys_[j] >> shift) & 0xFF) + 1];
    if (std::any_of(count + 1, count + 257, [n](std::int64_t c) { return c == n; })) continue;
    for (int b = 0; b < 256; ++b) count[b + 1] += count[b];
    for (std::int64_t j = 0; j < n; ++j) {
      const auto at = count[(keys_[j] >> shift) & 0xFF]++;
      tmpKeys_[at] = keys_[j];
      tmpIdx_[at] = idx_[j];
    }
    keys_.swap(tmpKeys_);
    idx_.swap(tmpIdx_);
  }
  a_.resize(n);
  neg_.resize(n);
  prefixA_.resize(n + 1);
  prefixA_[0] = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    a_[j] = std::bit_cast<float>(keys_[j]);
    neg_[j] = std::signbit(w[idx_[j]]);
    prefixA_[j + 1] = prefixA_[j] + a_[j];
  }
}

// t = bf16(|w| / P[p]) (sorted, since |w| is); bucket b = max(exponent(t), eLo) - eLo is a contiguous range.
void RowScaleSearch::bucketPhase(int p, int eLo) {
  const std::size_t n = a_.size();
  const float sp = scalePhase(p);
  t_.resize(n);
  const float* a = a_.data();
  float* t = t_.data();
  std::size_t j0 = 0;
#ifdef __AVX2__
  const __m256 vsp = _mm256_set1_ps(sp);
  const __m256i bias = _mm256_set1_epi32(0x7FFF), one = _mm256_set1_epi32(1);
  const __m256i keep = _mm256_set1_epi32(static_cast<int>(0xFFFF0000u));
  for (; j0 + 8 <= n; j0 += 8) {
    const __m256i u = _mm256_castps_si256(_mm256_div_ps(_mm256_loadu_ps(a + j0), vsp));
    const __m256i r = _mm256_and_si256(_mm256_add_epi32(_mm256_add_epi32(u, bias),
                                                        _mm256_and_si256(_mm256_srli_epi32(u, 16), one)), keep);
    _mm256_storeu_ps(t + j0, _mm256_castsi256_ps(r));
  }
#endif
  for (std::size_t j = j0; j < n; ++j) t[j] = roundBf16Finite(a[j] / sp);
  const int eHi = std::max(eLo, exponentOf(t_[n - 1]));
  const std::size_t nb = static_cast<std::size_t>(eHi - eLo + 1);
  start_.resize(nb + 1);
  start_[0] = 0;
  for (std::size_t b = 1; b < nb; ++b)
    start_[b] = std::lower_bound(t_.begin(), t_.end(), std::ldexp(1.0f, eLo + static_cast<int>(b))) - t_.begin();
  start_[nb] = static_cast<std::int64_t>(n);
  // Prefix sums of |w| per bucket (the error of buckets whose codes are all zero), from the row's prefix sums.
  pa_.resize(nb + 1);
  for (std::size_t b = 0; b <= nb; ++b) pa_[b] = prefixA_[static_cast<std::size_t>(start_[b])];
}

namespace {

struct BucketSums {
  double ne = 0, nr = 0;
};

#ifdef __AVX2__
// Eight normal-range terms at once: the codes' magnitudes round3(t) and the errors |a - bf16(round3(t) * sp)|, in
// double (lanes 0-3 in e0, 4-7 in e1), exactly as round3 and roundBf16Finite compute them one at a time.
struct Normal8 {
  __m256 r3;
  __m256d e0, e1;
};
inline Normal8 normal8(const float* a, const float* t, __m256 vsp) {
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i ti = _mm256_castps_si256(_mm256_loadu_ps(t));
  const __m256 r3 = _mm256_castsi256_ps(_mm256_and_si256(
      _mm256_add_epi32(_mm256_add_epi32(ti, _mm256_set1_epi32(0x7FFFF)), _mm256_and_si256(_mm256_srli_epi32(ti, 20), one)),
      _mm256_set1_epi32(~0xFFFFF)));
  const __m256i pi = _mm256_castps_si256(_mm256_mul_ps(r3, vsp));
  const __m256 wh = _mm256_castsi256_ps(_mm256_and_si256(
      _mm256_add_epi32(_mm256_add_epi32(pi, _mm256_set1_epi32(0x7FFF)), _mm256_and_si256(_mm256_srli_epi32(pi, 16), one)),
      _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  const __m256 va = _mm256_loadu_ps(a);
  const __m256d absMask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
  return {r3,
          _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(va)), _mm256_cvtps_pd(_mm256_castps256_ps128(wh))),
                        absMask),
          _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(va, 1)), _mm256_cvtps_pd(_mm256_extractf128_ps(wh, 1))),
                        absMask)};
}
#endif

// Over [lo, hi): the normal-range error | |w| - bf16(round3(t) * sp) | and rate round3(t).
BucketSums normalSums(const float* a, const float* t, std::int64_t lo, std::int64_t hi, float sp) {
  BucketSums s;
  std::int64_t j = lo;
#ifdef __AVX2__
  __m256d se0 = _mm256_setzero_pd(), se1 = se0, sr0 = se0, sr1 = se0;
  const __m256 vsp = _mm256_set1_ps(sp);
  for (; j + 8 <= hi; j += 8) {
    const Normal8 n = normal8(a + j, t + j, vsp);
    se0 = _mm256_add_pd(se0, n.e0);
    se1 = _mm256_add_pd(se1, n.e1);
    sr0 = _mm256_add_pd(sr0, _mm256_cvtps_pd(_mm256_castps256_ps128(n.r3)));
    sr1 = _mm256_add_pd(sr1, _mm256_cvtps_pd(_mm256_extractf128_ps(n.r3, 1)));
  }
  auto hsum = [](__m256d v) {
    double x[4];
    _mm256_storeu_pd(x, v);
    return (x[0] + x[1]) + (x[2] + x[3]);
  };
  s.ne = hsum(_mm256_add_pd(se0, se1));
  s.nr = hsum(_mm256_add_pd(sr0, sr1));
#endif
  for (; j < hi; ++j) {
    const float r3 = round3(t[j]);
    s.ne += std::fabs(static_cast<double>(a[j]) - roundBf16(r3 * sp));
    s.nr += r3;
  }
  return s;
}

// FP8 subnormal band over [lo, hi) at octave o: q = RNE(t * 2^(9-o)) in 0..8, w_hat = bf16(q * sp) * 2^(o-9).
// Adds the error to err and returns the sum of q.
std::int64_t subnormalBand(const float* a, const float* t, std::int64_t lo, std::int64_t hi, int o, const float* dq,
                           double& err) {
  const float up = pow2f(9 - o), down = pow2f(o - 9);
  std::int64_t qsum = 0;
  std::int64_t j = lo;
#ifdef __AVX2__
  const __m256 vup = _mm256_set1_ps(up), vdown = _mm256_set1_ps(down);
  const __m256 table = _mm256_loadu_ps(dq), d8 = _mm256_set1_ps(dq[8]);
  const __m256i eight = _mm256_set1_epi32(8);
  const __m256d absMask = _mm256_castsi256_pd(_mm256_set1_epi64x(0x7FFFFFFFFFFFFFFFll));
  __m256d e0 = _mm256_setzero_pd(), e1 = e0;
  __m256i qacc = _mm256_setzero_si256();
  for (; j + 8 <= hi; j += 8) {
    const __m256 q = _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(t + j), vup), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i qi = _mm256_cvtps_epi32(q);
    __m256 d = _mm256_permutevar8x32_ps(table, qi);
    d = _mm256_blendv_ps(d, d8, _mm256_castsi256_ps(_mm256_cmpeq_epi32(qi, eight)));
    const __m256 wh = _mm256_mul_ps(d, vdown);
    const __m256 va = _mm256_loadu_ps(a + j);
    e0 = _mm256_add_pd(e0, _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(va)),
                                                       _mm256_cvtps_pd(_mm256_castps256_ps128(wh))), absMask));
    e1 = _mm256_add_pd(e1, _mm256_and_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(va, 1)),
                                                       _mm256_cvtps_pd(_mm256_extractf128_ps(wh, 1))), absMask));
    qacc = _mm256_add_epi32(qacc, qi);
  }
  double x[4];
  _mm256_storeu_pd(x, _mm256_add_pd(e0, e1));
  err += (x[0] + x[1]) + (x[2] + x[3]);
  std::int32_t qs[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(qs), qacc);
  for (int i = 0; i < 8; ++i) qsum += qs[i];
#endif
  for (; j < hi; ++j) {
    const float q = std::nearbyint(t[j] * up);
    err += std::fabs(static_cast<double>(a[j]) - static_cast<double>(dq[static_cast<int>(q)] * down));
    qsum += static_cast<std::int64_t>(q);
  }
  return qsum;
}

// FP8's top binade below saturation over [lo, hi) at octave o (down = 2^-o): the codes t * 2^-o lie in [256, 448),
// so each is round3(t) * 2^-o and its weight bf16(round3(t) * sp), as in normalSums; the terms are added to err and
// rate one by one in order, as the loop from the definition added them (the same sums, bit for bit), but computed
// eight at a time.
void topBinade(const float* a, const float* t, std::int64_t lo, std::int64_t hi, float sp, float down, double& err,
               double& rate) {
  std::int64_t j = lo;
#ifdef __AVX2__
  const __m256 vsp = _mm256_set1_ps(sp), vdown = _mm256_set1_ps(down);
  alignas(32) double e[8];
  alignas(32) float v[8];
  for (; j + 8 <= hi; j += 8) {
    const Normal8 n = normal8(a + j, t + j, vsp);
    _mm256_store_pd(e, n.e0);
    _mm256_store_pd(e + 4, n.e1);
    _mm256_store_ps(v, _mm256_mul_ps(n.r3, vdown));
    for (int k = 0; k < 8; ++k) {
      err += e[k];
      rate += v[k];
    }
  }
#endif
  for (; j < hi; ++j) {
    const float r3 = round3(t[j]);
    err += std::fabs(static_cast<double>(a[j]) - roundBf16Finite(r3 * sp));
    rate += r3 * down;
  }
}

}  // namespace

void RowScaleSearch::fp8Phase(int p, int o0, int o1, std::vector<RowPoint>& out) {
  const int eLo = o0 - 11;
  bucketPhase(p, eLo);
  const float sp = scalePhase(p);
  const std::size_t nb = start_.size() - 1;
  // Prefix sums per bucket of the octave-independent normal-range error and rate.
  pne_.assign(nb + 1, 0);
  pnr_.assign(nb + 1, 0);
  for (std::size_t b = 0; b < nb; ++b) {
    const BucketSums s = normalSums(a_.data(), t_.data(), start_[b], start_[b + 1], sp);
    pne_[b + 1] = pne_[b] + s.ne;
    pnr_[b + 1] = pnr_[b] + s.nr;
  }
  float dq[9];  // bf16(q * P[p]) for the subnormal codes q * 2^-9
  for (int q = 0; q <= 8; ++q) dq[q] = roundBf16(static_cast<float>(q) * sp);
  auto clampB = [&](long b) { return static_cast<std::size_t>(std::clamp<long>(b, 0, static_cast<long>(nb))); };

  for (int o = o0; o <= o1; ++o) {
    const long base = o - o0;  // exponent e sits in bucket e - o0 + 11
    const std::size_t zEnd = clampB(base + 1), bandEnd = clampB(base + 5), normEnd = clampB(base + 19);
    const double down = pow2d(-o);
    RowPoint pt{16 * o + p, pa_[zEnd] + (pne_[normEnd] - pne_[bandEnd]), (pnr_[normEnd] - pnr_[bandEnd]) * down};
    const std::int64_t qsum = subnormalBand(a_.data(), t_.data(), start_[zEnd], start_[bandEnd], o, dq, pt.err);
    pt.rate += static_cast<double>(qsum) * 0x1p-9;
    // Saturating range (only the lowest octaves): FP8's top binade up to t * 2^-o = 448, from where every code is
    // 448 (t is sorted, so those weights are the row's tail): their errors summed in the same order as the
    // definition's loop, their rates (448 each) added at once.
    const float s = scaleOfIndex(16 * o + p);
    const std::int64_t end = start_[nb];
    const std::int64_t sat =
        std::lower_bound(t_.begin() + start_[normEnd], t_.begin() + end, static_cast<float>(448.0 / down)) - t_.begin();
    topBinade(a_.data(), t_.data(), start_[normEnd], sat, sp, static_cast<float>(down), pt.err, pt.rate);
    const double top = roundBf16(448.0f * s);
    for (auto j = sat; j < end; ++j) pt.err += std::fabs(static_cast<double>(a_[j]) - top);
    pt.rate += 448.0 * static_cast<double>(end - sat);
    out.push_back(pt);
  }
}

void RowScaleSearch::int8Phase(int p, int o0, int o1, std::vector<RowPoint>& out) {
  const int eLo = o0 - 2;
  bucketPhase(p, eLo);
  const std::size_t nb = start_.size() - 1;
  for (int o = o0; o <= o1; ++o) {
    // exponent <= o - 2 means |t| * 2^-o < 0.5: code 0
    const std::size_t zEnd = static_cast<std::size_t>(std::clamp<long>(o - o0 + 1, 0, static_cast<long>(nb)));
    RowPoint pt{16 * o + p, pa_[zEnd], 0};
    const float s = scaleOfIndex(16 * o + p);
    const double down = pow2d(-o);
    for (auto j = start_[zEnd]; j < start_[nb]; ++j) {
      const double m = std::min(std::nearbyint(t_[j] * down), neg_[j] ? 128.0 : 127.0);
      pt.err += std::fabs(static_cast<double>(a_[j]) - roundBf16(static_cast<float>(m) * s));
      pt.rate += m;
    }
    out.push_back(pt);
  }
}

namespace {

// Rate ascending, then error, then index: a strict total order (grid indices are unique), so every correct sort
// gives the same sequence.
bool hullOrder(const RowPoint& a, const RowPoint& b) {
  return a.rate != b.rate ? a.rate < b.rate : (a.err != b.err ? a.err < b.err : a.k < b.k);
}

// Sorts by hullOrder, merging the runs the input already has: a row's candidates come phase by phase, each phase's
// octaves in order of falling rate, so they are a few dozen descending runs (reversed here) that merge in a few
// passes, where a general sort of hundreds of points per row cost more than the rest of the hull.
void sortForHull(std::vector<RowPoint>& pts) {
  const std::size_t n = pts.size();
  thread_local std::vector<std::size_t> runs;
  runs.assign(1, 0);
  for (std::size_t i = 0; i < n;) {
    std::size_t j = i + 1;
    if (j < n && hullOrder(pts[j], pts[i])) {
      while (j < n && hullOrder(pts[j], pts[j - 1])) ++j;
      std::reverse(pts.begin() + static_cast<std::ptrdiff_t>(i), pts.begin() + static_cast<std::ptrdiff_t>(j));
    } else {
      while (j < n && !hullOrder(pts[j], pts[j - 1])) ++j;
    }
    runs.push_back(j);
    i = j;
  }
  thread_local std::vector<RowPoint> buffer;
  buffer.resize(n);
  std::vector<RowPoint>* from = &pts;
  std::vector<RowPoint>* to = &buffer;
  while (runs.size() > 2) {  // merge neighbouring runs pairwise until one is left
    std::size_t kept = 1;
    for (std::size_t r = 0; r + 1 < runs.size(); r += 2) {
      const auto b = from->begin();
      const std::size_t lo = runs[r], mid = runs[r + 1], hi = r + 2 < runs.size() ? runs[r + 2] : mid;
      std::merge(b + static_cast<std::ptrdiff_t>(lo), b + static_cast<std::ptrdiff_t>(mid),
                 b + static_cast<std::ptrdiff_t>(mid), b + static_cast<std::ptrdiff_t>(hi),
                 to->begin() + static_cast<std::ptrdiff_t>(lo), hullOrder);
      runs[kept++] = hi;
    }
    runs.resize(kept);
    std::swap(from, to);
  }
  if (from != &pts) pts.swap(buffer);
}

}  // namespace

void lowerHull(std::vector<RowPoint>& pts) {
  sortForHull(pts);
  // Andrew's monotone chain, in place (the hull never holds more points than have been read).
  std::size_t h = 0;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const RowPoint p = pts[i];
    if (h > 0 && pts[h - 1].rate == p.rate) continue;  // same rate, higher (or equal) error
    while (h >= 2) {
      const RowPoint& a = pts[h - 2];
      const RowPoint& b = pts[h - 1];
      const double cross = (b.rate - a.rate) * (p.err - a.err) - (b.err - a.err) * (p.rate - a.rate);
      if (cross > 0) break;
      --h;
    }
    pts[h++] = p;
  }
  pts.resize(h);
  // Past the lowest error, more rate only costs: such points never minimize err + lambda * rate for lambda >= 0.
  const auto best = std::min_element(pts.begin(), pts.end(), [](const RowPoint& a, const RowPoint& b) { return a.err < b.err; });
  if (best != pts.end()) pts.erase(best + 1, pts.end());
}

void RowScaleSearch::hull(const float* w, std::int64_t n, std::vector<RowPoint>& out) {
  candidates(w, n, points_);
  lowerHull(points_);
  out.assign(points_.begin(), points_.end());  // a few dozen points, kept per row by the callers: no spare room
}

void RowScaleSearch::grid(const float* w, std::int64_t n, std::vector<RowPoint>& out) {
  candidates(w, n, out);
  std::sort(out.begin(), out.end(), [](const RowPoint& a, const RowPoint& b) { return a.k < b.k; });
}

int absmaxStartIndex(CodeFormat format, float absmax) {
  if (!(absmax > 0)) return 0;
  const float qmax = format == CodeFormat::Fp8E4M3 ? 448.0f : 127.0f;
  const float l0 = bf16ToF32(f32ToBf16(std::log2(absmax / qmax)));
  return static_cast<int>(std::lround(16.0 * static_cast<double>(l0)));
}

std::size_t localOptimum(std::span<const RowPoint> grid, std::size_t start, double lambda) {
  const std::size_t n = grid.size();
  auto f = [&](std::size_t i) { return grid[i].err + lambda * grid[i].rate; };
  std::size_t i = std::min(start, n - 1);
  for (;;) {
    const double fi = f(i);
    std::size_t next = i;
    double best = fi;
    if (i + 1 < n && f(i + 1) < best) next = i + 1, best = f(i + 1);
    if (i > 0 && f(i - 1) < best) next = i - 1, best = f(i - 1);
    if (next == i) {  // no neighbour is better: look across a plateau of equal values, up first
      for (const int dir : {1, -1}) {
        std::ptrdiff_t j = static_cast<std::ptrdiff_t>(i) + dir;
        while (j >= 0 && j < static_cast<std::ptrdiff_t>(n) && f(static_cast<std::size_t>(j)) == fi) j += dir;
        if (j >= 0 && j < static_cast<std::ptrdiff_t>(n) && j != static_cast<std::ptrdiff_t>(i) + dir &&
            f(static_cast<std::size_t>(j)) < fi) {
          next = static_cast<std::size_t>(j);
          break;
        }
      }
    }
    if (next == i) return i;
    i = next;
  }
}

std::size_t chooseOnHull(std::span<const RowPoint> hull, double lambda) {
  std::size_t i = 0;
  while (i + 1 < hull.size() &&
         hull[i + 1].err + lambda * hull[i + 1].rate < hull[i].err + lambda * hull[i].rate)
    ++i;
  return i;
}

}  // namespace eq::quant
