// AVX2 kernels: the baseline of every x86-64-v3 build (AVX2, FMA, F16C), and the fallback where AVX-512 is missing.
#include "model/linear_kernels.h"

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace eq::model::kernels {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int kLanes = 8;
  // 4 rows x 3 vectors (24 tokens): 12 accumulators, 3 activation vectors and a broadcast in 16 registers.
  static constexpr int kRowTile = 4, kTokenVecs = 3;
  // Without byte-masked loads a partial window is a copy; rows start where they are (loads may straddle lines).
  static constexpr bool kAlignedWindows = false;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V broadcast(float f) { return _mm256_set1_ps(f); }
  static float sum(V v) {
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
  }
  template <WeightType T>
  struct Decoder;
};

// A partial window (the end of a row whose length is not a multiple of the window): the valid elements copied
// into a zeroed window, then decoded as a whole one.
template <class Dec>
void decodePartial(const Dec& dec, const typename Dec::Elem* p, int from, int to, __m256* out) {
  typename Dec::Elem buf[32] = {};
  std::memcpy(buf + from, p + from, static_cast<std::size_t>(to - from) * sizeof(typename Dec::Elem));
  dec.full(buf, out);
}

template <>
struct Avx2::Decoder<WeightType::F32> {
  using Elem = float;
  static constexpr const std::uint8_t* order = nullptr;
  static constexpr float factor = 1.0f;
  void full(const float* p, V* out) const {
    for (int i = 0; i < 4; ++i) out[i] = _mm256_loadu_ps(p + 8 * i);
  }
  void partial(const float* p, int from, int to, V* out) const { decodePartial(*this, p, from, to, out); }
};

template <>
struct Avx2::Decoder<WeightType::BF16> {
  using Elem = std::uint16_t;
  static constexpr const std::uint8_t* order = nullptr;
  static constexpr float factor = 1.0f;
  void full(const std::uint16_t* p, V* out) const {
    for (int i = 0; i < 4; ++i)
      out[i] = _mm256_castsi256_ps(
          _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 8 * i))), 16));
  }
  void partial(const std::uint16_t* p, int from, int to, V* out) const { decodePartial(*this, p, from, to, out); }
};

// FP8 E4M3 codes as floats times 2^-8: moved into f16 bit positions (sign, 4 exponent bits, 3 mantissa bits)
// they are f16 values 2^-8 times too small, subnormals included, and vcvtph2ps converts them exactly. Unpacking
// the codes with zeros puts each in the high byte of a 16-bit word; an arithmetic shift right by one and clearing
// bit 14 (the copied sign) leave exactly that f16. 32 codes: one load, 6 integer ops, 2 extracts, 4 conversions.
// Unpacking works inside 128-bit lanes: vectors 0-3 hold bytes 0-7, 16-23, 8-15 and 24-31 (kFp8Order).
struct SlotOrder {
  std::uint8_t s[32];
};
constexpr SlotOrder makeFp8Order() {
  SlotOrder o{};
  constexpr int first[4] = {0, 16, 8, 24};
  for (int k = 0; k < 4; ++k)
    for (int e = 0; e < 8; ++e) o.s[k * 8 + e] = static_cast<std::uint8_t>(first[k] + e);
  return o;
}
constexpr SlotOrder kFp8Order = makeFp8Order();

template <>
struct Avx2::Decoder<WeightType::Fp8> {
  using Elem = std::uint8_t;
  static constexpr const std::uint8_t* order = kFp8Order.s;
  static constexpr float factor = 256.0f;
  void full(const std::uint8_t* p, V* out) const {
    const __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), z = _mm256_setzero_si256();
    const __m256i keep = _mm256_set1_epi16(static_cast<short>(0xBFFF));
    const __m256i h0 = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpacklo_epi8(z, c), 1), keep);
    const __m256i h1 = _mm256_and_si256(_mm256_srai_epi16(_mm256_unpackhi_epi8(z, c), 1), keep);
    out[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h0));
    out[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h0, 1));
    out[2] = _mm256_cvtph_ps(_mm256_castsi256_si128(h1));
    out[3] = _mm256_cvtph_ps(_mm256_extracti128_si256(h1, 1));
  }
  void partial(const std::uint8_t* p, int from, int to, V* out) const { decodePartial(*this, p, from, to, out); }
};

template <>
struct Avx2::Decoder<WeightType::Int8> {
  using Elem = std::uint8_t;
  static constexpr const std::uint8_t* order = nullptr;
  static constexpr float factor = 1.0f;
  void full(const std::uint8_t* p, V* out) const {
    for (int i = 0; i < 4; ++i)
      out[i] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 8 * i))));
  }
  void partial(const std::uint8_t* p, int from, int to, V* out) const { decodePartial(*this, p, from, to, out); }
};

}  // namespace
}  // namespace eq::model::kernels

#include "model/linear_simd.h"

namespace eq::model::kernels {

const KernelSet& avx2Kernels() {
  static constexpr KernelSet k = makeKernelSet<Avx2>("avx2");
  return k;
}

}  // namespace eq::model::kernels
