// Scalar number formats used by checkpoints and by EntQuant codes: bf16, f16, f32 and Float8 E4M3FN.
// Every conversion here is bit-exact with PyTorch (checked against its output in tests/test_numerics).
#pragma once

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <vector>

namespace eq {

// ---- bf16 ----------------------------------------------------------------------------------------------
inline float bf16ToF32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

// Round to nearest even; every NaN becomes the canonical 0x7FC0 (as c10::BFloat16 does).
inline uint16_t f32ToBf16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return 0x7FC0;
  const uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>((u + rounding) >> 16);
}

// ---- IEEE half (f16) -------------------------------------------------------------------------------------
float f16ToF32(uint16_t h);
// Round to nearest even, overflow to infinity, NaN stays NaN (sign and top payload bits kept, quiet bit set).
uint16_t f32ToF16(float f);

// ---- Float8 E4M3FN ---------------------------------------------------------------------------------------
// 1 sign, 4 exponent (bias 7), 3 mantissa bits; finite only: max 448, 0x7F/0xFF are NaN, subnormals k * 2^-9.
inline constexpr float kFp8E4M3Max = 448.0f;

namespace detail {
constexpr std::array<float, 256> makeFp8E4M3Table() {
  std::array<float, 256> t{};
  for (int c = 0; c < 256; ++c) {
    const int e = (c >> 3) & 0xF, m = c & 7;
    float v;
    if ((c & 0x7F) == 0x7F) {
      v = __builtin_nanf("");
    } else if (e == 0) {
      v = static_cast<float>(m) / 512.0f;  // m * 2^-9
    } else {
      float scale = 1.0f;
      for (int i = 7; i < e; ++i) scale *= 2.0f;
      for (int i = e; i < 7; ++i) scale *= 0.5f;
      v = (1.0f + static_cast<float>(m) / 8.0f) * scale;
    }
    t[c] = (c & 0x80) ? -v : v;
  }
  return t;
}
}  // namespace detail

inline constexpr std::array<float, 256> kFp8E4M3ToF32 = detail::makeFp8E4M3Table();

inline float fp8E4M3ToF32(uint8_t code) { return kFp8E4M3ToF32[code]; }

// Saturating encode (ENTQUANT.md section 1: clamp to +-448, then cast): round to nearest even, |x| >= 448 and
// infinities give +-448, NaN gives 0x7F with the input's sign. -0 and values rounding to zero from below give 0x80.
inline uint8_t f32ToFp8E4M3(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7F;
  if (a >= 0x43E00000u) return sign | 0x7E;  // >= 448 (and +-inf): saturate
  if (a < 0x3C800000u) {                     // < 2^-6: subnormal range, uniform steps of 2^-9
    // |x| * 512 is exact; nearbyint rounds half to even. Result 0..8, and 8 is the code of 2^-6.
    const float q = std::nearbyint(std::bit_cast<float>(a) * 512.0f);
    return sign | static_cast<uint8_t>(q);
  }
  // Normal: keep 3 mantissa bits with round-to-nearest-even on the f32 bits, then rebias the exponent 127 -> 7.
  const uint32_t rounded = (a + 0x7FFFFu + ((a >> 20) & 1u)) >> 20;
  return sign | static_cast<uint8_t>(rounded - ((127u - 7u) << 3));
}

// PyTorch's plain cast x.to(float8_e4m3fn): like the above but without saturation: magnitudes that round past 448
// (>= 464 after rounding to even... i.e. > 464, or >= 480) and infinities become NaN.
uint8_t f32ToFp8E4M3Unsaturated(float x);

// log-softmax of one row of v logits, in doubles (out is resized to v).
void logSoftmax(const float* row, std::int64_t v, std::vector<double>& out);

}  // namespace eq
