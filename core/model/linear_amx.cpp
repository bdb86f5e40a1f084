// The multi-token GEMM (prefill) on AMX matrix tiles, for the Amx kernel set (Sapphire Rapids and later Xeons).
// Compiled alone with -mavx512f/bw/vl/vbmi/bf16 -mamx-tile -mamx-bf16 (core/CMakeLists.txt) and entered only after
// the run-time check of common/cpu_isa.cpp. Everything here has internal linkage but the one entry point, and no
// inline function or template is shared with other units (see linear_avx512_impl.h).
//
// Accuracy. A tile multiply (TDPBF16PS) takes bf16 operands and accumulates in float32. Every weight type the
// engine stores is exact in bf16: FP8 E4M3 (4 significant bits), Int8 codes (|v| <= 128) and bf16 itself. The
// activations are float32 (24 significant bits); each is split into two bf16 parts, x = hi + mid + r (hi = x
// rounded to bf16, mid = x - hi rounded, |r| <= 2^-16 |x|), and the weights are multiplied with both. Each product
// of a weight and a part is exact in float32, so the result differs from the exact sum by the float32 additions
// plus at most 2^-16 of the terms' magnitude; tests/test_kernels.cpp measures 7e-6 at worst, against 3e-6 for the
// float32 kernels, three orders of magnitude below what FP8 weights change. A third part would make the products
// exact for 1.5x the multiplies. The tiles do 16x16x32 multiply-adds per instruction (bench/bench_gemm.cpp
// measures the rate against the AVX-512 FMA kernels).
//
// Data layout. A = weights (16 output rows x 32 columns per tile, rows as stored: decoded per task into a block of
// bf16), B = activations in the tiles' pair-interleaved ("VNNI") form (16 column pairs x 16 tokens x 2), packed
// once per call for all tasks; C = 16 output rows x 16 tokens of float32. The columns of each 64-column window are
// taken in the order the FP8 byte-table decoder produces them (two 32-column chunks: in 128-bit lane L, columns
// 16 L + 0..7 and then 16 L + 8..15); the other decoders permute into that order, and the activations are packed
// in it, so one packing serves matrices of every weight type.
#include "model/linear_kernels.h"

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12's AVX-512 intrinsics; see linear_avx512_impl.h
#pragma GCC diagnostic ignored "-Wuninitialized"  // the same: their _mm512_undefined_ps() placeholders

