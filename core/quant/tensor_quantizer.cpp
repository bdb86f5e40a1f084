#include "quant/tensor_quantizer.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "common/units.h"
#include "quant/ecsq.h"
#include "quant/error_feedback.h"
#include "quant/scale_grid.h"

#include <algorithm>
#include <array>
#include <map>
#include <cmath>
#include <numeric>
#include <optional>

namespace eq::quant {
namespace {

constexpr std::int64_t kRowBlock = 16;
constexpr double kLambdaMin = 1e-6, kLambdaMax = 1e7;

// Everything lambda-independent about a tensor: each row's hull (paper), whole candidate grid and start (paper-local)
// or ECSQ candidates, and the sums the objectives normalize by.
struct Analysis {
  std::vector<std::vector<RowPoint>> hulls;  // paper, ECSQ: lower hull; paper-local: every candidate by grid index
  std::vector<std::int32_t> starts;          // paper-local: the absmax start's grid index
  EcsqProblem ecsq;                          // ECSQ: candidates around the paper's solution (ecsqScales)
  double absSum = 0, sqSum = 0;
  std::vector<double> rowAbs, rowSq;         // per row: sum|w| and sum w^2
};

template <typename Body>
void forRowBlocks(ThreadPool& pool, std::int64_t rows, const QuantizeOptions& o, Body&& body) {
  const std::size_t blocks = static_cast<std::size_t>((rows + kRowBlock - 1) / kRowBlock);
  pool.parallelFor(blocks, [&](std::size_t b) {
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "cancelled");
    const std::int64_t r0 = static_cast<std::int64_t>(b) * kRowBlock;
    body(r0, std::min(rows, r0 + kRowBlock));
  });
}

// Sums that a parallel pass over row blocks adds up: each block's part is kept in its own slot and the parts are
// added in block order afterwards, so the totals do not depend on which thread finishes first (the rate control's
// lambda and the reported errors are then the same on every run and with any thread count).
template <typename Part>
struct BlockParts {
  explicit BlockParts(std::int64_t rows) : parts(static_cast<std::size_t>((rows + kRowBlock - 1) / kRowBlock)) {}
  Part& of(std::int64_t firstRow) { return parts[static_cast<std::size_t>(firstRow / kRowBlock)]; }
  std::vector<Part> parts;
};

bool isEcsq(Objective o) {
  return o == Objective::EcsqL1 || o == Objective::EcsqMse || o == Objective::EcsqL1Row || o == Objective::EcsqMseRow ||
         o == Objective::EcsqRdo;
}

// Per-row search data of every rowStep-th row (all rows when 1) for the objective (none for given scales): the
// paper's hull (also the start of the ECSQ objectives, whose candidates come later), or every grid point and the
// absmax start for paper-local. The sums cover every row, or with `sampledSums` only the sampled ones, scaled up to
// the whole tensor (an estimate that reads a rowStep-th of the weights).
Analysis analyze(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool, std::int64_t rowStep = 1,
                 bool sampledSums = false) {
  Analysis a;
  const bool search = o.log2Scales.empty();
  const bool local = search && o.objective == Objective::PaperLocal;
  if (search) a.hulls.resize(static_cast<std::size_t>(m.rows));
  a.rowAbs.resize(static_cast<std::size_t>(m.rows));
  a.rowSq.resize(static_cast<std::size_t>(m.rows));
  if (local) a.starts.resize(static_cast<std::size_t>(m.rows));
  struct Sums {
    double abs = 0, sq = 0;
    bool bad = false;
  };
  BlockParts<Sums> sums(m.rows);
  forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
    RowScaleSearch rowSearch(o.format);
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    double abs = 0, sq = 0;
    bool bad = false;
    for (std::int64_t r = r0; r < r1; ++r) {
      if (sampledSums && r % rowStep != 0) continue;
      m.row(r, w.data());
      float absmax = 0;
      double rowAbs = 0, rowSq = 0;
      for (float x : w) {
        bad |= !std::isfinite(x);
        rowAbs += std::fabs(x);
        rowSq += static_cast<double>(x) * x;
        absmax = std::max(absmax, std::fabs(x));
      }
      if (bad) break;
      a.rowAbs[static_cast<std::size_t>(r)] = rowAbs;
      a.rowSq[static_cast<std::size_t>(r)] = rowSq;
      abs += rowAbs;
      sq += rowSq;
      if (!search || r % rowStep != 0) continue;
      const auto i = static_cast<std::size_t>(r);
      if (local) {
        rowSearch.grid(w.data(), m.cols, a.hulls[i]);
        a.starts[i] = absmaxStartIndex(o.format, absmax);
      } else {
        rowSearch.hull(w.data(), m.cols, a.hulls[i]);
      }
    }
    sums.of(r0) = {abs, sq, bad};
  });
  bool nonFinite = false;
  for (const Sums& b : sums.parts) {
    a.absSum += b.abs;
    a.sqSum += b.sq;
    nonFinite |= b.bad;
  }
  if (sampledSums && rowStep > 1) {
    const double scale = static_cast<double>(m.rows) / static_cast<double>((m.rows + rowStep - 1) / rowStep);
    a.absSum *= scale;
    a.sqSum *= scale;
  }
  if (nonFinite) fail(Errc::Unsupported, "contains NaN or infinite weights, which cannot be quantized");
  return a;
}

