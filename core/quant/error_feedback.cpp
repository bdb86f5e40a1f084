#include "quant/error_feedback.h"
#include "quant/ecsq.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "common/cpu_isa.h"
#include "quant/gram_tiles.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::quant {
namespace {

// Runs body(i) for i in [i0, i1): inline for little work, else in about 4 tasks per thread (indices may cost
// unequal work) on the pool.
template <typename Body>
void forRange(ThreadPool* pool, std::int64_t i0, std::int64_t i1, std::int64_t workPerIndex, Body&& body) {
  if (!pool || pool->size() == 1 || (i1 - i0) * workPerIndex < (1 << 16)) {
    for (std::int64_t i = i0; i < i1; ++i) body(i);
    return;
  }
  const std::int64_t tasks = std::min<std::int64_t>(i1 - i0, 4 * static_cast<std::int64_t>(pool->size()));
  const std::int64_t block = (i1 - i0 + tasks - 1) / tasks;
  pool->parallelFor(static_cast<std::size_t>((i1 - i0 + block - 1) / block), [&](std::size_t b) {
    const std::int64_t s = i0 + static_cast<std::int64_t>(b) * block;
    for (std::int64_t i = s; i < std::min(i1, s + block); ++i) body(i);
  });
}

// sum a[k] b[k], k < n (four-wide FMA lanes on the x86-64-v3 baseline).
double dot(const double* a, const double* b, std::int64_t n) {
  std::int64_t k = 0;
  double s = 0;
#ifdef __AVX2__
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for (; k + 8 <= n; k += 8) {
    s0 = _mm256_fmadd_pd(_mm256_loadu_pd(a + k), _mm256_loadu_pd(b + k), s0);
    s1 = _mm256_fmadd_pd(_mm256_loadu_pd(a + k + 4), _mm256_loadu_pd(b + k + 4), s1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(s0, s1));
  s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; k < n; ++k) s += a[k] * b[k];
  return s;
}

// In place: the lower Cholesky factor L of a (n x n, row-major; A = L L^T), upper triangle zeroed. False if A is
// not positive definite in floating point. Left-looking by blocks of 16 rows: each earlier row of L is read once per
// block (not once per row), and the rows of a block are shared out over the pool.
bool choleskyLower(std::vector<double>& a, std::int64_t n, ThreadPool* pool) {
  constexpr std::int64_t kRows = 16;
  for (std::int64_t i0 = 0; i0 < n; i0 += kRows) {
    const std::int64_t i1 = std::min(n, i0 + kRows);
    // Columns before the block (rows j < i0 of L are final): groups of 8 rows in parallel, each earlier row read
    // once per group.
    constexpr std::int64_t kGroup = 8;
    forRange(pool, 0, (i1 - i0 + kGroup - 1) / kGroup, kGroup * i0 * i0 / 2, [&](std::int64_t g) {
      const std::int64_t g0 = i0 + g * kGroup, g1 = std::min(i1, g0 + kGroup);
      for (std::int64_t j = 0; j < i0; ++j) {
        const double* rj = a.data() + j * n;
        for (std::int64_t i = g0; i < g1; ++i) {
          double* ri = a.data() + i * n;
          ri[j] = (ri[j] - dot(ri, rj, j)) / rj[j];
        }
      }
    });
    // Columns inside the block, in order.
    for (std::int64_t j = i0; j < i1; ++j) {
      double* rj = a.data() + j * n;
      const double d = rj[j] - dot(rj, rj, j);
      if (!(d > 0) || !std::isfinite(d)) return false;
      rj[j] = std::sqrt(d);
      for (std::int64_t i = j + 1; i < i1; ++i) {
        double* ri = a.data() + i * n;
        ri[j] = (ri[j] - dot(ri, rj, j)) / rj[j];
      }
    }
  }
  for (std::int64_t i = 0; i < n; ++i) std::fill(a.data() + i * n + i + 1, a.data() + (i + 1) * n, 0.0);
  return true;
}

}  // namespace

