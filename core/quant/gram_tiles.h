// Internal to error_feedback.cpp and gram_avx512.cpp: the tiles of the Gram products out += a^T b.
#pragma once

#include <algorithm>
#include <cstdint>

namespace eq::quant::detail {

// Adds a kRows x kCols tile of float sums (row-major, kCols apart) at rows i0.., columns j0.. of the c x c
// double matrix out: the part inside it, and with `upper` only its elements j >= i.
inline void addTile(const float* acc, std::int64_t kRows, std::int64_t kCols, std::int64_t c, std::int64_t i0,
                    std::int64_t j0, bool upper, double* out) {
  for (std::int64_t r = 0; r < kRows && i0 + r < c; ++r) {
    double* gi = out + (i0 + r) * c;
    const std::int64_t k0 = upper ? std::max<std::int64_t>(0, i0 + r - j0) : 0;
    for (std::int64_t k = k0; k < kCols && j0 + k < c; ++k) gi[j0 + k] += acc[r * kCols + k];
  }
}

// For rows i0..i0+3 of the output: every tile of 4 rows x 32 columns (from the diagonal's tile on with `upper`).
// xa, xb: [rows][cp], cp a multiple of 32, zero past column c.
void gramTilesAvx512(const float* xa, const float* xb, std::int64_t rows, std::int64_t cp, std::int64_t c,
                     std::int64_t i0, bool upper, double* out);

}  // namespace eq::quant::detail