// Lambda of the paper -> the weight of a row's rate sum in err_r + lambda' * rate_r.
double rowLambda(const MatrixView& m, const Analysis& a, CodeFormat f, double lambda) {
  const double n = static_cast<double>(m.numel());
  return f == CodeFormat::Fp8E4M3 ? 4.0 * lambda * a.absSum / n : lambda * a.absSum / (128.0 * n);
}

// The paper objectives' choice for row r at a row lambda: the hull optimum, or the local walk from the start.
// Returns its grid index.
std::int32_t paperIndex(const Analysis& a, const QuantizeOptions& o, std::int64_t r, double lambdaRow) {
  const auto& pts = a.hulls[static_cast<std::size_t>(r)];
  if (o.objective != Objective::PaperLocal) return pts[chooseOnHull(pts, lambdaRow)].k;
  const auto start = std::clamp<std::int64_t>(a.starts[static_cast<std::size_t>(r)] - pts.front().k, 0,
                                              static_cast<std::int64_t>(pts.size()) - 1);
  return pts[localOptimum(pts, static_cast<std::size_t>(start), lambdaRow)].k;
}

// Element weights row[r] x col[j] of an error measure (the balanced relative MSE of rateCurve).
struct ElementWeights {
  const double* row = nullptr;
  const double* col = nullptr;
};

// Histogram of the codes of every rowStep-th row at this lambda (and, if asked, their squared error and energy, and
// with `weights` the same weighted element by element).
codec::SymbolCounts histogram(const MatrixView& m, const Analysis& a, const QuantizeOptions& o, double lambdaRow,
                              std::int64_t rowStep, ThreadPool& pool, double* sqErr = nullptr, double* sqSum = nullptr,
                              ElementWeights weights = {}, double* sqErrW = nullptr, double* sqSumW = nullptr) {
  struct Part {
    codec::SymbolCounts counts{};
    double err = 0, sum = 0, errW = 0, sumW = 0;
  };
  const std::int64_t sampled = (m.rows + rowStep - 1) / rowStep;
  BlockParts<Part> parts(sampled);
  forRowBlocks(pool, sampled, o, [&](std::int64_t s0, std::int64_t s1) {
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    std::vector<std::uint8_t> q(static_cast<std::size_t>(m.cols));
    codec::SymbolCounts local{};
    double err = 0, sum = 0, errW = 0, sumW = 0;
    for (std::int64_t s = s0; s < s1; ++s) {
      const std::int64_t r = s * rowStep;
      m.row(r, w.data());
      const std::uint16_t scale = scaleBitsOfIndex(paperIndex(a, o, r, lambdaRow));
      quantizeRow(o.format, w.data(), m.cols, scale, q.data());
      const auto c = codec::countSymbols(q);
      for (int i = 0; i < 256; ++i) local[i] += c[i];
      if (sqErr)
        for (std::int64_t j = 0; j < m.cols; ++j) {
          const double d = static_cast<double>(bf16ToF32(dequantizeOne(o.format, q[j], bf16ToF32(scale)))) - w[j];
          err += d * d;
          sum += static_cast<double>(w[j]) * w[j];
          if (sqErrW) {
            const double k = weights.row[r] * weights.col[j];
            errW += k * d * d;
            sumW += k * static_cast<double>(w[j]) * w[j];
          }
        }
    }
    parts.of(s0) = {local, err, sum, errW, sumW};
  });
  codec::SymbolCounts total{};
  double errTotal = 0, sumTotal = 0, errTotalW = 0, sumTotalW = 0;
  for (const Part& p : parts.parts) {
    for (int i = 0; i < 256; ++i) total[i] += p.counts[i];
    errTotal += p.err;
    sumTotal += p.sum;
    errTotalW += p.errW;
    sumTotalW += p.sumW;
  }
  if (sqErr) *sqErr = errTotal;
  if (sqSum) *sqSum = sumTotal;
  if (sqErrW) *sqErrW = errTotalW;
  if (sqSumW) *sqSumW = sumTotalW;
  return total;
}