namespace eq::model::kernels {
namespace {

constexpr std::int64_t kWindow = 64;       // columns decoded at a time: two chunks
constexpr std::int64_t kChunk = 32;        // columns per tile row (64 bytes of bf16)
constexpr std::int64_t kBlockChunks = 8;  // chunks of the task's rows decoded at a time (256 columns)
constexpr std::int64_t kTokens = 16;       // tokens per tile
constexpr std::int64_t kParts = 2;         // bf16 parts per activation
constexpr std::int64_t kTile = 512;        // bf16 elements of an A or B tile
constexpr std::int64_t kRowsPerTask = 128;
// Below this many tokens the AVX-512 GEMM is as fast: the weights are decoded per task whatever the token count.
constexpr std::int64_t kMinTokens = 8;

std::int64_t roundUp(std::int64_t a, std::int64_t m) { return (a + m - 1) / m * m; }
std::int64_t chunksOf(std::int64_t cols) { return (cols + kWindow - 1) / kWindow * 2; }
// Tokens are handled in pairs of tiles (32).
std::int64_t tokensPadded(std::int64_t n) { return roundUp(n, 2 * kTokens); }

struct alignas(64) TileConfig {
  std::uint8_t palette = 1, startRow = 0;
  std::uint8_t reserved[14] = {};
  std::uint16_t colsb[16] = {};
  std::uint8_t rows[16] = {};
};

// Tiles 0-3: C (2 row tiles x 2 token tiles), 4-5: A (weights), 6-7: B (activations); all 16 x 64 bytes.
TileConfig makeConfig() {
  TileConfig c;
  for (int i = 0; i < 8; ++i) {
    c.colsb[i] = 64;
    c.rows[i] = 16;
  }
  return c;
}

// Word p of the first chunk of a window holds column 16 (p / 8) + p % 8, of the second 16 (p / 8) + 8 + p % 8: as
// permutex2var indices into the window's columns 0-31 (first vector) and 32-63 (second).
struct ChunkOrder {
  alignas(64) std::uint16_t first[32];
  alignas(64) std::uint16_t second[32];
};
constexpr ChunkOrder makeChunkOrder() {
  ChunkOrder o{};
  for (int p = 0; p < 32; ++p) {
    o.first[p] = static_cast<std::uint16_t>((p / 8) * 16 + p % 8);
    o.second[p] = static_cast<std::uint16_t>((p / 8) * 16 + 8 + p % 8);
  }
  return o;
}
constexpr ChunkOrder kChunkOrder = makeChunkOrder();

// Elements [0, count) of a 64-element window (count <= 64).
__mmask64 firstMask(std::int64_t count) { return count >= 64 ? ~0ull : (1ull << count) - 1; }

// Two 32-element bf16 vectors (columns 0-31, 32-63 of a window) in chunk order.
void toChunks(__m512i a, __m512i b, __m512i* out) {
  out[0] = _mm512_permutex2var_epi16(a, _mm512_load_si512(kChunkOrder.first), b);
  out[1] = _mm512_permutex2var_epi16(a, _mm512_load_si512(kChunkOrder.second), b);
}

__m256i bf16Of(__m512 f) { return reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(f)); }
__m512 floatOf(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
__m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

// The 16 x 16 tile of 32-bit elements at c (row m, column j at c[16 m + j]) as 16 vectors, v[j] = column j
// (rows 0-15); c 64-byte aligned.
inline __attribute__((always_inline)) void transposeTile(const float* c, __m512* v) {
  __m512 t[16], u[16];
  for (int i = 0; i < 8; ++i) {
    const __m512 a = _mm512_load_ps(c + 32 * i), b = _mm512_load_ps(c + 32 * i + 16);
    t[2 * i] = _mm512_unpacklo_ps(a, b);  // per 128-bit lane L: a[4L], b[4L], a[4L+1], b[4L+1]
    t[2 * i + 1] = _mm512_unpackhi_ps(a, b);
  }
  // u[4 i + k], lane L: column 4 L + k of rows 4 i .. 4 i + 3.
  for (int i = 0; i < 4; ++i) {
    u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], _MM_SHUFFLE(3, 2, 3, 2));
    u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(1, 0, 1, 0));
    u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], _MM_SHUFFLE(3, 2, 3, 2));
  }
  // Column 4 L + k gathers lane L of u[k], u[4 + k], u[8 + k], u[12 + k].
  for (int k = 0; k < 4; ++k) {
    const __m512 e0 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0x88), e1 = _mm512_shuffle_f32x4(u[k], u[4 + k], 0xDD);
    const __m512 e2 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0x88);
    const __m512 e3 = _mm512_shuffle_f32x4(u[8 + k], u[12 + k], 0xDD);
    v[k] = _mm512_shuffle_f32x4(e0, e2, 0x88);
    v[8 + k] = _mm512_shuffle_f32x4(e0, e2, 0xDD);
    v[4 + k] = _mm512_shuffle_f32x4(e1, e3, 0x88);
    v[12 + k] = _mm512_shuffle_f32x4(e1, e3, 0xDD);
  }
}

// ---- Activations ----------------------------------------------------------------------------------------------------

