#include "quant/error_feedback.h"

#include "common/error.h"
#include "common/thread_pool.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace eq::quant {
namespace {

// Runs body(i) for i in [i0, i1), in blocks on the pool when there is enough work.
template <typename Body>
void forRange(ThreadPool* pool, std::int64_t i0, std::int64_t i1, std::int64_t workPerIndex, Body&& body) {
  constexpr std::int64_t kBlock = 32;
  if (!pool || pool->size() == 1 || (i1 - i0) * workPerIndex < (1 << 16)) {
    for (std::int64_t i = i0; i < i1; ++i) body(i);
    return;
  }
  pool->parallelFor(static_cast<std::size_t>((i1 - i0 + kBlock - 1) / kBlock), [&](std::size_t b) {
    const std::int64_t s = i0 + static_cast<std::int64_t>(b) * kBlock;
    for (std::int64_t i = s; i < std::min(i1, s + kBlock); ++i) body(i);
  });
}

// In place: the lower Cholesky factor L of a (n x n, row-major; A = L L^T), upper triangle zeroed. False if A is
// not positive definite in floating point.
bool choleskyLower(std::vector<double>& a, std::int64_t n, ThreadPool* pool) {
  for (std::int64_t j = 0; j < n; ++j) {
    double* rj = a.data() + j * n;
    double d = rj[j];
    for (std::int64_t k = 0; k < j; ++k) d -= rj[k] * rj[k];
    if (!(d > 0) || !std::isfinite(d)) return false;
    const double ljj = std::sqrt(d);
    rj[j] = ljj;
    forRange(pool, j + 1, n, j, [&](std::int64_t i) {
      double* ri = a.data() + i * n;
      double s = ri[j];
      for (std::int64_t k = 0; k < j; ++k) s -= ri[k] * rj[k];
      ri[j] = s / ljj;
    });
  }
  for (std::int64_t i = 0; i < n; ++i) std::fill(a.data() + i * n + i + 1, a.data() + (i + 1) * n, 0.0);
  return true;
}

}  // namespace

// Upper triangle in blocks of 4 rows x 16 columns that accumulate in float registers while the rows stream past,
// blocks in parallel; then mirrored.
void InputGram::add(const float* x, std::int64_t rows, ThreadPool* pool) {
  constexpr std::int64_t kRows = 4, kCols = 16;
  const std::int64_t c = n;
  const std::int64_t cp = (c + kCols - 1) / kCols * kCols;  // columns padded with zeros (row blocks fit too)
  std::vector<float> xp(static_cast<std::size_t>(rows * cp), 0.0f);
  for (std::int64_t t = 0; t < rows; ++t) std::copy_n(x + t * c, c, xp.data() + t * cp);
  forRange(pool, 0, (c + kRows - 1) / kRows, rows * c * kRows / 2 + 1, [&](std::int64_t b) {
    const std::int64_t i0 = b * kRows;
    for (std::int64_t j0 = i0 / kCols * kCols; j0 < c; j0 += kCols) {
      float acc[kRows][kCols] = {};
      for (std::int64_t t = 0; t < rows; ++t) {
        const float* xt = xp.data() + t * cp;
        for (std::int64_t r = 0; r < kRows; ++r)
          for (std::int64_t k = 0; k < kCols; ++k) acc[r][k] += xt[i0 + r] * xt[j0 + k];
      }
      for (std::int64_t r = 0; r < kRows && i0 + r < c; ++r) {
        double* gi = xtx.data() + (i0 + r) * c;
        for (std::int64_t k = std::max<std::int64_t>(0, i0 + r - j0); k < kCols && j0 + k < c; ++k) gi[j0 + k] += acc[r][k];
      }
    }
  });
  for (std::int64_t i = 0; i < c; ++i)
    for (std::int64_t j = 0; j < i; ++j) xtx[static_cast<std::size_t>(i * c + j)] = xtx[static_cast<std::size_t>(j * c + i)];
  tokens += static_cast<std::uint64_t>(rows);
}