// Effective bits per weight of the whole tensor if its codes had the distribution of `counts` (a sample of rows).
double bitsOfCounts(const MatrixView& m, const QuantizeOptions& o, const codec::SymbolCounts& counts) {
  std::uint64_t symbols = 0;
  for (auto c : counts) symbols += c;
  const auto table = codec::FrequencyTable::normalize(counts);
  const double payloadPerSymbol = table.codedBits(counts) / static_cast<double>(symbols);
  const std::uint32_t segment = codec::chooseSegmentSymbols(static_cast<std::uint64_t>(m.cols), o.segmentSymbols);
  // Stored bytes as the container lays them out: stream and scales, each padded to its 64-byte section.
  const double n = static_cast<double>(m.numel());
  const double stream = payloadPerSymbol * n / 8.0 +
                        static_cast<double>(streamOverheadBytes(m.numel(), segment, table.presentSymbols()));
  const double scales = 2.0 * static_cast<double>(m.rows);
  auto padded = [](double b) { return std::ceil(b / 64.0) * 64.0; };
  return 8.0 * (padded(stream) + padded(scales)) / n;
}

// Predicted effective bits per weight at lambda (paper objectives), measured on every rowStep-th row.
double predictBits(const MatrixView& m, const Analysis& a, const QuantizeOptions& o, double lambda, std::int64_t rowStep,
                   ThreadPool& pool) {
  return bitsOfCounts(m, o, histogram(m, a, o, rowLambda(m, a, o.format, lambda), rowStep, pool));
}

// Solves bits(lambda) = target on log(lambda) by regula falsi with the Illinois rule (bits fall about linearly
// in log lambda, so this takes a few evaluations where bisection takes a dozen). Returns lambda with bits within
// tol of the target, or an end of [lo, hi] when the target lies outside.
double solveLambda(const std::function<double(double)>& bitsAt, double target, double lo, double hi, double tol,
                   bool& clamped, std::optional<double> bitsLo = {}, std::optional<double> bitsHi = {}) {
  clamped = false;
  double f0 = (bitsLo ? *bitsLo : bitsAt(lo)) - target;
  if (f0 <= tol) {
    clamped = f0 < -tol;
    return lo;
  }
  double f1 = (bitsHi ? *bitsHi : bitsAt(hi)) - target;
  if (f1 >= -tol) {
    clamped = f1 > tol;
    return hi;
  }
  double x0 = std::log(lo), x1 = std::log(hi), x = x0;
  int side = 0;
  for (int it = 0; it < 60 && x1 - x0 > 1e-9; ++it) {
    x = (x0 * f1 - x1 * f0) / (f1 - f0);
    if (!(x > x0 && x < x1)) x = 0.5 * (x0 + x1);
    const double f = bitsAt(std::exp(x)) - target;
    if (std::fabs(f) <= tol) return std::exp(x);
    if (f > 0) {
      x0 = x, f0 = f;
      if (side == 1) f1 /= 2;
      side = 1;
    } else {
      x1 = x, f1 = f;
      if (side == -1) f0 /= 2;
      side = -1;
    }
  }
  return std::exp(x);
}


// The row scale that makes the dequantized row unbiased along the original one, sum(w_hat w) = sum(w w), for
// fixed codes: s * sum w^2 / sum(w_hat w), in bf16. Quantization at low rates shrinks rows (weights that round to
// zero, and RDO's dead zone), a change of the row's output in its own direction that errors of a random sign do not
// make; the refit undoes it (ecsq-rdo only: with nearest codes it changed nothing measurable, docs/QUALITY.md).
// The given scale where the row or its codes are all zero.
std::uint16_t unbiasedScale(CodeFormat f, const float* w, const std::uint8_t* q, std::int64_t n, std::uint16_t scale) {
  const float s0 = bf16ToF32(scale);
  double ww = 0, hw = 0;
  for (std::int64_t j = 0; j < n; ++j) {
    ww += static_cast<double>(w[j]) * w[j];
    hw += static_cast<double>(bf16ToF32(dequantizeOne(f, q[j], s0))) * w[j];
  }
  const double factor = hw > 0 ? ww / hw : 0;
  if (!(factor > 0) || !std::isfinite(factor)) return scale;
  const std::uint16_t refit = f32ToBf16(static_cast<float>(s0 * factor));
  return std::isfinite(bf16ToF32(refit)) && bf16ToF32(refit) > 0 ? refit : scale;
}

