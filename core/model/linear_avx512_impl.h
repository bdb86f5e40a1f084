// The AVX-512 kernels, included by exactly two units, each compiled alone with its -m flags (core/CMakeLists.txt)
// and entered only after a run-time CPU check (linear.cpp):
// - linear_avx512.cpp, AVX512F/BW/VL/VBMI (Ice Lake, Sapphire Rapids, Zen 4 and later): FP8 decoded by byte table
//   lookups (vpermi2b, VBMI);
// - linear_avx512bw.cpp, AVX512F/BW/VL with EQ_AVX512_NO_VBMI (Skylake-SP, Cascade Lake, Cooper Lake): FP8 decoded
//   through f16 as the AVX2 kernels do, 64 codes at a time.
// Everything here has internal linkage. These units must not use inline functions or templates they share with
// other units (the standard library's included): the linker could keep an AVX-512 copy for the whole program.
#pragma once

#include "model/linear_kernels.h"

#include <immintrin.h>

#include <cstdint>

// GCC 12's AVX-512 intrinsics (_mm512_cvtepi8_epi32, _mm512_extracti32x4_epi32, ...) start from a deliberately
// self-initialized `_mm512_undefined_*()` value, which -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace eq::model::kernels {
namespace {

// Slot orders of the unpack-based decoders. Unpacking works inside each 128-bit lane L, so the float vector k of a
// 64-byte window holds, in lane L, 4 consecutive elements: bytes L*16 + 4k + e (FP8) or the 16-bit elements
// (k/2)*32 + L*8 + (k%2)*4 + e (bf16 from two 64-byte loads), e = 0..3.
struct SlotOrder {
  std::uint8_t s[64];
};
constexpr SlotOrder makeOrder(bool bf16) {
  SlotOrder o{};
  for (int k = 0; k < 4; ++k)
    for (int lane = 0; lane < 4; ++lane)
      for (int e = 0; e < 4; ++e)
        o.s[k * 16 + lane * 4 + e] = static_cast<std::uint8_t>(bf16 ? (k / 2) * 32 + lane * 8 + (k % 2) * 4 + e
                                                                    : lane * 16 + 4 * k + e);
  return o;
}
constexpr SlotOrder kBf16Order = makeOrder(true);
#ifndef EQ_AVX512_NO_VBMI
constexpr SlotOrder kFp8Order = makeOrder(false);
#else
// The f16 decoder's order: unpacking puts bytes L*16 + 0..7 (low) and L*16 + 8..15 (high) of lane L into 16-bit
// words, and each conversion takes 16 words from two lanes: vector k holds 8 + 8 bytes from base[k] and base[k] + 16.
constexpr SlotOrder makeF16Order() {
  SlotOrder o{};
  constexpr int base[4] = {0, 32, 8, 40};
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 16; ++i) o.s[k * 16 + i] = static_cast<std::uint8_t>(base[k] + (i < 8 ? i : 16 + i - 8));
  return o;
}
constexpr SlotOrder kFp8Order = makeF16Order();
#endif

// Elements [from, to) of a 64-element window (from < 64, to <= 64).
inline __mmask64 windowMask(int from, int to) {
  const unsigned long long below = to >= 64 ? ~0ull : (1ull << to) - 1;
  return below & ~((1ull << from) - 1);
}

struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16;
  // 6 rows x 4 vectors (64 tokens): 24 accumulators, 4 activation vectors and a broadcast in 32 registers.
  static constexpr int kRowTile = 6, kTokenVecs = 4;
  static constexpr bool kAlignedWindows = true;  // masked loads make the partial first window free
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V broadcast(float f) { return _mm512_set1_ps(f); }
  static float sum(V v) { return _mm512_reduce_add_ps(v); }
  template <WeightType T>
  struct Decoder;
};

template <>
struct Avx512::Decoder<WeightType::F32> {
  using Elem = float;
  static constexpr const std::uint8_t* order = nullptr;
  static constexpr float factor = 1.0f;
  void full(const float* p, V* out) const {
    for (int i = 0; i < 4; ++i) out[i] = _mm512_loadu_ps(p + 16 * i);
  }
  void partial(const float* p, int from, int to, V* out) const {
    const __mmask64 m = windowMask(from, to);
    for (int i = 0; i < 4; ++i) out[i] = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> (16 * i)), p + 16 * i);
  }
};

// bf16 to f32 is a 16-bit shift: unpacking with zeros does it for 32 elements in two instructions.
template <>
struct Avx512::Decoder<WeightType::BF16> {
  using Elem = std::uint16_t;
  static constexpr const std::uint8_t* order = kBf16Order.s;
  static constexpr float factor = 1.0f;
  void full(const std::uint16_t* p, V* out) const { expand(_mm512_loadu_si512(p), _mm512_loadu_si512(p + 32), out); }
  void partial(const std::uint16_t* p, int from, int to, V* out) const {
    const __mmask64 m = windowMask(from, to);
    expand(_mm512_maskz_loadu_epi16(static_cast<__mmask32>(m), p),
           _mm512_maskz_loadu_epi16(static_cast<__mmask32>(m >> 32), p + 32), out);
  }
  static void expand(__m512i a, __m512i b, V* out) {
    const __m512i z = _mm512_setzero_si512();
    out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, a));
    out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, a));
    out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, b));
    out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, b));
  }
};

