#include "common/numerics.h"

#include <algorithm>
#include <cmath>

namespace eq {

float f16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (man << 13));
  if (exp == 0) {
    const float v = static_cast<float>(man) * 0x1p-24f;  // subnormal: man * 2^-24 (exact)
    return sign ? -v : v;
  }
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t f32ToF16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u | static_cast<uint16_t>((a >> 13) & 0x3FFu);  // NaN, quieted
  if (a >= 0x477FF000u) return sign | 0x7C00u;  // rounds to >= 65520: infinity
  if (a < 0x38800000u) {                        // below 2^-14: f16 subnormal, steps of 2^-24
    const float q = std::nearbyint(std::bit_cast<float>(a) * 0x1p24f);
    return sign | static_cast<uint16_t>(q);
  }
  const uint32_t rounded = (a + 0xFFFu + ((a >> 13) & 1u)) >> 13;
  return sign | static_cast<uint16_t>(rounded - ((127u - 15u) << 10));
}

uint8_t f32ToFp8E4M3Unsaturated(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a >= 0x43F00000u) return sign | 0x7F;  // >= 480, inf, NaN (c10's fp8_max check)
  if (a > 0x43E80000u) return sign | 0x7F;   // (464, 480): rounds up to the NaN pattern
  return f32ToFp8E4M3(x);                    // <= 464: 464 is a tie and rounds to even 448
}

void logSoftmax(const float* row, std::int64_t v, std::vector<double>& out) {
  out.resize(static_cast<std::size_t>(v));
  const double mx = *std::max_element(row, row + v);
  double sum = 0;
  for (std::int64_t k = 0; k < v; ++k) sum += std::exp(static_cast<double>(row[k]) - mx);
  const double lse = std::log(sum) + mx;
  for (std::int64_t k = 0; k < v; ++k) out[static_cast<std::size_t>(k)] = row[k] - lse;
}

}  // namespace eq