// The code choice of `--objective ecsq-rdo`: rdoQuantizeRow with these code lengths and weight (mu = 0: the
// nearest codes, plain quantizeRow).
struct RdoChoice {
  std::array<double, 256> len{};
  double mu = 0;
  codec::SymbolCounts counts{};  // histogram of the codes it gives
};

// RDO codes at the row scales of `choice` (an ECSQ solution with histogram `nearest`): the encoder rule and the
// histogram are alternated from the nearest codes' histogram while the ECSQ objective J (with the codes' real
// Shannon bits) falls, at most 6 rounds.
RdoChoice rdoSolve(const MatrixView& m, const Analysis& a, const QuantizeOptions& o, ThreadPool& pool,
                   std::span<const std::uint32_t> choice, const codec::SymbolCounts& nearest, double lambda) {
  const EcsqProblem& p = a.ecsq;
  const double n = static_cast<double>(std::max<std::int64_t>(m.numel(), 1));
  RdoChoice best;
  best.counts = nearest;
  double bestJ = ecsqObjective(p, choice, lambda);
  auto len = ecsqCodeLengths(nearest);
  const double mu = lambda * p.norm / n;
  for (int round = 0; round < 6; ++round) {
    BlockParts<std::pair<codec::SymbolCounts, double>> parts(m.rows);
    forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
      std::vector<float> w(static_cast<std::size_t>(m.cols));
      std::vector<std::uint8_t> q(static_cast<std::size_t>(m.cols));
      codec::SymbolCounts local{};
      double d = 0;
      for (std::int64_t r = r0; r < r1; ++r) {
        const auto i = static_cast<std::size_t>(r);
        m.row(r, w.data());
        d += rdoQuantizeRow(o.format, w.data(), m.cols, scaleBitsOfIndex(p.rows[i].k[choice[i]]), len, mu, q.data(),
                            local);
      }
      parts.of(r0) = {local, d};
    });
    codec::SymbolCounts counts{};
    double dist = 0;
    for (const auto& [local, d] : parts.parts) {
      for (int c = 0; c < 256; ++c) counts[c] += local[c];
      dist += d;
    }
    const double j = (p.norm > 0 ? dist / p.norm : 0) + lambda * codec::shannonBits(counts) / n;
    if (!(j < bestJ)) break;
    bestJ = j;
    best = {len, mu, counts};
    len = ecsqCodeLengths(counts);
  }
  return best;
}

std::vector<std::int32_t> paperIndices(const MatrixView& m, const Analysis& a, const QuantizeOptions& o,
                                       ThreadPool& pool, double& lambda, bool& clamped);

