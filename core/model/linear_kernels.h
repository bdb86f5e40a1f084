// Internal interface between Linear::forward (linear.cpp) and its kernel sets, one per instruction set: generic C++
// (linear.cpp), AVX2 (linear_avx2.cpp) and AVX-512 (linear_avx512.cpp, built with its own -m flags and used only
// when the CPU has it). Plain data and function pointers only: this header is included by the AVX-512 unit, and an
// inline function defined here could be emitted there with AVX-512 instructions and picked by the linker for all.
#pragma once

#include <cstddef>
#include <cstdint>

namespace eq {
class ThreadPool;
enum class KernelIsa : int;  // common/cpu_isa.h
}

namespace eq::model::kernels {

enum class WeightType : std::uint8_t { F32, BF16, Fp8, Int8 };

// FP8 E4M3 magnitudes (code & 0x7F) as the two bytes of their bfloat16, exact: E4M3 has 3 mantissa bits and an
// exponent range well inside bf16's, subnormals included; 0x7F is NaN. The byte-table decoders of the AVX-512 and AMX
// sets look codes up in it (vpermi2b). Data only, defined once in linear.cpp (built with the baseline flags), so no
// code is shared between units of different instruction sets.
struct Fp8Bf16Bytes {
  alignas(64) std::uint8_t hi[128];
  alignas(64) std::uint8_t lo[128];
};
extern const Fp8Bf16Bytes kFp8Bf16;

// A weight matrix as the kernels see it: rows x cols elements, row-major.
struct Weights {
  WeightType type = WeightType::F32;
  const void* data = nullptr;     // float, bf16 bits (uint16), or 8-bit codes
  std::int64_t rows = 0, cols = 0;
  const float* scales = nullptr;  // per row (codes), null for F32 / BF16
  const float* bias = nullptr;    // per row, null when none
};

// How a kernel set walks one row: in windows of `window` elements, the first starting `lead` elements before the
// row (so that every window is a whole number of aligned cache lines when rows are), decoded to floats in the
// order `order` gives (slot s of a window holds element order[s] of it; null: in order). Activations are handed
// to the kernels in the same slot order, with zeros where a slot holds no column.
struct Layout {
  std::int64_t window = 1, lead = 0, windows = 0;
  const std::uint8_t* order = nullptr;
};

// A GEMM on matrix tiles (AMX, linear_amx.cpp) for n >= minTokens tokens and weights of every type but F32. The
// activations are packed once per call (pack: token tiles [tb0, tb1) of `tokenTile` tokens into `packed`, which
// holds packedElems(n, cols) elements for n tokens rounded up to a multiple of tokenPad, those past n packed as
// zeros) and shared by every matrix of that width; gemm
// then computes rows [r0, r1) (at most rowsPerTask) for all n tokens, y[t * rows + r], with `scratch` of
// scratchBytes(n) bytes of the calling thread's own.
struct TileKernels {
  std::int64_t minTokens, rowsPerTask, tokenTile, tokenPad;
  std::int64_t (*packedElems)(std::int64_t n, std::int64_t cols);
  void (*pack)(const float* x, std::int64_t n, std::int64_t cols, std::int64_t tb0, std::int64_t tb1,
               std::uint16_t* packed);
  std::int64_t (*scratchBytes)(std::int64_t n);
  void (*gemm)(const Weights& w, std::int64_t r0, std::int64_t r1, const std::uint16_t* packed, std::int64_t n,
               float* y, void* scratch);
};

struct KernelSet {
  const char* name;
  Layout (*layout)(const Weights& w);
  std::int64_t gemvRowsPerTask, gemmRowsPerTask;
  std::int64_t tokenPad;  // the GEMM's activations have their token count rounded up to a multiple of this
  // One token: y[r] = factor(r) * dot(row r, x) + bias[r] for r in [r0, r1). xs: x in slot order
  // (layout.windows * layout.window floats).
  void (*gemv)(const Weights& w, const Layout& layout, std::int64_t r0, std::int64_t r1, const float* xs, float* y);
  // n tokens: y[t * rows + r] for t < n, r in [r0, r1). xt: the activations transposed, xt[slot * nPad + t],
  // zero for t >= n. scratch: gemmScratchFloats(layout, nPad) floats of the calling thread's own.
  void (*gemm)(const Weights& w, const Layout& layout, std::int64_t r0, std::int64_t r1, const float* xt,
               std::int64_t n, std::int64_t nPad, float* y, float* scratch);
  std::int64_t (*gemmScratchFloats)(const Layout& layout, std::int64_t nPad);
  const TileKernels* tiles = nullptr;  // the multi-token GEMM on matrix tiles, where the set has one
};

#ifdef EQ_X86_KERNELS  // defined by core/CMakeLists.txt where it builds these units
const KernelSet& avx2Kernels();
const KernelSet& avx512Kernels();    // its functions need AVX512F/BW/VL/VBMI
const KernelSet& avx512bwKernels();  // its functions need AVX512F/BW/VL
const TileKernels& amxTileKernels();   // its functions need AVX512F/BW/VL/VBMI/BF16, AMX-TILE and AMX-BF16
#endif

// Defined in linear.cpp (for Linear::forward and the kernel tests), never called by the kernel units:
// the kernel set of an instruction set, null where this build or this CPU lacks it;
const KernelSet* kernelSet(KernelIsa isa);
// Y[n][rows] = X[n][cols] * W^T (+ bias) with kernel set k: activations put in slot order, rows split over the pool.
void forward(const KernelSet& k, const Weights& w, const float* x, std::int64_t n, float* y, ThreadPool& pool);
// One token through `count` matrices that share the input x (q/k/v, gate/up; forward's GEMV is count 1):
// y[i] = W_i x, all rows in one hand-off to the pool (each matrix's activations put in slot order once, shared where the layouts agree).
void gemvShared(const KernelSet& k, const Weights* w, std::size_t count, const float* x, float* const* y, ThreadPool& pool);
// n tokens through `count` matrices of the same width that share the input x: forward() for each, but on matrix
// tiles (where k has them and n and the weight types allow) with the activations packed once for all.
void forwardShared(const KernelSet& k, const Weights* w, std::size_t count, const float* x, std::int64_t n,
                   float* const* y, ThreadPool& pool);

}  // namespace eq::model::kernels
