// Error-feedback code choice for EntQuant's fixed row scales (the column sweep of GPTQ, Frantar et al. 2023, with
// its act-order): given the Gram matrix H = sum x x^T of a layer's inputs, the codes of a row are chosen column by
// column, and each column's rounding error is spread over the columns not yet coded so that the error of the
// layer's output, (w - w_hat) X, stays small rather than the error of the weights. The scale of a row is fixed
// (the objective chose it), so rows are independent and run in parallel; the stored format and the decoder do not
// change. With H = I it gives exactly the nearest codes.
#pragma once

#include "quant/code_format.h"

#include <cstdint>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::quant {

// sum x x^T over the calibration tokens that fed a layer: n x n, row-major, symmetric.
struct InputGram {
  std::int64_t n = 0;
  std::uint64_t tokens = 0;
  std::vector<double> xtx;

  explicit InputGram(std::int64_t features = 0)
      : n(features), xtx(static_cast<std::size_t>(features * features), 0.0) {}
  // Where the compressed model's inputs x differ from the original model's x0 at the same positions (GPTAQ, Li et
  // al. 2025): D = sum (x0 - x) x^T, n x n row-major; empty when not gathered.
  std::vector<double> shift;

  // Adds X^T X of X [rows][n] (float products summed in float over the rows, then added in double), on the pool
  // when given.
  void add(const float* x, std::int64_t rows, ThreadPool* pool = nullptr);
  // Adds X^T X, and (X0 - X)^T X to `shift`, for the compressed model's inputs X and the original's X0 [rows][n].
  void addShift(const float* original, const float* x, std::int64_t rows, ThreadPool* pool = nullptr);
};

// The weights whose output on the compressed model's inputs best matches the original layer's on the original
// inputs: argmin sum ||W x0 - W' x||^2 = W + W D (H + damp * mean(diag H) * I)^-1, in place on w [rows][n] (the
// damping only regularizes the correction). Error feedback with H then codes W' so that its output error over x
// stays small. Throws Error(InvalidArgument) without `shift` or for an H that is not positive definite.
void compensateInputShift(const InputGram& gram, float* w, std::int64_t rows, double damp = 0.01,
                          ThreadPool* pool = nullptr);

class ErrorFeedback {
 public:
  // Factors H + damp * mean(diag H) * I (a column that never saw a non-zero input gets H_ii = 1 first): the
  // columns in order of decreasing H_ii, and the upper Cholesky factor U of the inverse in that order. The damping
  // grows tenfold (from 1e-4 when 0; up to 1) until the factorization succeeds. O(n^3), on the pool when given. Throws
  // Error(InvalidArgument) for an empty or non-finite H.
  static ErrorFeedback factor(const InputGram& gram, double damp = 0.01, ThreadPool* pool = nullptr);

  std::int64_t size() const { return n_; }
  // Codes of one row of n weights at `scale`: column perm[i] in turn takes the nearest code of its current value
  // (quantizeOne), and its error divided by U[i][i] is subtracted, times U[i][k], from every later column k.
  // scratch holds n floats.
  void quantizeRow(CodeFormat f, const float* w, std::uint16_t scale, std::uint8_t* codes, float* scratch) const;
  // The same for `rows` rows at once (w and codes rows x n, one scale each; scratch rows x n floats): the same
  // codes, with each row of U read once for all of them.
  void quantizeRows(CodeFormat f, const float* w, std::int64_t rows, const std::uint16_t* scales, std::uint8_t* codes,
                    float* scratch) const;
  // Rate-aware (`--objective ecsq-rdo` with calibration): as quantizeRows, but each column may take, instead of its
  // nearest code, the code next to it toward zero or zero, where that costs less in output error plus mu x code
  // length (len[q] bits): the output error of a choice is its weight error squared over U[i][i]^2 x mean(diag H),
  // so that mu has ECSQ's units of squared weight error per bit whatever the inputs' scale (for H = c I it is
  // rdoQuantizeRow's rule). The feedback then spreads the error of whichever code was taken.
  void quantizeRowsRdo(CodeFormat f, const float* w, std::int64_t rows, const std::uint16_t* scales,
                       const double* len, double mu, std::uint8_t* codes, float* scratch) const;

 private:
  std::int64_t n_ = 0;
  std::vector<std::int32_t> perm_;  // coding order
  std::vector<float> u_;            // n x n, row-major, upper triangle used
  double meanDiag_ = 1;             // mean(diag H) after damping
};

}  // namespace eq::quant