// ECSQ rate control. The start is the paper's exact solution at the same bits target (or, with --lambda, at the
// same lambda value); each row's candidates are the grid scales within o.ecsqWindow steps of its start (all of the
// search range when the window is 0). Then lambda is solved so that the ECSQ fixed point hits the target (for
// ecsq-rdo: with the RDO codes at each lambda, returned in `rdo`). Returns each row's scale.
std::vector<std::uint16_t> ecsqScales(const MatrixView& m, Analysis& a, const QuantizeOptions& o, ThreadPool& pool,
                                      double& lambda, bool& clamped, RdoChoice* rdo) {
  EcsqProblem& p = a.ecsq;
  p.mse = o.objective == Objective::EcsqMse || o.objective == Objective::EcsqMseRow || o.objective == Objective::EcsqRdo;
  p.norm = p.mse ? a.sqSum : a.absSum;
  if (o.objective == Objective::EcsqL1Row || o.objective == Objective::EcsqMseRow) p.rowNorm = p.mse ? a.rowSq : a.rowAbs;
  p.weights = m.numel();
  p.keepGoing = o.keepGoing;
  const auto rows = static_cast<std::size_t>(m.rows);
  std::vector<std::int32_t> k0;
  {
    QuantizeOptions po = o;
    po.objective = Objective::Paper;
    double paperLambda = 0;
    bool paperClamped = false;
    k0 = paperIndices(m, a, po, pool, paperLambda, paperClamped);
  }
  a.hulls = {};
  p.rows.resize(rows);
  std::vector<std::uint32_t> start(rows);
  forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    for (std::int64_t r = r0; r < r1; ++r) {
      const auto i = static_cast<std::size_t>(r);
      m.row(r, w.data());
      if (o.ecsqWindow > 0)
        ecsqCandidates(o.format, w.data(), m.cols, p.rows[i], k0[i] - o.ecsqWindow, k0[i] + o.ecsqWindow);
      else ecsqCandidates(o.format, w.data(), m.cols, p.rows[i]);
      // The start's position (a start past the first all-zero candidate has that candidate's codes).
      const std::int64_t pos = k0[i] - p.rows[i].k.front();
      start[i] = static_cast<std::uint32_t>(std::clamp<std::int64_t>(pos, 0, static_cast<std::int64_t>(p.rows[i].size()) - 1));
    }
  });
  auto bitsOf = [&](std::span<const std::uint32_t> choice) {
    codec::SymbolCounts counts{};
    ecsqObjective(p, choice, 0, &counts);
    return bitsOfCounts(m, o, counts);
  };
  const bool bitsMode = o.target.mode == RateTarget::Mode::Bits;
  struct Solved {
    std::vector<std::uint32_t> choice;
    RdoChoice rdo;  // ecsq-rdo only
  };
  std::map<double, Solved> solved;  // lambda -> solution (the solver's last guess is the answer)
  auto solveAt = [&](double l) -> const Solved& {
    auto it = solved.find(l);
    if (it == solved.end()) {
      EcsqSolution e = solveEcsq(p, l, start, o.ecsqIterations, pool);
      Solved s{std::move(e.choice), {}};
      if (rdo) s.rdo = rdoSolve(m, a, o, pool, s.choice, e.counts, l);
      it = solved.emplace(l, std::move(s)).first;
    }
    return it->second;
  };
  clamped = false;
  lambda = o.target.value;
  if (bitsMode) {
    // Bracket from a guess: at high rate D falls like 2^-R (l1) or 4^-R (MSE), so the slope -dD/dR at the start is
    // about ln 2 (or 2 ln 2) times its relative distortion; widen by 1.5x steps until the target is inside.
    const double d0 = ecsqObjective(p, start, 0);
    const double guess = std::clamp((p.mse ? 2.0 : 1.0) * std::log(2.0) * d0, 1e-6, 1e3);
    auto bitsAt = [&](double l) {
      const Solved& s = solveAt(l);
      return rdo ? bitsOfCounts(m, o, s.rdo.counts) : bitsOf(s.choice);
    };
    double lo = guess, hi = guess, bLo = bitsAt(guess), bHi = bLo;
    if (std::fabs(bLo - o.target.value) <= o.bitsTolerance) {
      lambda = guess;
    } else {
      while (bLo < o.target.value && lo > 1e-7) bLo = bitsAt(lo = std::max(1e-7, lo / 1.5));
      while (bHi > o.target.value && hi < 1e4) bHi = bitsAt(hi = std::min(1e4, hi * 1.5));
      lambda = solveLambda(bitsAt, o.target.value, lo, hi, o.bitsTolerance, clamped, bLo, bHi);
    }
  }
  const Solved& solution = solveAt(lambda);
  const auto& choice = solution.choice;
  if (rdo) *rdo = solution.rdo;
  std::vector<std::uint16_t> scales(rows);
  for (std::size_t r = 0; r < rows; ++r) scales[r] = scaleBitsOfIndex(p.rows[r].k[choice[r]]);
  return scales;
}

