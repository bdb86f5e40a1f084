#include "quant/code_format.h"

namespace eq::quant {

std::optional<CodeFormat> parseCodeFormat(std::string_view name) {
  if (name == "fp8") return CodeFormat::Fp8E4M3;
  if (name == "int8") return CodeFormat::Int8;
  return std::nullopt;
}

std::string_view codeFormatName(CodeFormat format) { return format == CodeFormat::Fp8E4M3 ? "fp8" : "int8"; }

void quantizeRow(CodeFormat f, const float* w, std::int64_t n, std::uint16_t scaleBf16, std::uint8_t* codes) {
  const float s = bf16ToF32(scaleBf16);
  for (std::int64_t i = 0; i < n; ++i) codes[i] = quantizeOne(f, w[i], s);
}

void dequantizeRow(CodeFormat f, const std::uint8_t* codes, std::int64_t n, std::uint16_t scaleBf16,
                   std::uint16_t* outBf16) {
  const float s = bf16ToF32(scaleBf16);
  for (std::int64_t i = 0; i < n; ++i) outBf16[i] = dequantizeOne(f, codes[i], s);
}

}  // namespace eq::quant
