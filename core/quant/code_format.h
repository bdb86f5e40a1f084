// The two EntQuant code formats (ENTQUANT.md section 1) and the exact quantize / dequantize of one row, bit-exact
// with the reference: t = bf16(w / s), clamp, FP8 E4M3FN round-to-nearest-even (or Int8 round-half-even),
// negative zero -> +0; w_hat = bf16(value(q) * s).
#pragma once

#include "common/numerics.h"

#include <cstdint>
#include <optional>
#include <string_view>

namespace eq::quant {

enum class CodeFormat : std::uint8_t { Fp8E4M3 = 0, Int8 = 1 };

std::optional<CodeFormat> parseCodeFormat(std::string_view name);  // "fp8" | "int8"
std::string_view codeFormatName(CodeFormat format);

// The value a code stands for (FP8 units, or the integer for Int8).
inline float codeValue(CodeFormat f, std::uint8_t q) {
  return f == CodeFormat::Fp8E4M3 ? fp8E4M3ToF32(q) : static_cast<float>(static_cast<std::int8_t>(q));
}

inline std::uint8_t quantizeOne(CodeFormat f, float w, float s) {
  const float t = bf16ToF32(f32ToBf16(w / s));
  if (f == CodeFormat::Fp8E4M3) {
    const std::uint8_t q = f32ToFp8E4M3(t);  // saturating: clamp to +-448 then round
    return q == 0x80 ? 0 : q;
  }
  // Clamping before rounding equals the reference's round-then-clamp. Inputs are finite (the pipeline rejects NaN/inf).
  const float r = std::nearbyint(std::fmax(std::fmin(t, 127.0f), -128.0f));
  return static_cast<std::uint8_t>(static_cast<std::int8_t>(r));
}

inline std::uint16_t dequantizeOne(CodeFormat f, std::uint8_t q, float s) { return f32ToBf16(codeValue(f, q) * s); }

void quantizeRow(CodeFormat f, const float* w, std::int64_t n, std::uint16_t scaleBf16, std::uint8_t* codes);
void dequantizeRow(CodeFormat f, const std::uint8_t* codes, std::int64_t n, std::uint16_t scaleBf16,
                   std::uint16_t* outBf16);

}  // namespace eq::quant
