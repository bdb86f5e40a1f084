#include "quant/row_scale_search.h"

#include "quant/scale_grid.h"

#include <algorithm>
#include <cmath>

namespace eq::quant {
namespace {

constexpr int kMinIndex = -16 * 120, kMaxIndex = 16 * 120;  // scales stay normal bf16/f32 numbers
constexpr float kTinyRow = 0x1p-90f;  // below this the exponent tricks meet f32 subnormals: use the definition

inline float roundBf16(float x) { return bf16ToF32(f32ToBf16(x)); }

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
  a_.resize(n);
  neg_.resize(n);
  float absmax = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    a_[j] = std::fabs(w[j]);
    neg_[j] = std::signbit(w[j]);
    absmax = std::max(absmax, a_[j]);
  }
  if (!(absmax > 0)) {
    out.push_back({0, 0, 0});
    return;
  }
  const auto [first, last] = range(absmax);
  if (absmax < kTinyRow) {
    for (int k = first; k <= last; ++k) out.push_back(evaluate(format_, w, n, k));
    return;
  }
  const int o0 = floorDiv16(first), o1 = floorDiv16(last);
  for (int p = 0; p < kScalePhases; ++p) {
    if (format_ == CodeFormat::Fp8E4M3) fp8Phase(p, o0, o1, out);
    else int8Phase(p, o0, o1, out);
  }
}

// t = bf16(|w| / P[p]) for every weight, sorted by bucket b = max(exponent(t), eLo) - eLo (counting sort).
void RowScaleSearch::bucketPhase(int p, int eLo) {
  const std::size_t n = a_.size();
  const float sp = scalePhase(p);
  scratch_.resize(0);
  std::vector<float>& tt = t_;
  tt.resize(n);
  e_.resize(n);
  int eHi = eLo;
  for (std::size_t j = 0; j < n; ++j) {
    tt[j] = roundBf16(a_[j] / sp);
    e_[j] = std::max(exponentOf(tt[j]), eLo) - eLo;
    eHi = std::max(eHi, e_[j] + eLo);
  }
  const std::size_t nb = static_cast<std::size_t>(eHi - eLo + 1);
  start_.assign(nb + 1, 0);
  for (std::size_t j = 0; j < n; ++j) ++start_[e_[j] + 1];
  for (std::size_t b = 0; b < nb; ++b) start_[b + 1] += start_[b];
  std::vector<std::int64_t> fill(start_.begin(), start_.end() - 1);
  as_.resize(n);
  negs_.resize(n);
  std::vector<float> sortedT(n);
  for (std::size_t j = 0; j < n; ++j) {
    const auto at = fill[e_[j]]++;
    sortedT[at] = tt[j];
    as_[at] = a_[j];
    negs_[at] = neg_[j];
  }
  t_.swap(sortedT);
}

void RowScaleSearch::fp8Phase(int p, int o0, int o1, std::vector<RowPoint>& out) {
  const int eLo = o0 - 11;
  bucketPhase(p, eLo);
  const float sp = scalePhase(p);
  const std::size_t nb = start_.size() - 1;
  // Prefix sums per bucket: |w| (all-zero codes), and the octave-independent normal-range error and rate.
  std::vector<double> pa(nb + 1, 0), pne(nb + 1, 0), pnr(nb + 1, 0);
  for (std::size_t b = 0; b < nb; ++b) {
    double sa = 0, sne = 0, snr = 0;
    for (auto j = start_[b]; j < start_[b + 1]; ++j) {
      const float r3 = round3(t_[j]);
      sa += as_[j];
      sne += std::fabs(static_cast<double>(as_[j]) - roundBf16(r3 * sp));
      snr += r3;
    }
    pa[b + 1] = pa[b] + sa;
    pne[b + 1] = pne[b] + sne;
    pnr[b + 1] = pnr[b] + snr;
  }
  float dq[9];  // bf16(q * P[p]) for the subnormal codes q * 2^-9
  for (int q = 0; q <= 8; ++q) dq[q] = roundBf16(static_cast<float>(q) * sp);
  auto clampB = [&](long b) { return static_cast<std::size_t>(std::clamp<long>(b, 0, static_cast<long>(nb))); };

  for (int o = o0; o <= o1; ++o) {
    const long base = o - o0;  // bucket of exponent e is e - eLo = e - o + 11 + base
    const std::size_t zEnd = clampB(base + 1), bandEnd = clampB(base + 5), normEnd = clampB(base + 19);
    RowPoint pt{16 * o + p, pa[zEnd] + (pne[normEnd] - pne[bandEnd]), std::ldexp(pnr[normEnd] - pnr[bandEnd], -o)};
    // FP8 subnormal range: codes q * 2^-9 with q = RNE(x * 512) in 0..8.
    const double up = std::ldexp(1.0, 9 - o), down = std::ldexp(1.0, o - 9);
    double bandErr = 0, bandRate = 0;
    for (auto j = start_[zEnd]; j < start_[bandEnd]; ++j) {
      const double q = std::nearbyint(t_[j] * up);
      bandErr += std::fabs(static_cast<double>(as_[j]) - dq[static_cast<int>(q)] * down);
      bandRate += q;
    }
    pt.err += bandErr;
    pt.rate += bandRate * 0x1p-9;
    // Saturating range (only the lowest octaves): straight from the definition.
    const float s = std::ldexp(sp, o);
    for (auto j = start_[normEnd]; j < start_[nb]; ++j) {
      const float v = fp8E4M3ToF32(f32ToFp8E4M3(static_cast<float>(std::ldexp(static_cast<double>(t_[j]), -o))));
      pt.err += std::fabs(static_cast<double>(as_[j]) - roundBf16(v * s));
      pt.rate += v;
    }
    out.push_back(pt);
  }
}

