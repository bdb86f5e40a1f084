#include "quant/code_format.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

namespace eq::quant {

std::optional<CodeFormat> parseCodeFormat(std::string_view name) {
  if (name == "fp8") return CodeFormat::Fp8E4M3;
  if (name == "int8") return CodeFormat::Int8;
  return std::nullopt;
}

std::string_view codeFormatName(CodeFormat format) { return format == CodeFormat::Fp8E4M3 ? "fp8" : "int8"; }

#ifdef __AVX2__
namespace {
// Eight FP8 codes of quantizeOne(Fp8E4M3, w, s), for finite w: the same arithmetic, lane-parallel.
inline void quantize8Fp8(const float* w, __m256 vs, std::uint8_t* out) {
  const __m256i one = _mm256_set1_epi32(1);
  // t = bf16(w / s), round to nearest even on the bits
  const __m256i ui = _mm256_castps_si256(_mm256_div_ps(_mm256_loadu_ps(w), vs));
  const __m256i ti = _mm256_and_si256(
      _mm256_add_epi32(_mm256_add_epi32(ui, _mm256_set1_epi32(0x7FFF)), _mm256_and_si256(_mm256_srli_epi32(ui, 16), one)),
      _mm256_set1_epi32(static_cast<int>(0xFFFF0000u)));
  const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(ti, 24), _mm256_set1_epi32(0x80));
  const __m256i a = _mm256_and_si256(ti, _mm256_set1_epi32(0x7FFFFFFF));
  // normal range: keep 3 mantissa bits (nearest even), rebias the exponent
  const __m256i normal = _mm256_sub_epi32(
      _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(a, _mm256_set1_epi32(0x7FFFF)),
                                         _mm256_and_si256(_mm256_srli_epi32(a, 20), one)), 20),
      _mm256_set1_epi32(120 << 3));
  // subnormal range: q = RNE(|t| * 512) in 0..8
  const __m256i sub = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(512.0f)),
                                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  __m256i code = _mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3C800000), a));
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7E), _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43DFFFFF)));
  code = _mm256_or_si256(code, sign);
  code = _mm256_andnot_si256(_mm256_cmpeq_epi32(code, _mm256_set1_epi32(0x80)), code);  // -0 -> +0
  const __m128i packed16 = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
  _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm_packus_epi16(packed16, packed16));
}
}  // namespace
#endif

void quantizeRow(CodeFormat f, const float* w, std::int64_t n, std::uint16_t scaleBf16, std::uint8_t* codes) {
  const float s = bf16ToF32(scaleBf16);
  std::int64_t i = 0;
#ifdef __AVX2__
  if (f == CodeFormat::Fp8E4M3) {
    const __m256 vs = _mm256_set1_ps(s);
    for (; i + 8 <= n; i += 8) quantize8Fp8(w + i, vs, codes + i);
  }
#endif
  for (; i < n; ++i) codes[i] = quantizeOne(f, w[i], s);
}

void dequantizeRow(CodeFormat f, const std::uint8_t* codes, std::int64_t n, std::uint16_t scaleBf16,
                   std::uint16_t* outBf16) {
  const float s = bf16ToF32(scaleBf16);
  for (std::int64_t i = 0; i < n; ++i) outBf16[i] = dequantizeOne(f, codes[i], s);
}

}  // namespace eq::quant