// B tile of token tile `tb`, chunk c, part s: packed + ((tb * chunks + c) * kParts + s) * kTile; inside it the
// 32-bit pair of chunk columns (2 kp, 2 kp + 1) of token t at dword kp * 16 + t: the transpose of the 16 tokens'
// chunks, made in registers.
void pack(const float* x, std::int64_t n, std::int64_t cols, std::int64_t tb0, std::int64_t tb1, std::uint16_t* packed) {
  const std::int64_t chunks = chunksOf(cols), windows = chunks / 2;
  alignas(64) std::uint32_t rowsOf[kParts][2][kTokens][16];  // [part][half][token]: the token's chunk as 16 pairs
  for (std::int64_t tb = tb0; tb < tb1; ++tb)
    for (std::int64_t q = 0; q < windows; ++q) {
      const __mmask64 m = firstMask(cols - q * kWindow);
      for (std::int64_t t = 0; t < kTokens; ++t) {
        const std::int64_t token = tb * kTokens + t;
        __m512i parts[kParts][2];
        if (token < n) {
          const float* row = x + token * cols + q * kWindow;
          __m256i h[kParts][4];
          for (int i = 0; i < 4; ++i) {
            const __m512 f = _mm512_maskz_loadu_ps(static_cast<__mmask16>(m >> (16 * i)), row + 16 * i);
            h[0][i] = bf16Of(f);
            h[1][i] = bf16Of(_mm512_sub_ps(f, floatOf(h[0][i])));  // the subtraction is exact
          }
          for (int s = 0; s < kParts; ++s) toChunks(join(h[s][0], h[s][1]), join(h[s][2], h[s][3]), parts[s]);
        } else {
          for (auto& p : parts) p[0] = p[1] = _mm512_setzero_si512();
        }
        for (int s = 0; s < kParts; ++s)
          for (int half = 0; half < 2; ++half) _mm512_store_si512(rowsOf[s][half][t], parts[s][half]);
      }
      for (int s = 0; s < kParts; ++s)
        for (int half = 0; half < 2; ++half) {
          __m512 v[16];
          transposeTile(reinterpret_cast<const float*>(rowsOf[s][half][0]), v);
          auto* tile = reinterpret_cast<float*>(packed + ((tb * chunks + 2 * q + half) * kParts + s) * kTile);
          for (int kp = 0; kp < 16; ++kp) _mm512_store_ps(tile + 16 * kp, v[kp]);
        }
    }
}

// ---- Weights --------------------------------------------------------------------------------------------------------

// Windows [q0, q1) of a row, decoded to bf16 in chunk order: chunk 2 (q - q0) + half at out + (2 (q - q0) + half)
// * stride.
void decodeFp8(const std::uint8_t* row, std::int64_t cols, std::int64_t q0, std::int64_t q1, std::uint16_t* out,
               std::int64_t stride) {
  const __m512i hi0 = _mm512_load_si512(kFp8Bf16.hi), hi1 = _mm512_load_si512(kFp8Bf16.hi + 64);
  const __m512i lo0 = _mm512_load_si512(kFp8Bf16.lo), lo1 = _mm512_load_si512(kFp8Bf16.lo + 64);
  const __m512i sign = _mm512_set1_epi8(static_cast<char>(0x80));
  for (std::int64_t q = q0; q < q1; ++q) {
    const __m512i c = _mm512_maskz_loadu_epi8(firstMask(cols - q * kWindow), row + q * kWindow);
    const __m512i hi = _mm512_ternarylogic_epi32(_mm512_permutex2var_epi8(hi0, c, hi1), c, sign, 0xF8);
    const __m512i lo = _mm512_permutex2var_epi8(lo0, c, lo1);
    // Unpacking inside each 128-bit lane gives chunk order directly.
    std::uint16_t* d = out + 2 * (q - q0) * stride;
    _mm512_store_si512(d, _mm512_unpacklo_epi8(lo, hi));
    _mm512_store_si512(d + stride, _mm512_unpackhi_epi8(lo, hi));
  }
}

void decodeBf16(const std::uint16_t* row, std::int64_t cols, std::int64_t q0, std::int64_t q1, std::uint16_t* out,
                std::int64_t stride) {
  for (std::int64_t q = q0; q < q1; ++q) {
    const __mmask64 m = firstMask(cols - q * kWindow);
    const __m512i a = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(m), row + q * kWindow);
    const __m512i b = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(m >> 32), row + q * kWindow + 32);
    __m512i c[2];
    toChunks(a, b, c);
    std::uint16_t* d = out + 2 * (q - q0) * stride;
    _mm512_store_si512(d, c[0]);
    _mm512_store_si512(d + stride, c[1]);
  }
}