// The paper objectives' rate control: lambda (and each row's grid index) for the target.
std::vector<std::int32_t> paperIndices(const MatrixView& m, const Analysis& a, const QuantizeOptions& o,
                                       ThreadPool& pool, double& lambda, bool& clamped) {
  clamped = false;
  if (o.target.mode == RateTarget::Mode::Lambda) {
    lambda = o.target.value;
  } else {
    // Coarse solve on a sample of rows, then on every row starting from a bracket around the coarse answer.
    const std::int64_t step = std::max<std::int64_t>(1, m.rows / 512);
    const double coarse = solveLambda([&](double l) { return predictBits(m, a, o, l, step, pool); }, o.target.value,
                                      kLambdaMin, kLambdaMax, o.bitsTolerance / 2, clamped);
    lambda = coarse;
    if (step > 1 && !clamped) {
      // On every row: usually the coarse answer is already inside the tolerance; otherwise bracket it and refine.
      auto full = [&](double l) { return predictBits(m, a, o, l, 1, pool); };
      const double b = full(coarse);
      if (std::fabs(b - o.target.value) > o.bitsTolerance) {
        double lo = coarse, hi = coarse, bLo = b, bHi = b;
        while (bLo < o.target.value && lo > kLambdaMin) bLo = full(lo = std::max(kLambdaMin, lo / 1.5));
        while (bHi > o.target.value && hi < kLambdaMax) bHi = full(hi = std::min(kLambdaMax, hi * 1.5));
        lambda = solveLambda(full, o.target.value, lo, hi, o.bitsTolerance, clamped, bLo, bHi);
      }
    }
  }
  const double lambdaRow = rowLambda(m, a, o.format, lambda);
  std::vector<std::int32_t> k(static_cast<std::size_t>(m.rows));
  forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
    for (std::int64_t r = r0; r < r1; ++r) k[static_cast<std::size_t>(r)] = paperIndex(a, o, r, lambdaRow);
  });
  return k;
}

}  // namespace

namespace {
constexpr std::array<std::string_view, 7> kObjectiveNames{"paper",       "paper-local",  "ecsq-l1", "ecsq-mse",
                                                          "ecsq-l1-row", "ecsq-mse-row", "ecsq-rdo"};
static_assert(kObjectiveNames.size() == static_cast<std::size_t>(Objective::EcsqRdo) + 1);
}  // namespace

std::span<const std::string_view> objectiveNames() { return kObjectiveNames; }

std::optional<Objective> parseObjective(std::string_view name) {
  for (std::size_t i = 0; i < kObjectiveNames.size(); ++i)
    if (kObjectiveNames[i] == name) return static_cast<Objective>(i);
  return std::nullopt;
}

std::string_view objectiveName(Objective o) {
  const auto i = static_cast<std::size_t>(o);
  return i < kObjectiveNames.size() ? kObjectiveNames[i] : kObjectiveNames[0];
}

std::uint16_t scaleOfLog2(float log2Scale) { return f32ToBf16(std::exp2f(bf16ToF32(f32ToBf16(log2Scale)))); }

std::vector<RatePoint> rateCurve(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool, std::int64_t maxRows,
                                 bool sampledSums) {
  const std::int64_t step = std::max<std::int64_t>(1, (m.rows + maxRows - 1) / maxRows);
  // ECSQ tensors are allocated by the paper objective's curve (its lambda sweep is cheap and ranks tensors alike).
  QuantizeOptions po = o;
  po.log2Scales = {};
  if (isEcsq(po.objective)) po.objective = Objective::Paper;
  const Analysis a = analyze(m, po, pool, step, sampledSums);
  // The balanced error's element weights: row and column factors (Sinkhorn-Knopp on the squared weights of the
  // sampled rows) that give every sampled row and every column the same weighted energy. Computed in order on this
  // thread, so the same on every run.
  std::vector<double> col(static_cast<std::size_t>(m.cols), 1.0), row(static_cast<std::size_t>(m.rows), 0.0);
  {
    const double sampled = static_cast<double>((m.rows + step - 1) / step);
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    std::vector<double> colSum(static_cast<std::size_t>(m.cols));
    for (int it = 0; it < 8; ++it) {
      std::fill(colSum.begin(), colSum.end(), 0.0);
      for (std::int64_t r = 0; r < m.rows; r += step) {
        m.row(r, w.data());
        double e = 0;
        for (std::int64_t j = 0; j < m.cols; ++j) e += col[j] * w[j] * w[j];
        row[r] = e > 0 ? static_cast<double>(m.cols) / e : 0.0;
        for (std::int64_t j = 0; j < m.cols; ++j) colSum[j] += row[r] * w[j] * w[j];
      }
      for (std::int64_t j = 0; j < m.cols; ++j) col[j] = colSum[j] > 0 ? sampled / colSum[j] : 0.0;
    }
  }
  std::vector<RatePoint> curve;
  for (int i = 0; i <= 24; ++i) {
    const double lambda = std::pow(10.0, -0.5 + 0.125 * i);  // 0.3 ... 300: about 8 down to 1.5 bits
    RatePoint p{lambda, 0, 0, 0};
    double sqErr = 0, sqSum = 0, sqErrW = 0, sqSumW = 0;
    const auto counts = histogram(m, a, po, rowLambda(m, a, po.format, lambda), step, pool, &sqErr, &sqSum,
                                  {row.data(), col.data()}, &sqErrW, &sqSumW);
    p.bits = bitsOfCounts(m, po, counts);
    p.relMse = sqSum > 0 ? sqErr / sqSum : 0;
    p.relMseBalanced = sqSumW > 0 ? sqErrW / sqSumW : 0;
    curve.push_back(p);
  }
  return curve;
}