namespace {

// out[i][j] += sum_t a[t][i] b[t][j] (a, b [rows][c], out c x c row-major): blocks of 4 rows x 16 columns (32
// with AVX-512) that accumulate in float registers while the rows stream past, blocks in parallel. `upper`: only
// j >= i (a == b). Every element is one chain of fused multiply-adds over t in order, whatever the width: the
// same sums on every CPU that has FMA. The padded copies are kept per thread (fresh pages for each call cost a
// tenth of a calibration's time).
void addProducts(const float* a, const float* b, std::int64_t rows, std::int64_t c, double* out, bool upper,
                 ThreadPool* pool) {
  constexpr std::int64_t kRows = 4, kCols = 16, kPad = 32;
  const std::int64_t cp = (c + kPad - 1) / kPad * kPad;  // columns padded with zeros (row blocks fit too)
  thread_local std::vector<float> ap, bp;
  auto pad = [&](const float* x, std::vector<float>& to) {
    if (to.size() < static_cast<std::size_t>(rows * cp)) to.resize(static_cast<std::size_t>(rows * cp));
    for (std::int64_t t = 0; t < rows; ++t) {
      std::copy_n(x + t * c, c, to.data() + t * cp);
      std::fill(to.data() + t * cp + c, to.data() + (t + 1) * cp, 0.0f);
    }
  };
  pad(a, ap);
  if (a != b) pad(b, bp);
  const float* xa = ap.data();
  const float* xb = a != b ? bp.data() : ap.data();
#ifdef EQ_X86_KERNELS
  const KernelIsa isa = kernelIsa();
  const bool wide = isa == KernelIsa::Avx512 || isa == KernelIsa::Avx512Bw || isa == KernelIsa::Amx;
#else
  constexpr bool wide = false;
#endif
  forRange(pool, 0, (c + kRows - 1) / kRows, rows * c * kRows / (upper ? 2 : 1) + 1, [&](std::int64_t blk) {
    const std::int64_t i0 = blk * kRows;
#ifdef EQ_X86_KERNELS
    if (wide) return detail::gramTilesAvx512(xa, xb, rows, cp, c, i0, upper, out);
#endif
    for (std::int64_t j0 = upper ? i0 / kCols * kCols : 0; j0 < c; j0 += kCols) {
      alignas(32) float acc[kRows][kCols] = {};
#ifdef __AVX2__
      // 4 x 16 floats in eight registers: per token two loads, four broadcasts, eight FMAs.
      __m256 a0l = _mm256_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l, a2l = a0l, a2h = a0l, a3l = a0l, a3h = a0l;
      for (std::int64_t t = 0; t < rows; ++t) {
        const float* at = xa + t * cp;
        const float* bt = xb + t * cp;
        const __m256 lo = _mm256_loadu_ps(bt + j0), hi = _mm256_loadu_ps(bt + j0 + 8);
        __m256 v = _mm256_broadcast_ss(at + i0);
        a0l = _mm256_fmadd_ps(v, lo, a0l), a0h = _mm256_fmadd_ps(v, hi, a0h);
        v = _mm256_broadcast_ss(at + i0 + 1);
        a1l = _mm256_fmadd_ps(v, lo, a1l), a1h = _mm256_fmadd_ps(v, hi, a1h);
        v = _mm256_broadcast_ss(at + i0 + 2);
        a2l = _mm256_fmadd_ps(v, lo, a2l), a2h = _mm256_fmadd_ps(v, hi, a2h);
        v = _mm256_broadcast_ss(at + i0 + 3);
        a3l = _mm256_fmadd_ps(v, lo, a3l), a3h = _mm256_fmadd_ps(v, hi, a3h);
      }
      _mm256_store_ps(acc[0], a0l), _mm256_store_ps(acc[0] + 8, a0h);
      _mm256_store_ps(acc[1], a1l), _mm256_store_ps(acc[1] + 8, a1h);
      _mm256_store_ps(acc[2], a2l), _mm256_store_ps(acc[2] + 8, a2h);
      _mm256_store_ps(acc[3], a3l), _mm256_store_ps(acc[3] + 8, a3h);
#else
      for (std::int64_t t = 0; t < rows; ++t) {
        const float* at = xa + t * cp;
        const float* bt = xb + t * cp;
        for (std::int64_t r = 0; r < kRows; ++r)
          for (std::int64_t k = 0; k < kCols; ++k) acc[r][k] = std::fma(at[i0 + r], bt[j0 + k], acc[r][k]);
      }
#endif
      detail::addTile(&acc[0][0], kRows, kCols, c, i0, j0, upper, out);
    }
  });
}

}  // namespace

void InputGram::add(const float* x, std::int64_t rows, ThreadPool* pool) {
  const std::int64_t c = n;
  addProducts(x, x, rows, c, xtx.data(), true, pool);
  for (std::int64_t i = 0; i < c; ++i)
    for (std::int64_t j = 0; j < i; ++j) xtx[static_cast<std::size_t>(i * c + j)] = xtx[static_cast<std::size_t>(j * c + i)];
  tokens += static_cast<std::uint64_t>(rows);
}