#ifndef EQ_AVX512_NO_VBMI
// FP8 E4M3: 64 codes per load. Two 128-entry byte lookups (vpermi2b, which ignores the index's top bit) give the
// two bytes of each magnitude's bf16, the sign bit is or-ed back into the high byte, and two rounds of unpacking
// (bytes to bf16 words, bf16 words to the high halves of f32) give 4 float vectors: 9 instructions for 64 weights,
// against about 40 for f16-conversion tricks at 16 weights a time.
template <>
struct Avx512::Decoder<WeightType::Fp8> {
  using Elem = std::uint8_t;
  static constexpr const std::uint8_t* order = kFp8Order.s;
  static constexpr float factor = 1.0f;
  __m512i hi0 = _mm512_load_si512(kFp8Bf16.hi), hi1 = _mm512_load_si512(kFp8Bf16.hi + 64);
  __m512i lo0 = _mm512_load_si512(kFp8Bf16.lo), lo1 = _mm512_load_si512(kFp8Bf16.lo + 64);
  void full(const std::uint8_t* p, V* out) const { expand(_mm512_loadu_si512(p), out); }
  void partial(const std::uint8_t* p, int from, int to, V* out) const {
    expand(_mm512_maskz_loadu_epi8(windowMask(from, to), p), out);
  }
  void expand(__m512i c, V* out) const {
    const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80)), z = _mm512_setzero_si512();
    // 0xF8: a | (b & c), here table | (code & 0x80)
    const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, c, hi1), c, sign, 0xF8);
    const __m512i lo = _mm512_permutex2var_epi8(lo0, c, lo1);
    const __m512i w0 = _mm512_unpacklo_epi8(lo, hi), w1 = _mm512_unpackhi_epi8(lo, hi);
    out[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, w0));
    out[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, w0));
    out[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, w1));
    out[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, w1));
  }
};
#else
// FP8 E4M3 without VBMI, as the AVX2 decoder: the codes unpacked into the high bytes of 16-bit words, shifted right
// arithmetically by one and bit 14 (the copied sign) cleared are f16 values 2^-8 times the codes' (subnormals
// included), which vcvtph2ps converts exactly; the 2^8 goes into the row factor. 64 codes: one load, 6 integer
// ops, 2 extracts, 4 conversions.
template <>
struct Avx512::Decoder<WeightType::Fp8> {
  using Elem = std::uint8_t;
  static constexpr const std::uint8_t* order = kFp8Order.s;
  static constexpr float factor = 256.0f;
  void full(const std::uint8_t* p, V* out) const { expand(_mm512_loadu_si512(p), out); }
  void partial(const std::uint8_t* p, int from, int to, V* out) const {
    expand(_mm512_maskz_loadu_epi8(windowMask(from, to), p), out);
  }
  static void expand(__m512i c, V* out) {
    const __m512i z = _mm512_setzero_si512(), keep = _mm512_set1_epi16(static_cast<short>(0xBFFF));
    const __m512i h0 = _mm512_and_si512(_mm512_srai_epi16(_mm512_unpacklo_epi8(z, c), 1), keep);
    const __m512i h1 = _mm512_and_si512(_mm512_srai_epi16(_mm512_unpackhi_epi8(z, c), 1), keep);
    out[0] = _mm512_cvtph_ps(_mm512_castsi512_si256(h0));
    out[1] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h0, 1));
    out[2] = _mm512_cvtph_ps(_mm512_castsi512_si256(h1));
    out[3] = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h1, 1));
  }
};
#endif

template <>
struct Avx512::Decoder<WeightType::Int8> {
  using Elem = std::uint8_t;
  static constexpr const std::uint8_t* order = nullptr;
  static constexpr float factor = 1.0f;
  void full(const std::uint8_t* p, V* out) const { expand(_mm512_loadu_si512(p), out); }
  void partial(const std::uint8_t* p, int from, int to, V* out) const {
    expand(_mm512_maskz_loadu_epi8(windowMask(from, to), p), out);
  }
  static void expand(__m512i c, V* out) {
    out[0] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(c, 0)));
    out[1] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(c, 1)));
    out[2] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(c, 2)));
    out[3] = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm512_extracti32x4_epi32(c, 3)));
  }
};

}  // namespace
}  // namespace eq::model::kernels

#include "model/linear_simd.h"

namespace eq::model::kernels {

#ifndef EQ_AVX512_NO_VBMI
const KernelSet& avx512Kernels() {
  static constexpr KernelSet k = makeKernelSet<Avx512>("avx512");
  return k;
}
#else
const KernelSet& avx512bwKernels() {
  static constexpr KernelSet k = makeKernelSet<Avx512>("avx512bw");
  return k;
}
#endif

}  // namespace eq::model::kernels