std::uint64_t streamOverheadBytes(std::uint64_t symbols, std::uint32_t segmentSymbols, int presentSymbols) {
  const std::uint64_t segments = (symbols + segmentSymbols - 1) / segmentSymbols;
  const std::uint64_t header = (24 + 32 + 2 * static_cast<std::uint64_t>(presentSymbols) + 3) / 4 * 4;
  return header + segments * (4 + 4 * codec::kLanes + 1);  // index entry, states, average padding
}

namespace {

// One pass: scales for o.target under the objective (or the given ones), then the codes.
QuantizedTensor quantizeOnce(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool) {
  Analysis a = analyze(m, o, pool);
  std::optional<RdoChoice> rdo;
  QuantizedTensor t;
  t.format = o.format;
  t.rows = m.rows;
  t.cols = m.cols;
  if (!o.log2Scales.empty()) {
    t.scales.resize(static_cast<std::size_t>(m.rows));
    for (std::size_t r = 0; r < t.scales.size(); ++r) t.scales[r] = scaleOfLog2(o.log2Scales[r]);
  } else if (isEcsq(o.objective)) {
    if (o.objective == Objective::EcsqRdo) rdo.emplace();
    t.scales = ecsqScales(m, a, o, pool, t.lambda, t.targetClamped, rdo ? &*rdo : nullptr);
    a.ecsq.rows = {};  // free the candidates before the final pass
  } else {
    const auto k = paperIndices(m, a, o, pool, t.lambda, t.targetClamped);
    t.scales.resize(k.size());
    for (std::size_t r = 0; r < k.size(); ++r) t.scales[r] = scaleBitsOfIndex(k[r]);
  }

  // Final pass: codes and error statistics at the chosen scales.
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(m.numel()));
  // each row's errors, summed in row order afterwards: the same totals whatever order the threads finish in
  std::vector<double> rowL1(static_cast<std::size_t>(m.rows)), rowL2(static_cast<std::size_t>(m.rows));
  forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
    // The block's rows (all of them at once for error feedback, which codes them together; else one at a time).
    const std::int64_t held = o.errorFeedback ? r1 - r0 : 1;
    std::vector<float> wb(static_cast<std::size_t>(held * m.cols)), scratch(o.errorFeedback ? wb.size() : 0);
    if (o.errorFeedback) {
      for (std::int64_t r = r0; r < r1; ++r) m.row(r, wb.data() + (r - r0) * m.cols);
      if (rdo && rdo->mu > 0)
        o.errorFeedback->quantizeRowsRdo(o.format, wb.data(), r1 - r0, t.scales.data() + r0, rdo->len.data(), rdo->mu,
                                         codes.data() + r0 * m.cols, scratch.data());
      else
        o.errorFeedback->quantizeRows(o.format, wb.data(), r1 - r0, t.scales.data() + r0, codes.data() + r0 * m.cols,
                                      scratch.data());
    }
    for (std::int64_t r = r0; r < r1; ++r) {
      double e1 = 0, e2 = 0;
      std::uint8_t* q = codes.data() + r * m.cols;
      const float* w = wb.data() + (o.errorFeedback ? (r - r0) * m.cols : 0);
      std::uint16_t s = t.scales[static_cast<std::size_t>(r)];
      if (!o.errorFeedback) {
        m.row(r, wb.data());
        if (rdo && rdo->mu > 0) {
          codec::SymbolCounts unused{};
          rdoQuantizeRow(o.format, w, m.cols, s, rdo->len, rdo->mu, q, unused);
        } else {
          quantizeRow(o.format, w, m.cols, s, q);
        }
      }
      if (rdo && !o.errorFeedback) {  // with feedback the later columns make up for the shrink
        s = unbiasedScale(o.format, w, q, m.cols, s);
        t.scales[static_cast<std::size_t>(r)] = s;
      }
      const float sf = bf16ToF32(s);
      for (std::int64_t j = 0; j < m.cols; ++j) {
        const double d = static_cast<double>(bf16ToF32(dequantizeOne(o.format, q[j], sf))) - w[j];
        e1 += std::fabs(d);
        e2 += d * d;
      }
      rowL1[static_cast<std::size_t>(r)] = e1;
      rowL2[static_cast<std::size_t>(r)] = e2;
    }
  });
  const double errL1 = std::accumulate(rowL1.begin(), rowL1.end(), 0.0);
  const double errL2 = std::accumulate(rowL2.begin(), rowL2.end(), 0.0);
  const auto counts = codec::countSymbols(codes);
  const auto table = codec::FrequencyTable::normalize(counts);
  t.stream = codec::ransEncode(codes, table, codec::chooseSegmentSymbols(static_cast<std::uint64_t>(m.cols), o.segmentSymbols), &pool);
  const double n = static_cast<double>(m.numel());
  t.entropyBits = n > 0 ? codec::shannonBits(counts) / n : 0;
  t.effectiveBits = n > 0 ? 8.0 * static_cast<double>(t.storedBytes()) / n : 0;
  t.distinctSymbols = table.presentSymbols();
  t.relL1 = a.absSum > 0 ? errL1 / a.absSum : 0;
  t.relL2 = a.sqSum > 0 ? std::sqrt(errL2 / a.sqSum) : 0;
  return t;
}

}  // namespace

