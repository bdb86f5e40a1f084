#include "model/linear.h"

#include "common/numerics.h"
#include "common/thread_pool.h"

#include <algorithm>
#include <array>

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::model {
namespace {

constexpr std::int64_t kRowsPerTask = 16;

float dot(const float* a, const float* b, std::int64_t n) {
  std::int64_t j = 0;
  float s = 0;
#ifdef __AVX2__
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (; j + 16 <= n; j += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), acc1);
  }
  const __m256 acc = _mm256_add_ps(acc0, acc1);
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  s = _mm_cvtss_f32(h);
#endif
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

}  // namespace

void Linear::row(std::int64_t r, float* out) const {
  const std::size_t base = static_cast<std::size_t>(r * cols);
  switch (kind) {
    case Kind::F32:
      std::copy_n(f32.data() + base, cols, out);
      break;
    case Kind::BF16:
      for (std::int64_t j = 0; j < cols; ++j) out[j] = bf16ToF32(bf16[base + j]);
      break;
    case Kind::Codes: {
      const float s = scales[static_cast<std::size_t>(r)];
      for (std::int64_t j = 0; j < cols; ++j) out[j] = quant::codeValue(format, codes[base + j]) * s;
      break;
    }
  }
}

void Linear::forward(const float* x, std::int64_t n, float* y, ThreadPool& pool) const {
  const std::size_t tasks = static_cast<std::size_t>((rows + kRowsPerTask - 1) / kRowsPerTask);
  pool.parallelFor(tasks, [&](std::size_t t) {
    std::vector<float> w(static_cast<std::size_t>(cols));
    std::array<float, 256> lut{};
    if (kind == Kind::Codes)
      for (int c = 0; c < 256; ++c) lut[c] = quant::codeValue(format, static_cast<std::uint8_t>(c));
    const std::int64_t r0 = static_cast<std::int64_t>(t) * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
    for (std::int64_t r = r0; r < r1; ++r) {
      const float* wr = w.data();
      float scale = 1.0f;
      const std::size_t base = static_cast<std::size_t>(r * cols);
      if (kind == Kind::F32) {
        wr = f32.data() + base;
      } else if (kind == Kind::BF16) {
        for (std::int64_t j = 0; j < cols; ++j) w[j] = bf16ToF32(bf16[base + j]);
      } else {  // codes: decode the row once (table lookup), scale once per row
        for (std::int64_t j = 0; j < cols; ++j) w[j] = lut[codes[base + j]];
        scale = scales[static_cast<std::size_t>(r)];
      }
      const float b = bias.empty() ? 0.0f : bias[static_cast<std::size_t>(r)];
      for (std::int64_t i = 0; i < n; ++i) y[i * rows + r] = dot(wr, x + i * cols, cols) * scale + b;
    }
  });
}

Linear Linear::sliceRows(std::int64_t r0, std::int64_t r1) const {
  Linear l;
  l.kind = kind;
  l.format = format;
  l.rows = r1 - r0;
  l.cols = cols;
  const auto b = static_cast<std::size_t>(r0 * cols), e = static_cast<std::size_t>(r1 * cols);
  if (kind == Kind::F32) l.f32.assign(f32.begin() + b, f32.begin() + e);
  if (kind == Kind::BF16) l.bf16.assign(bf16.begin() + b, bf16.begin() + e);
  if (kind == Kind::Codes) {
    l.codes.assign(codes.begin() + b, codes.begin() + e);
    l.scales.assign(scales.begin() + r0, scales.begin() + r1);
  }
  if (!bias.empty()) l.bias.assign(bias.begin() + r0, bias.begin() + r1);
  return l;
}

std::uint64_t Linear::bytes() const {
  return f32.size() * 4 + bf16.size() * 2 + codes.size() + scales.size() * 2 + bias.size() * 4;
}

}  // namespace eq::model
