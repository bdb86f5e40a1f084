#include "quant/ecsq.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "quant/row_scale_search.h"
#include "quant/scale_grid.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>

namespace eq::quant {
namespace {

constexpr std::size_t kRowBlock = 16;
constexpr double kUnseenMass = 0x1p-20;

template <typename Body>
void forRowBlocks(ThreadPool& pool, std::size_t rows, const std::function<bool()>& keepGoing, Body&& body) {
  pool.parallelFor((rows + kRowBlock - 1) / kRowBlock, [&](std::size_t b) {
    if (keepGoing && !keepGoing()) fail(Errc::Cancelled, "cancelled");
    body(b * kRowBlock, std::min(rows, (b + 1) * kRowBlock));
  });
}

double candidateBits(const EcsqRow& row, std::size_t c, const std::array<double, 256>& len) {
  double bits = 0;
  for (std::uint32_t e = row.begin[c]; e < row.begin[c + 1]; ++e)
    bits += static_cast<double>(row.entries[e] & 0xFFFFFFu) * len[row.entries[e] >> 24];
  return bits;
}

void addCounts(const EcsqRow& row, std::size_t c, codec::SymbolCounts& counts) {
  for (std::uint32_t e = row.begin[c]; e < row.begin[c + 1]; ++e) counts[row.entries[e] >> 24] += row.entries[e] & 0xFFFFFFu;
}

}  // namespace

void ecsqCandidates(CodeFormat f, const float* w, std::int64_t n, EcsqRow& out) {
  ecsqCandidates(f, w, n, out, std::numeric_limits<int>::min(), std::numeric_limits<int>::max());
}

void ecsqCandidates(CodeFormat f, const float* w, std::int64_t n, EcsqRow& out, int kFirst, int kLast) {
  if (n >= (std::int64_t{1} << 24))
    fail(Errc::Unsupported, "rows of {} weights are too long for the ECSQ objectives (at most 16777215)", n);
  out = EcsqRow{};
  out.weights = static_cast<std::uint32_t>(n);
  float absmax = 0;
  for (std::int64_t j = 0; j < n; ++j) absmax = std::max(absmax, std::fabs(w[j]));
  const auto [rangeFirst, rangeLast] = RowScaleSearch(f).range(absmax);
  const int first = std::max(rangeFirst, kFirst), last = std::max(first, std::min(rangeLast, kLast));
  std::vector<std::uint8_t> q(static_cast<std::size_t>(n));
  const std::size_t expected = static_cast<std::size_t>(last - first + 1);
  out.k.reserve(expected);
  out.l1.reserve(expected);
  out.sq.reserve(expected);
  out.zeros.reserve(expected);
  out.begin.reserve(expected + 1);
  std::uint32_t counts[256];
  float deq[256];
  for (int k = first; k <= last; ++k) {
    const std::uint16_t s = scaleBitsOfIndex(k);
    const float sf = bf16ToF32(s);
    quantizeRow(f, w, n, s, q.data());
    for (int c = 0; c < 256; ++c) deq[c] = bf16ToF32(dequantizeOne(f, static_cast<std::uint8_t>(c), sf));
    std::fill(counts, counts + 256, 0u);
    double l1 = 0, sq = 0;
    for (std::int64_t j = 0; j < n; ++j) {
      ++counts[q[j]];
      const double d = static_cast<double>(deq[q[j]]) - w[j];
      l1 += std::fabs(d);
      sq += d * d;
    }
    out.k.push_back(k);
    out.l1.push_back(l1);
    out.sq.push_back(sq);
    out.zeros.push_back(counts[0]);
    for (int c = 0; c < 256; ++c)
      if (counts[c]) out.entries.push_back(static_cast<std::uint32_t>(c) << 24 | counts[c]);
    out.begin.push_back(static_cast<std::uint32_t>(out.entries.size()));
    if (counts[0] == static_cast<std::uint32_t>(n)) break;  // all zero here, so at every larger scale too
  }
}

std::array<double, 256> ecsqCodeLengths(const codec::SymbolCounts& counts) {
  std::uint64_t total = 0;
  int unseen = 0;
  for (auto c : counts) total += c, unseen += c == 0;
  std::array<double, 256> len{};
  const double present = unseen ? 1.0 - kUnseenMass : 1.0;
  for (int s = 0; s < 256; ++s)
    len[s] = counts[s] ? -std::log2(present * static_cast<double>(counts[s]) / static_cast<double>(total))
                       : -std::log2(kUnseenMass / unseen);
  return len;
}

double ecsqObjective(const EcsqProblem& p, std::span<const std::uint32_t> choice, double lambda,
                     codec::SymbolCounts* countsOut) {
  codec::SymbolCounts counts{};
  double d = 0;
  const bool perRow = !p.rowNorm.empty();
  for (std::size_t r = 0; r < p.rows.size(); ++r) {
    const double dr = (p.mse ? p.rows[r].sq : p.rows[r].l1)[choice[r]];
    d += perRow ? (p.rowNorm[r] > 0 ? dr / p.rowNorm[r] : 0) : dr;
    addCounts(p.rows[r], choice[r], counts);
  }
  if (countsOut) *countsOut = counts;
  const double n = static_cast<double>(std::max<std::uint64_t>(p.weights, 1));
  const double distortion = perRow ? d / static_cast<double>(std::max<std::size_t>(p.rows.size(), 1))
                                   : (p.norm > 0 ? d / p.norm : 0);
  return distortion + lambda * codec::shannonBits(counts) / n;
}

EcsqSolution solveEcsq(const EcsqProblem& p, double lambda, std::span<const std::uint32_t> start, int maxIterations,
                       ThreadPool& pool) {
  EcsqSolution s;
  s.choice.assign(start.begin(), start.end());
  s.objective.push_back(ecsqObjective(p, s.choice, lambda, &s.counts));
  // Per row: minimize D_r / D0 + lambda * bits_r / N, i.e. D_r + weight * bits_r (per-row normalized:
  // D_r / (rowNorm_r R) + lambda * bits_r / N, i.e. the weight lambda rowNorm_r R / N; a zero row has no distortion
  // to trade, so its weight only needs to be positive).
  const double n = static_cast<double>(std::max<std::uint64_t>(p.weights, 1));
  const bool perRow = !p.rowNorm.empty();
  auto weightOf = [&](std::size_t r) {
    if (!perRow) return lambda * p.norm / n;
    return lambda * (p.rowNorm[r] > 0 ? p.rowNorm[r] : 1.0) * static_cast<double>(p.rows.size()) / n;
  };
  std::vector<std::uint32_t> next(s.choice.size());
  for (int it = 0; it < maxIterations; ++it) {
    const auto len = ecsqCodeLengths(s.counts);
    // A candidate with z zeros costs at least dist + weight * (z len(0) + (n - z) min len(s != 0)): candidates
    // whose bound exceeds the best cost so far need no dot product. The bound is only used to skip, so the
    // choice (the largest candidate among equal costs) is exactly that of the full scan.
    const double minNonZero = *std::min_element(len.begin() + 1, len.end());
    std::mutex mu;
    bool changed = false;
    forRowBlocks(pool, p.rows.size(), p.keepGoing, [&](std::size_t r0, std::size_t r1) {
      bool localChange = false;
      for (std::size_t r = r0; r < r1; ++r) {
        const EcsqRow& row = p.rows[r];
        const auto& dist = p.mse ? row.sq : row.l1;
        const double weight = weightOf(r);
        std::uint32_t best = s.choice[r];
        double bestCost = dist[best] + weight * candidateBits(row, best, len);
        for (std::size_t c = 0; c < row.size(); ++c) {
          const double z = row.zeros[c];
          const double bound = dist[c] + weight * (z * len[0] + (static_cast<double>(row.weights) - z) * minNonZero);
          if (bound > bestCost * (1 + 1e-9)) continue;  // slack: the bound sums in another order
          const double cost = dist[c] + weight * candidateBits(row, c, len);
          if (cost < bestCost || (cost == bestCost && c > best)) best = static_cast<std::uint32_t>(c), bestCost = cost;
        }
        next[r] = best;
        localChange |= best != s.choice[r];
      }
      if (localChange) {
        std::lock_guard lock(mu);
        changed = true;
      }
    });
    if (!changed) {
      s.converged = true;
      break;
    }
    codec::SymbolCounts counts{};
    const double j = ecsqObjective(p, next, lambda, &counts);
    if (!(j < s.objective.back())) break;
    s.choice.swap(next);
    s.counts = counts;
    s.objective.push_back(j);
    ++s.iterations;
  }
  return s;
}

std::uint8_t codeTowardZero(CodeFormat f, std::uint8_t q) {
  if (f == CodeFormat::Fp8E4M3) {
    // E4M3FN magnitudes grow with the low 7 bits; the sign is bit 7. Magnitude 0 is always the code +0.
    const std::uint8_t mag = q & 0x7F;
    return mag <= 1 ? 0 : static_cast<std::uint8_t>((q & 0x80) | (mag - 1));
  }
  const auto v = static_cast<std::int8_t>(q);
  return static_cast<std::uint8_t>(static_cast<std::int8_t>(v > 0 ? v - 1 : v < 0 ? v + 1 : 0));
}

double rdoQuantizeRow(CodeFormat f, const float* w, std::int64_t n, std::uint16_t scaleBf16,
                      const std::array<double, 256>& len, double mu, std::uint8_t* codes, codec::SymbolCounts& counts) {
  quantizeRow(f, w, n, scaleBf16, codes);
  const float s = bf16ToF32(scaleBf16);
  float deq[256];
  for (int c = 0; c < 256; ++c) deq[c] = bf16ToF32(dequantizeOne(f, static_cast<std::uint8_t>(c), s));
  double err = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    const std::uint8_t q0 = codes[j];
    const double x = w[j];
    double d = deq[q0] - x;
    double dist = d * d, best = dist + mu * len[q0];
    std::uint8_t q = q0;
    if (q0 != 0) {
      const std::uint8_t q1 = codeTowardZero(f, q0);
      d = deq[q1] - x;
      const double c1 = d * d + mu * len[q1];
      if (c1 < best) best = c1, q = q1, dist = d * d;
      if (q1 != 0) {
        const double c0 = x * x + mu * len[0];
        if (c0 < best) best = c0, q = 0, dist = x * x;
      }
    }
    codes[j] = q;
    ++counts[q];
    err += dist;
  }
  return err;
}

}  // namespace eq::quant