void RowScaleSearch::int8Phase(int p, int o0, int o1, std::vector<RowPoint>& out) {
  const int eLo = o0 - 2;
  bucketPhase(p, eLo);
  const float sp = scalePhase(p);
  const std::size_t nb = start_.size() - 1;
  std::vector<double> pa(nb + 1, 0);
  for (std::size_t b = 0; b < nb; ++b) {
    double sa = 0;
    for (auto j = start_[b]; j < start_[b + 1]; ++j) sa += as_[j];
    pa[b + 1] = pa[b] + sa;
  }
  for (int o = o0; o <= o1; ++o) {
    // exponent <= o - 2 means |t| * 2^-o < 0.5: code 0
    const std::size_t zEnd = static_cast<std::size_t>(std::clamp<long>(o - o0 + 1, 0, static_cast<long>(nb)));
    RowPoint pt{16 * o + p, pa[zEnd], 0};
    const float s = std::ldexp(sp, o);
    const double down = std::ldexp(1.0, -o);
    for (auto j = start_[zEnd]; j < start_[nb]; ++j) {
      const double m = std::min(std::nearbyint(t_[j] * down), negs_[j] ? 128.0 : 127.0);
      pt.err += std::fabs(static_cast<double>(as_[j]) - roundBf16(static_cast<float>(m) * s));
      pt.rate += m;
    }
    out.push_back(pt);
  }
}

void lowerHull(std::vector<RowPoint>& pts) {
  std::sort(pts.begin(), pts.end(), [](const RowPoint& a, const RowPoint& b) {
    return a.rate != b.rate ? a.rate < b.rate : (a.err != b.err ? a.err < b.err : a.k < b.k);
  });
  std::vector<RowPoint> h;
  h.reserve(pts.size());
  for (const auto& p : pts) {
    if (!h.empty() && h.back().rate == p.rate) continue;  // same rate, higher (or equal) error
    while (h.size() >= 2) {
      const RowPoint& a = h[h.size() - 2];
      const RowPoint& b = h.back();
      const double cross = (b.rate - a.rate) * (p.err - a.err) - (b.err - a.err) * (p.rate - a.rate);
      if (cross > 0) break;
      h.pop_back();
    }
    h.push_back(p);
  }
  // Past the lowest error, more rate only costs: such points never minimize err + lambda * rate for lambda >= 0.
  const auto best = std::min_element(h.begin(), h.end(), [](const RowPoint& a, const RowPoint& b) { return a.err < b.err; });
  h.erase(best + 1, h.end());
  pts.swap(h);
}

void RowScaleSearch::hull(const float* w, std::int64_t n, std::vector<RowPoint>& out) {
  candidates(w, n, out);
  lowerHull(out);
}

std::size_t chooseOnHull(std::span<const RowPoint> hull, double lambda) {
  std::size_t i = 0;
  while (i + 1 < hull.size() &&
         hull[i + 1].err + lambda * hull[i + 1].rate < hull[i].err + lambda * hull[i].rate)
    ++i;
  return i;
}

}  // namespace eq::quant