ErrorFeedback ErrorFeedback::factor(const InputGram& gram, double damp, ThreadPool* pool) {
  const std::int64_t n = gram.n;
  if (n <= 0 || gram.xtx.size() != static_cast<std::size_t>(n * n))
    fail(Errc::InvalidArgument, "input statistics of size {} hold {} values", n, gram.xtx.size());
  std::vector<double> diag(static_cast<std::size_t>(n));
  double mean = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    const double d = gram.xtx[static_cast<std::size_t>(i * n + i)];
    if (!std::isfinite(d)) fail(Errc::InvalidArgument, "input statistics are not finite");
    diag[static_cast<std::size_t>(i)] = d > 0 ? d : 1.0;
    mean += diag[static_cast<std::size_t>(i)];
  }
  mean /= static_cast<double>(n);
  ErrorFeedback ef;
  ef.n_ = n;
  ef.perm_.resize(static_cast<std::size_t>(n));
  std::iota(ef.perm_.begin(), ef.perm_.end(), 0);
  std::stable_sort(ef.perm_.begin(), ef.perm_.end(), [&](auto a, auto b) { return diag[a] > diag[b]; });

  if (!(damp >= 0) || !std::isfinite(damp)) fail(Errc::InvalidArgument, "damping must be finite and not negative");
  for (;; damp = damp > 0 ? damp * 10 : 1e-4) {
    // H in coding order, damped.
    std::vector<double> a(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const auto pi = ef.perm_[static_cast<std::size_t>(i)], pj = ef.perm_[static_cast<std::size_t>(j)];
        a[static_cast<std::size_t>(i * n + j)] = i == j ? diag[pi] + damp * mean : gram.xtx[static_cast<std::size_t>(pi * n + pj)];
      }
    if (!choleskyLower(a, n, pool)) {
      if (damp >= 1) fail(Errc::InvalidArgument, "input statistics are not positive definite even with damping 1");
      continue;
    }
    // L^-1 (lower), then its transpose M = L^-T (upper) row-major, so H^-1 = M M^T with contiguous rows.
    std::vector<double> m(static_cast<std::size_t>(n * n), 0.0);  // m[i][k] = (L^-1)[k][i]
    forRange(pool, 0, n, n * n / 2, [&](std::int64_t c) {  // column c of L^-1: forward substitution
      std::vector<double> x(static_cast<std::size_t>(n), 0.0);
      x[c] = 1.0 / a[c * n + c];
      for (std::int64_t i = c + 1; i < n; ++i) {
        const double* ri = a.data() + i * n;
        double s = 0;
        for (std::int64_t k = c; k < i; ++k) s -= ri[k] * x[k];
        x[i] = s / ri[i];
      }
      for (std::int64_t i = c; i < n; ++i) m[c * n + i] = x[i];
    });
    // H^-1[i][j] = sum_k m[i][k] m[j][k] (k >= max(i, j)); lower triangle, then its lower Cholesky factor V,
    // whose transpose is the upper factor U (H^-1 = V V^T = U^T U).
    std::vector<double> hinv(static_cast<std::size_t>(n * n), 0.0);
    forRange(pool, 0, n, n * n / 2, [&](std::int64_t i) {
      for (std::int64_t j = 0; j <= i; ++j) {
        const double* ri = m.data() + i * n;
        const double* rj = m.data() + j * n;
        double s = 0;
        for (std::int64_t k = i; k < n; ++k) s += ri[k] * rj[k];
        hinv[i * n + j] = hinv[j * n + i] = s;
      }
    });
    if (!choleskyLower(hinv, n, pool)) {
      if (damp >= 1) fail(Errc::InvalidArgument, "input statistics are not positive definite even with damping 1");
      continue;
    }
    ef.u_.assign(static_cast<std::size_t>(n * n), 0.0f);
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t k = i; k < n; ++k) ef.u_[static_cast<std::size_t>(i * n + k)] = static_cast<float>(hinv[k * n + i]);
    return ef;
  }
}

void ErrorFeedback::quantizeRow(CodeFormat f, const float* w, std::uint16_t scale, std::uint8_t* codes,
                                float* x) const {
  const float s = bf16ToF32(scale);
  for (std::int64_t i = 0; i < n_; ++i) x[i] = w[perm_[static_cast<std::size_t>(i)]];
  for (std::int64_t i = 0; i < n_; ++i) {
    const std::uint8_t q = quantizeOne(f, x[i], s);
    codes[perm_[static_cast<std::size_t>(i)]] = q;
    const float* ui = u_.data() + i * n_;
    const float e = (x[i] - bf16ToF32(dequantizeOne(f, q, s))) / ui[i];
    for (std::int64_t k = i + 1; k < n_; ++k) x[k] -= e * ui[k];
  }
}

}  // namespace eq::quant