void decodeInt8(const std::uint8_t* row, std::int64_t cols, std::int64_t q0, std::int64_t q1, std::uint16_t* out,
                std::int64_t stride) {
  for (std::int64_t q = q0; q < q1; ++q) {
    const __m512i v = _mm512_maskz_loadu_epi8(firstMask(cols - q * kWindow), row + q * kWindow);
    // Quarters by literal index: the extract's index must be an immediate even where the compiler does not unroll
    // (the ThreadSanitizer build).
    const auto quarter = [](__m128i q) { return bf16Of(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q))); };
    const __m256i h[4] = {quarter(_mm512_extracti32x4_epi32(v, 0)), quarter(_mm512_extracti32x4_epi32(v, 1)),
                          quarter(_mm512_extracti32x4_epi32(v, 2)), quarter(_mm512_extracti32x4_epi32(v, 3))};
    __m512i c[2];
    toChunks(join(h[0], h[1]), join(h[2], h[3]), c);
    std::uint16_t* d = out + 2 * (q - q0) * stride;
    _mm512_store_si512(d, c[0]);
    _mm512_store_si512(d + stride, c[1]);
  }
}

// ---- GEMM -----------------------------------------------------------------------------------------------------------

std::int64_t packedElems(std::int64_t n, std::int64_t cols) { return tokensPadded(n) * chunksOf(cols) * kChunk * kParts; }

// The weight block (kBlockChunks chunks x the task's rows, padded to 32) and the accumulators (rows x tokens).
std::int64_t scratchBytes(std::int64_t n) {
  return kBlockChunks * 2 * kTokens * kChunk * 2 + kRowsPerTask * tokensPadded(n) * 4 + 64;
}

