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

namespace {

#ifdef __AVX2__
inline float hsum(__m256 v) {
  __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  h = _mm_add_ps(h, _mm_movehl_ps(h, h));
  h = _mm_add_ss(h, _mm_movehdup_ps(h));
  return _mm_cvtss_f32(h);
}

// FP8 E4M3 codes as floats times 2^-8: moved into f16 bit positions (sign, 4 exponent bits, 3 mantissa bits)
// they are f16 values 2^-8 times too small, subnormals included, and vcvtph2ps converts them exactly.
// Sixteen codes at once: one widening load, five integer ops, two conversions.
inline void fp8x16(const std::uint8_t* c, __m256& lo, __m256& hi) {
  const __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
  const __m256i h = _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi16(b, 8), _mm256_set1_epi16(static_cast<short>(0x8000))),
                                    _mm256_and_si256(_mm256_slli_epi16(b, 7), _mm256_set1_epi16(0x3F80)));
  lo = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
  hi = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

float fp8RowDot(const std::uint8_t* c, const float* x, std::int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  std::int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    __m256 w0, w1, w2, w3;
    fp8x16(c + j, w0, w1);
    fp8x16(c + j + 16, w2, w3);
    a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + j + 8), a1);
    a2 = _mm256_fmadd_ps(w2, _mm256_loadu_ps(x + j + 16), a2);
    a3 = _mm256_fmadd_ps(w3, _mm256_loadu_ps(x + j + 24), a3);
  }
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; j < n; ++j) s += fp8E4M3ToF32(c[j]) / 256.0f * x[j];
  return s;
}

inline __m256 bf16x8(const std::uint16_t* p) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline __m256 int8x8(const std::uint8_t* c) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}
#endif

#ifndef __AVX2__
float fp8RowDot(const std::uint8_t* c, const float* x, std::int64_t n) {
  float s = 0;
  for (std::int64_t j = 0; j < n; ++j) s += fp8E4M3ToF32(c[j]) / 256.0f * x[j];
  return s;
}
#endif

// Dot product of one stored row with x, in the row's own format (no decoded copy): the batch-1 (decode) path.
// FP8 rows come back 2^-8 too small; the caller's scale makes up for it.
template <typename Load, typename Scalar>
float rowDot(Load load8, Scalar one, const float* x, std::int64_t n) {
  std::int64_t j = 0;
  float s = 0;
#ifdef __AVX2__
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  for (; j + 16 <= n; j += 16) {
    a0 = _mm256_fmadd_ps(load8(j), _mm256_loadu_ps(x + j), a0);
    a1 = _mm256_fmadd_ps(load8(j + 8), _mm256_loadu_ps(x + j + 8), a1);
  }
  s = hsum(_mm256_add_ps(a0, a1));
#else
  (void)load8;
#endif
  for (; j < n; ++j) s += one(j) * x[j];
  return s;
}

}  // namespace

void Linear::forward(const float* x, std::int64_t n, float* y, ThreadPool& pool) const {
  const bool fp8 = kind == Kind::Codes && format == quant::CodeFormat::Fp8E4M3;
  const float codeScale = fp8 ? 256.0f : 1.0f;  // see fp8x16
  const std::size_t tasks = static_cast<std::size_t>((rows + kRowsPerTask - 1) / kRowsPerTask);
  pool.parallelFor(tasks, [&](std::size_t t) {
    std::vector<float> w(n > 1 && kind != Kind::F32 ? static_cast<std::size_t>(cols) : 0);
    const std::int64_t r0 = static_cast<std::int64_t>(t) * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
    for (std::int64_t r = r0; r < r1; ++r) {
      const std::size_t base = static_cast<std::size_t>(r * cols);
      const float scale = kind == Kind::Codes ? scales[static_cast<std::size_t>(r)] : 1.0f;
      const float b = bias.empty() ? 0.0f : bias[static_cast<std::size_t>(r)];
      if (kind == Kind::F32) {
        for (std::int64_t i = 0; i < n; ++i) y[i * rows + r] = dot(f32.data() + base, x + i * cols, cols) + b;
      } else if (n > 1) {  // prefill: decode the row once, reuse it for every token
        row(r, w.data());
        for (std::int64_t i = 0; i < n; ++i) y[i * rows + r] = dot(w.data(), x + i * cols, cols) + b;
      } else if (kind == Kind::BF16) {
        const std::uint16_t* p = bf16.data() + base;
        y[r] = rowDot([&](std::int64_t j) { return bf16x8(p + j); }, [&](std::int64_t j) { return bf16ToF32(p[j]); },
                      x, cols) + b;
      } else if (fp8) {
        const std::uint8_t* c = codes.data() + base;
        y[r] = fp8RowDot(c, x, cols) * scale * codeScale + b;
      } else {
        const std::uint8_t* c = codes.data() + base;
        y[r] = rowDot([&](std::int64_t j) { return int8x8(c + j); },
                      [&](std::int64_t j) { return static_cast<float>(static_cast<std::int8_t>(c[j])); }, x, cols) *
                   scale + b;
      }
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
