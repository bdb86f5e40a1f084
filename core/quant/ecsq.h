// Entropy-constrained scalar quantization of one tensor (ENTQUANT.md section 4, `--objective ecsq-l1|ecsq-mse|ecsq-rdo`):
// the paper's l1 rate proxy is replaced by each code's actual length under the tensor's own histogram,
//   J = D / D0 + lambda * (sum over weights of -log2 p(q)) / N,     D = sum|w_hat - w| (l1) or sum (w_hat - w)^2
// and the scales and the histogram are optimized in turn (Chou, Lookabaugh, Gray 1989): every row picks the grid
// scale minimizing its share of J under the current code lengths, then the histogram is recounted from all rows'
// codes. Each row's candidates (the same grid as the exact search) are quantized once, keeping their distortion
// and sparse symbol histogram, so an iteration costs a dot product per candidate, not a requantization.
#pragma once

#include "codec/frequency_table.h"
#include "quant/code_format.h"

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::quant {

// One row's candidates: grid index, l1 and squared error, and the symbol counts (sym << 24 | count, counts below
// 2^24) of candidate c in entries[begin[c], begin[c + 1]). Candidates whose codes are all zero are kept once (the
// lowest such scale), as every higher scale gives the same codes.
struct EcsqRow {
  std::uint32_t weights = 0;           // row length
  std::vector<std::uint32_t> zeros;    // per candidate, its number of zero codes (pruning bound)
  std::vector<std::int32_t> k;
  std::vector<double> l1, sq;
  std::vector<std::uint32_t> begin{0};
  std::vector<std::uint32_t> entries;
  std::size_t size() const { return k.size(); }
};

// Candidates of a row over RowScaleSearch::range (quantized by the definition, quantizeRow), or over its part in
// [kFirst, kLast]. n < 2^24.
void ecsqCandidates(CodeFormat format, const float* w, std::int64_t n, EcsqRow& out);
void ecsqCandidates(CodeFormat format, const float* w, std::int64_t n, EcsqRow& out, int kFirst, int kLast);

struct EcsqProblem {
  std::vector<EcsqRow> rows;
  bool mse = false;      // distortion: squared error (relative MSE) instead of l1
  double norm = 1;       // D0: sum|w| (l1) or sum w^2 (mse)
  // Non-empty: per-row normalized distortion (`ecsq-l1-row`, `ecsq-mse-row`): D/D0 becomes the mean over rows of
  // D_r / rowNorm[r] (each row's own sum|w| or sum w^2), so every row's relative error counts alike.
  std::vector<double> rowNorm;
  std::uint64_t weights = 0;
  std::function<bool()> keepGoing;  // false cancels with Error(Cancelled)
};

struct EcsqSolution {
  std::vector<std::uint32_t> choice;   // per row, a candidate position
  codec::SymbolCounts counts{};        // histogram of all codes
  std::vector<double> objective;       // J after the start and after each accepted iteration (non-increasing)
  int iterations = 0;                  // accepted iterations
  bool converged = false;              // the last iteration changed no row's choice
};

// Code lengths -log2 p(s) of a histogram; symbols it lacks get a floor probability: they share 2^-20 of the mass
// (the present symbols scale by 1 - 2^-20), so p stays a distribution and new symbols are possible but costly.
std::array<double, 256> ecsqCodeLengths(const codec::SymbolCounts& counts);

// J of a choice: D / D0 (or the mean of D_r / rowNorm_r) + lambda * (Shannon bits of its histogram) / N.
double ecsqObjective(const EcsqProblem& p, std::span<const std::uint32_t> choice, double lambda,
                     codec::SymbolCounts* counts = nullptr);

// Alternates choice and histogram at a fixed lambda, from `start`, for at most maxIterations; an iteration that
// does not lower J is rejected and ends the loop. Ties between candidates go to the larger scale.
EcsqSolution solveEcsq(const EcsqProblem& p, double lambda, std::span<const std::uint32_t> start, int maxIterations,
                       ThreadPool& pool);

// Rate-distortion optimized codes (`--objective ecsq-rdo`): at a fixed row scale, each weight takes the code among
// its nearest code q0, q0's neighbour toward zero and zero that minimizes (w_hat - w)^2 + mu * len[q] (ties to the
// nearest code, then to the larger magnitude), the classic ECSQ encoder rule (Chou, Lookabaugh, Gray 1989). The
// decoder is unchanged: codes keep their meaning, only the choice moves toward cheaper symbols, a dead zone around
// zero that widens as mu grows. Adds the row's codes to `counts` and returns its squared error.
double rdoQuantizeRow(CodeFormat format, const float* w, std::int64_t n, std::uint16_t scaleBf16,
                      const std::array<double, 256>& len, double mu, std::uint8_t* codes, codec::SymbolCounts& counts);

// The code next to q toward zero (q itself for zero).
std::uint8_t codeTowardZero(CodeFormat format, std::uint8_t q);

}  // namespace eq::quant
