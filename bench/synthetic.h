// LLM-like synthetic weights for benchmarks: Student-t(3) values times a log-normal scale per row, in bf16.
#pragma once

#include "common/numerics.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace eqbench {

inline std::vector<std::uint16_t> heavyTailedBf16(std::int64_t rows, std::int64_t cols, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::student_t_distribution<double> t(3.0);
  std::normal_distribution<double> ln(0.0, 0.5);
  std::vector<std::uint16_t> w(static_cast<std::size_t>(rows * cols));
  for (std::int64_t r = 0; r < rows; ++r) {
    const double scale = 0.02 * std::exp(ln(rng));
    for (std::int64_t j = 0; j < cols; ++j) w[static_cast<std::size_t>(r * cols + j)] = eq::f32ToBf16(static_cast<float>(t(rng) * scale));
  }
  return w;
}

template <typename F>
double bestSeconds(int runs, F&& f) {
  double best = 1e300;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

}  // namespace eqbench