void InputGram::addShift(const float* original, const float* x, std::int64_t rows, ThreadPool* pool) {
  const std::int64_t c = n;
  thread_local std::vector<float> delta;  // kept, as addProducts' copies
  delta.resize(static_cast<std::size_t>(rows * c));
  for (std::size_t k = 0; k < delta.size(); ++k) delta[k] = original[k] - x[k];
  if (shift.empty()) shift.assign(xtx.size(), 0.0);
  addProducts(delta.data(), x, rows, c, shift.data(), false, pool);
  add(x, rows, pool);
}

void compensateInputShift(const InputGram& g, float* w, std::int64_t rows, double damp, ThreadPool* pool) {
  const std::int64_t n = g.n;
  if (g.shift.size() != static_cast<std::size_t>(n * n))
    fail(Errc::InvalidArgument, "input statistics of size {} hold no shift", n);
  // L L^T = H + damp * mean(diag H) * I
  double mean = 0;
  for (std::int64_t i = 0; i < n; ++i) mean += std::max(g.xtx[static_cast<std::size_t>(i * n + i)], 0.0);
  mean = mean > 0 ? mean / static_cast<double>(n) : 1.0;
  std::vector<double> l;
  for (double d = damp;; d = d > 0 ? d * 10 : 1e-4) {
    l = g.xtx;
    for (std::int64_t i = 0; i < n; ++i) l[static_cast<std::size_t>(i * n + i)] += d * mean;
    if (choleskyLower(l, n, pool)) break;
    if (d >= 1) fail(Errc::InvalidArgument, "input statistics are not positive definite even with damping 1");
  }
  // Row k of M solves (H + dI) m = d_k (D's row k), by forward substitution with L, then back substitution with
  // L^T (kept as rows, so that both read memory in order).
  std::vector<double> lt(static_cast<std::size_t>(n * n));
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j <= i; ++j) lt[static_cast<std::size_t>(j * n + i)] = l[static_cast<std::size_t>(i * n + j)];
  std::vector<float> m(static_cast<std::size_t>(n * n));
  forRange(pool, 0, n, 2 * n * n, [&](std::int64_t k) {
    std::vector<double> y(g.shift.begin() + k * n, g.shift.begin() + (k + 1) * n);
    for (std::int64_t i = 0; i < n; ++i) y[i] = (y[i] - dot(l.data() + i * n, y.data(), i)) / l[i * n + i];
    for (std::int64_t i = n - 1; i >= 0; --i)
      y[i] = (y[i] - dot(lt.data() + i * n + i + 1, y.data() + i + 1, n - 1 - i)) / lt[i * n + i];
    for (std::int64_t i = 0; i < n; ++i) m[static_cast<std::size_t>(k * n + i)] = static_cast<float>(y[i]);
  });
  // w += w M, row by row
  forRange(pool, 0, rows, n * n, [&](std::int64_t r) {
    float* wr = w + r * n;
    std::vector<float> add(static_cast<std::size_t>(n), 0.0f);
    for (std::int64_t k = 0; k < n; ++k) {
      const float wk = wr[k];
      const float* mk = m.data() + k * n;
      for (std::int64_t j = 0; j < n; ++j) add[j] += wk * mk[j];
    }
    for (std::int64_t j = 0; j < n; ++j) wr[j] += add[j];
  });
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
  ef.meanDiag_ = mean;
  ef.perm_.resize(static_cast<std::size_t>(n));
  std::iota(ef.perm_.begin(), ef.perm_.end(), 0);
  std::stable_sort(ef.perm_.begin(), ef.perm_.end(), [&](auto a, auto b) { return diag[a] > diag[b]; });

  if (!(damp >= 0) || !std::isfinite(damp)) fail(Errc::InvalidArgument, "damping must be finite and not negative");
  // U comes from one Cholesky factorization and one triangular inverse: with J the order reversal, J H J = L L^T
  // gives H = R R^T for the upper triangular R = J L J, so H^-1 = R^-T R^-1 and U = R^-1 = J L^-1 J.
  for (;; damp = damp > 0 ? damp * 10 : 1e-4) {
    // J H J in coding order, damped: a[i][j] = H[perm[n-1-i]][perm[n-1-j]].
    std::vector<double> a(static_cast<std::size_t>(n * n));
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < n; ++j) {
        const auto pi = ef.perm_[static_cast<std::size_t>(n - 1 - i)], pj = ef.perm_[static_cast<std::size_t>(n - 1 - j)];
        a[static_cast<std::size_t>(i * n + j)] = i == j ? diag[pi] + damp * mean : gram.xtx[static_cast<std::size_t>(pi * n + pj)];
      }
    if (!choleskyLower(a, n, pool)) {
      if (damp >= 1) fail(Errc::InvalidArgument, "input statistics are not positive definite even with damping 1");
      continue;
    }
    ef.meanDiag_ = mean * (1 + damp);
    // Column c of L^-1 by forward substitution, x[i] = -(L[i][c..i) . x[c..i)) / L[i][i]; it is column n-1-c of U
    // read backwards: U[n-1-i][n-1-c] = x[i]. Eight columns at a time, so each row of L is read once for all eight.
    constexpr std::int64_t kCols = 8;
    ef.u_.assign(static_cast<std::size_t>(n * n), 0.0f);
    forRange(pool, 0, (n + kCols - 1) / kCols, kCols * n * n / 4, [&](std::int64_t block) {
      const std::int64_t c0 = block * kCols, c1 = std::min(n, c0 + kCols);
      std::vector<double> x(static_cast<std::size_t>(kCols * n), 0.0);  // x[b][i]: column c0 + b
      for (std::int64_t i = c0; i < n; ++i) {
        const double* ri = a.data() + i * n;
        for (std::int64_t c = c0; c < c1 && c <= i; ++c) {
          double* xc = x.data() + (c - c0) * n;
          xc[i] = i == c ? 1.0 / ri[i] : -dot(ri + c, xc + c, i - c) / ri[i];
          ef.u_[static_cast<std::size_t>((n - 1 - i) * n + (n - 1 - c))] = static_cast<float>(xc[i]);
        }
      }
    });
    return ef;
  }
}

