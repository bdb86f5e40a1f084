// Exact per-row scale search (ENTQUANT.md section 3). The paper's objective is separable by rows:
//   L = sum|w_hat - w| / sum|w| + lambda * R   =   sum over rows of  err_r / D + lambda * c * rate_r
// so each row's scale is chosen alone. For one row we evaluate every scale of the grid (scale_grid.h) over a
// wide range (2 octaves below absmax/qmax to 34 above for FP8) and keep the lower convex hull of the points
// (rate, err): for ANY lambda the optimum is a hull vertex, so rate control re-solves rows without requantizing.
//
// Speed comes from the FP8 structure, not from skipping candidates: with t = bf16(|w|/P[p]) computed once per
// phase p, moving one octave up only shifts exponents, so for weights whose code stays in the normal FP8 range
// the error does not depend on the octave at all and the rate scales by 2^-octave. Per phase the weights are
// bucketed by the exponent of t; each octave's err/rate is then prefix sums over buckets plus an exact pass over
// the four buckets that fall into FP8's subnormal range (and any that saturate). Every weight is evaluated
// exactly in at most ~5 octaves per phase, instead of in every candidate.
#pragma once

#include "quant/code_format.h"

#include <cstdint>
#include <span>
#include <vector>

namespace eq::quant {

struct RowPoint {
  std::int32_t k = 0;  // scale index on the grid
  double err = 0;      // sum_j |w_hat_j - w_j|
  double rate = 0;     // sum_j |value(q_j)| (FP8 units, or integers for Int8)
};

class RowScaleSearch {
 public:
  explicit RowScaleSearch(CodeFormat format);

  // Every grid candidate in the search range for this row, in no particular order.
  void candidates(const float* w, std::int64_t n, std::vector<RowPoint>& out);
  // The lower convex hull of the candidates in (rate, err), sorted by rate ascending (err descending).
  void hull(const float* w, std::int64_t n, std::vector<RowPoint>& out);
  // Every candidate sorted by grid index (consecutive indices), for local searches that walk the grid.
  void grid(const float* w, std::int64_t n, std::vector<RowPoint>& out);

  // The search range for a row of absolute maximum `absmax`: [first, last] grid indices.
  std::pair<int, int> range(float absmax) const;

  // Exact err/rate of one candidate, straight from the definition (reference for tests, saturation, Int8).
  static RowPoint evaluate(CodeFormat format, const float* w, std::int64_t n, int k);

 private:
  void sortMagnitudes(const float* w, std::int64_t n);
  void fp8Phase(int p, int o0, int o1, std::vector<RowPoint>& out);
  void int8Phase(int p, int o0, int o1, std::vector<RowPoint>& out);
  void bucketPhase(int p, int eLo);

  std::vector<RowPoint> points_;  // hull(): the row's candidates

  CodeFormat format_;
  // |w| sorted ascending (and the sign of each), so t = bf16(|w| / P[p]) is sorted for every phase and the
  // exponent buckets are contiguous ranges.
  std::vector<float> a_, t_;
  std::vector<std::uint8_t> neg_;
  std::vector<std::uint32_t> keys_, tmpKeys_, idx_, tmpIdx_;
  std::vector<std::int64_t> start_;  // bucket b = exponent - eLo covers [start_[b], start_[b + 1])
  std::vector<double> prefixA_;      // prefix sums of the sorted |w|
  std::vector<double> pa_, pne_, pnr_;
};

// The grid index the reference optimizer starts from: its initial scale absmax/qmax (448 for FP8, 127 for Int8)
// as a log2 value rounded to bf16, l0 = bf16(log2(absmax/qmax)), then the nearest grid index round(16 * l0)
// (exactly l0 where |l0| is in [8, 16), the usual range). 0 for a zero row.
int absmaxStartIndex(CodeFormat format, float absmax);

// `--objective paper-local`: from grid[start], step to the neighbouring grid point with the lower
// err + lambda * rate while that strictly improves (the higher scale wins a tie between the two neighbours).
// On a plateau (both neighbours equal, no better one), look past it: move up the grid first, then down, to the
// first point that differs, and go there if it is strictly lower. Stops at the first point that no move improves.
// `grid` must hold consecutive grid indices (RowScaleSearch::grid). Returns the position in `grid`.
std::size_t localOptimum(std::span<const RowPoint> grid, std::size_t start, double lambda);

// Index of the hull vertex minimizing err + lambda * rate (the lowest rate among ties).
std::size_t chooseOnHull(std::span<const RowPoint> hull, double lambda);

// Lower convex hull (rate ascending, err descending) of arbitrary points; used by the search and by allocation.
void lowerHull(std::vector<RowPoint>& points);

}  // namespace eq::quant