// Per block of kBlockChunks chunks, the task's rows are decoded 32 at a time (one pair of row tiles, 16 KB, kept in
// L1) just before their multiplies: the decoding of the next pair (vector units) then overlaps the tile multiplies
// of this one (the AMX unit) instead of preceding all of them.
void gemm(const Weights& w, std::int64_t r0, std::int64_t r1, const std::uint16_t* packed, std::int64_t n, float* y,
          void* scratch) {
  const std::int64_t rows = r1 - r0, rowsPad = roundUp(rows, 2 * kTokens), chunks = chunksOf(w.cols);
  const std::int64_t tokenTiles = tokensPadded(n) / kTokens;
  const std::int64_t stride = 2 * kTokens * kChunk;  // between chunks of the weight block, in bf16 elements
  auto* block = reinterpret_cast<std::uint16_t*>((reinterpret_cast<std::uintptr_t>(scratch) + 63) / 64 * 64);
  float* acc = reinterpret_cast<float*>(block + kBlockChunks * stride);  // [row tile pair][token tile pair][4][256]

  static const TileConfig config = makeConfig();
  _tile_loadconfig(&config);
  for (std::int64_t kb = 0; kb < chunks; kb += kBlockChunks) {
    const std::int64_t kc = chunks - kb < kBlockChunks ? chunks - kb : kBlockChunks;
    for (std::int64_t rp = 0; rp < rowsPad / kTokens; rp += 2) {
      const std::int64_t rBase = rp * kTokens, rEnd = rows < rBase + 2 * kTokens ? rows : rBase + 2 * kTokens;
      for (std::int64_t r = rBase; r < rEnd; ++r) {
        const std::int64_t e = (r0 + r) * w.cols;
        std::uint16_t* out = block + (r - rBase) * kChunk;
        // The row's next block into L2 now, one pass over the task's rows ahead: the rows are read 256 columns at
        // a time, a pattern of 128 short streams that the hardware prefetchers do not follow.
        const std::int64_t next = (kb + kc) * kChunk, nextEnd = std::min(w.cols, next + kBlockChunks * kChunk);
        if (next < w.cols) {
          const std::int64_t size = w.type == WeightType::BF16 ? 2 : 1;
          const char* base = static_cast<const char*>(w.data) + e * size;
          for (std::int64_t b = next * size; b < nextEnd * size; b += 64) _mm_prefetch(base + b, _MM_HINT_T1);
        }
        switch (w.type) {
          case WeightType::Fp8:
            decodeFp8(static_cast<const std::uint8_t*>(w.data) + e, w.cols, kb / 2, (kb + kc) / 2, out, stride);
            break;
          case WeightType::BF16:
            decodeBf16(static_cast<const std::uint16_t*>(w.data) + e, w.cols, kb / 2, (kb + kc) / 2, out, stride);
            break;
          case WeightType::Int8:
            decodeInt8(static_cast<const std::uint8_t*>(w.data) + e, w.cols, kb / 2, (kb + kc) / 2, out, stride);
            break;
          case WeightType::F32: break;  // not offered to this kernel (linear.cpp)
        }
      }
      for (std::int64_t k = 0; k < kc && rEnd - rBase < 2 * kTokens; ++k)  // rows past the matrix: zero
        std::memset(block + k * stride + (rEnd - rBase) * kChunk, 0,
                    static_cast<std::size_t>((2 * kTokens - (rEnd - rBase)) * kChunk) * 2);
      for (std::int64_t tp = 0; tp < tokenTiles; tp += 2) {
        float* c = acc + ((rp / 2) * (tokenTiles / 2) + tp / 2) * 4 * 256;
        if (kb == 0) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          _tile_loadd(0, c, 64);
          _tile_loadd(1, c + 256, 64);
          _tile_loadd(2, c + 512, 64);
          _tile_loadd(3, c + 768, 64);
        }
        for (std::int64_t k = 0; k < kc; ++k) {
          const std::uint16_t* a = block + k * stride;
          _tile_loadd(4, a, 64);
          _tile_loadd(5, a + kTile, 64);
          const std::uint16_t* b0 = packed + (tp * chunks + kb + k) * kParts * kTile;
          const std::uint16_t* b1 = packed + ((tp + 1) * chunks + kb + k) * kParts * kTile;
          for (std::int64_t s = 0; s < kParts; ++s) {
            _tile_loadd(6, b0 + s * kTile, 64);
            _tile_loadd(7, b1 + s * kTile, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
          }
        }
        _tile_stored(0, c, 64);
        _tile_stored(1, c + 256, 64);
        _tile_stored(2, c + 512, 64);
        _tile_stored(3, c + 768, 64);
      }
    }
  }
  _tile_release();

  // C tile i of a pair: rows of tile rp + i / 2, tokens of tile tp + i % 2; y is tokens x rows, so each tile is
  // transposed in registers and written a token (16 rows) at a time, scaled and biased.
  for (std::int64_t rp = 0; rp < rowsPad / kTokens; rp += 2)
    for (int ri = 0; ri < 2; ++ri) {
      const std::int64_t rBase = (rp + ri) * kTokens;
      if (rBase >= rows) break;
      const __mmask16 rowMask =
          rows - rBase >= kTokens ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (rows - rBase)) - 1);
      const __m512 scale = w.scales ? _mm512_maskz_loadu_ps(rowMask, w.scales + r0 + rBase) : _mm512_set1_ps(1.0f);
      const __m512 bias = w.bias ? _mm512_maskz_loadu_ps(rowMask, w.bias + r0 + rBase) : _mm512_setzero_ps();
      for (std::int64_t tp = 0; tp < tokenTiles; tp += 2)
        for (int ti = 0; ti < 2; ++ti) {
          const std::int64_t tBase = (tp + ti) * kTokens;
          if (tBase >= n) break;
          __m512 v[kTokens];
          transposeTile(acc + ((rp / 2) * (tokenTiles / 2) + tp / 2) * 4 * 256 + (ri * 2 + ti) * 256, v);
          const std::int64_t tokens = n - tBase < kTokens ? n - tBase : kTokens;
          for (std::int64_t j = 0; j < tokens; ++j)
            _mm512_mask_storeu_ps(y + (tBase + j) * w.rows + r0 + rBase, rowMask, _mm512_fmadd_ps(v[j], scale, bias));
        }
    }
}

}  // namespace

const TileKernels& amxTileKernels() {
  static constexpr TileKernels k{kMinTokens, kRowsPerTask, kTokens, 2 * kTokens, packedElems, pack, scratchBytes, gemm};
  return k;
}

}  // namespace eq::model::kernels