void ErrorFeedback::quantizeRow(CodeFormat f, const float* w, std::uint16_t scale, std::uint8_t* codes,
                                float* scratch) const {
  quantizeRows(f, w, 1, &scale, codes, scratch);
}

void ErrorFeedback::quantizeRows(CodeFormat f, const float* w, std::int64_t rows, const std::uint16_t* scales,
                                 std::uint8_t* codes, float* x) const {
  quantizeRowsRdo(f, w, rows, scales, nullptr, 0, codes, x);
}

void ErrorFeedback::quantizeRowsRdo(CodeFormat f, const float* w, std::int64_t rows, const std::uint16_t* scales,
                                    const double* len, double mu, std::uint8_t* codes, float* x) const {
  const std::int64_t n = n_;
  const bool rdo = len && mu > 0;
  std::vector<float> s(static_cast<std::size_t>(rows)), e(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    s[r] = bf16ToF32(scales[r]);
    for (std::int64_t i = 0; i < n; ++i) x[r * n + i] = w[r * n + perm_[static_cast<std::size_t>(i)]];
  }
  for (std::int64_t i = 0; i < n; ++i) {
    const float* ui = u_.data() + i * n;  // read once for all the rows
    const std::int64_t col = perm_[static_cast<std::size_t>(i)];
    // the output error per squared weight error of this column, over mean(diag H)
    const double weight = rdo ? 1.0 / (static_cast<double>(ui[i]) * ui[i] * meanDiag_) : 0.0;
    for (std::int64_t r = 0; r < rows; ++r) {
      const float xi = x[r * n + i];
      std::uint8_t q = quantizeOne(f, xi, s[r]);
      if (rdo && q != 0) {
        auto cost = [&](std::uint8_t c) {
          const double d = static_cast<double>(bf16ToF32(dequantizeOne(f, c, s[r]))) - xi;
          return d * d * weight + mu * len[c];
        };
        double best = cost(q);
        const std::uint8_t q1 = codeTowardZero(f, q);
        if (const double c1 = cost(q1); c1 < best) {
          best = c1;
          q = q1;
        }
        if (q != 0 && cost(0) < best) q = 0;
      }
      codes[r * n + col] = q;
      e[r] = (xi - bf16ToF32(dequantizeOne(f, q, s[r]))) / ui[i];
    }
    for (std::int64_t r = 0; r < rows; ++r) {
      float* xr = x + r * n;
      const float er = e[r];
      for (std::int64_t k = i + 1; k < n; ++k) xr[k] -= er * ui[k];
    }
  }
}

}  // namespace eq::quant