QuantizedTensor quantizeTensor(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool) {
  if (!o.log2Scales.empty() && static_cast<std::int64_t>(o.log2Scales.size()) != m.rows)
    fail(Errc::InvalidArgument, "{} given scales for {} rows", o.log2Scales.size(), m.rows);
  if (o.errorFeedback && o.errorFeedback->size() != m.cols)
    fail(Errc::ShapeMismatch, "input statistics for {} columns, the matrix has {}", o.errorFeedback->size(), m.cols);
  QuantizedTensor best = quantizeOnce(m, o, pool);
  if (!o.errorFeedback || !o.log2Scales.empty() || o.target.mode != RateTarget::Mode::Bits) return best;
  // The feedback's codes spread further than the nearest ones, so their rate differs from the one the scales were
  // solved for by a roughly constant offset: aim the solve that much lower (or higher) and keep the closest. Bits
  // as the target counts them: stream and scales padded to their 64-byte sections.
  auto stored = [&](const QuantizedTensor& t) {
    auto padded = [](std::uint64_t b) { return static_cast<double>((b + 63) / 64 * 64); };
    return 8.0 * (padded(t.stream.size()) + padded(2 * t.scales.size())) / static_cast<double>(std::max<std::int64_t>(m.numel(), 1));
  };
  const double goal = o.target.value;
  double bestBits = stored(best);
  QuantizeOptions aim = o;
  for (int round = 0; round < 3 && std::fabs(bestBits - goal) > o.bitsTolerance; ++round) {
    aim.target.value = std::clamp(aim.target.value - (bestBits - goal), 0.05, 8.0);
    QuantizedTensor t = quantizeOnce(m, aim, pool);
    const double bits = stored(t);
    if (std::fabs(bits - goal) >= std::fabs(bestBits - goal)) break;
    best = std::move(t);
    bestBits = bits;
  }
  best.targetClamped = std::fabs(bestBits - goal) > 0.03;
  return best;
}

void dequantizeTensor(CodeFormat format, std::span<const std::byte> stream, std::span<const std::uint16_t> scales,
                      std::int64_t rows, std::int64_t cols, std::uint16_t* out, const std::string& label,
                      ThreadPool* pool) {
  if (static_cast<std::int64_t>(scales.size()) != rows)
    fail(Errc::Corrupt, "{}: {} scales for {} rows", label, scales.size(), rows);
  requireMemory(codec::ransParseExpecting(stream, static_cast<std::uint64_t>(rows * cols), label).symbols, label);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(rows * cols));
  codec::ransDecode(stream, codes, label, pool);
  auto body = [&](std::size_t r) {
    dequantizeRow(format, codes.data() + r * cols, cols, scales[r], out + r * cols);
  };
  if (pool) pool->parallelFor(static_cast<std::size_t>(rows), body);
  else for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) body(r);
}

}  // namespace eq::quant
