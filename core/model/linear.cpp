#include "model/linear.h"

#include "common/error.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "model/linear_kernels.h"

#include <fmt/format.h>

#include <algorithm>

namespace eq::model {
namespace kernels {

namespace {
constexpr Fp8Bf16Bytes makeFp8Bf16Bytes() {
  Fp8Bf16Bytes t{};
  for (int m = 0; m < 128; ++m) {
    const int e = m >> 3, f = m & 7;
    int bits = 0;
    if (m == 0x7F) bits = 0x7FC0;
    else if (e > 0) bits = (e + 120) << 7 | f << 4;  // (1 + f/8) 2^(e-7): bf16 exponent e - 7 + 127
    else if (f > 0) {                                 // f 2^-9 = (1 + frac) 2^(s-9), s = floor(log2 f)
      const int s = f >= 4 ? 2 : f >= 2 ? 1 : 0;
      bits = (118 + s) << 7 | ((f << (7 - s)) & 0x7F);
    }
    t.hi[m] = static_cast<std::uint8_t>(bits >> 8);
    t.lo[m] = static_cast<std::uint8_t>(bits & 0xFF);
  }
  return t;
}
}  // namespace

constinit const Fp8Bf16Bytes kFp8Bf16 = makeFp8Bf16Bytes();

namespace {

// ---- Generic kernels: plain C++, for other CPUs and as the readable statement of what the SIMD ones compute ---------

float element(const Weights& w, std::int64_t i) {
  switch (w.type) {
    case WeightType::F32: return static_cast<const float*>(w.data)[i];
    case WeightType::BF16: return bf16ToF32(static_cast<const std::uint16_t*>(w.data)[i]);
    case WeightType::Fp8: return fp8E4M3ToF32(static_cast<const std::uint8_t*>(w.data)[i]);
    case WeightType::Int8:
      return static_cast<float>(static_cast<std::int8_t>(static_cast<const std::uint8_t*>(w.data)[i]));
  }
  return 0.0f;
}

float rowScale(const Weights& w, std::int64_t r) { return w.scales ? w.scales[r] : 1.0f; }
float rowBias(const Weights& w, std::int64_t r) { return w.bias ? w.bias[r] : 0.0f; }

Layout genericLayout(const Weights& w) { return {1, 0, w.cols, nullptr}; }

void genericGemv(const Weights& w, const Layout&, std::int64_t r0, std::int64_t r1, const float* xs, float* y) {
  for (std::int64_t r = r0; r < r1; ++r) {
    float s = 0;
    for (std::int64_t j = 0; j < w.cols; ++j) s += element(w, r * w.cols + j) * xs[j];
    y[r] = s * rowScale(w, r) + rowBias(w, r);
  }
}

void genericGemm(const Weights& w, const Layout&, std::int64_t r0, std::int64_t r1, const float* xt, std::int64_t n,
                 std::int64_t nPad, float* y, float* acc) {
  for (std::int64_t r = r0; r < r1; ++r) {
    std::fill_n(acc, n, 0.0f);
    for (std::int64_t j = 0; j < w.cols; ++j) {
      const float v = element(w, r * w.cols + j);
      for (std::int64_t t = 0; t < n; ++t) acc[t] += v * xt[j * nPad + t];
    }
    for (std::int64_t t = 0; t < n; ++t) y[t * w.rows + r] = acc[t] * rowScale(w, r) + rowBias(w, r);
  }
}

constexpr KernelSet kGeneric{"generic", genericLayout, 16, 16, 1, genericGemv, genericGemm,
                             [](const Layout&, std::int64_t nPad) { return nPad; }};

// ---- Activations in the kernels' slot order -------------------------------------------------------------------------

// Calls f(slot, column) for every slot of windows [k0, k1) of a row that holds a column (the others stay zero).
template <class F>
void forSlots(const Layout& l, std::int64_t cols, std::int64_t k0, std::int64_t k1, F&& f) {
  for (std::int64_t k = k0; k < k1; ++k)
    for (std::int64_t s = 0; s < l.window; ++s) {
      const std::int64_t c = k * l.window + (l.order ? l.order[s] : s) - l.lead;
      if (c >= 0 && c < cols) f(k * l.window + s, c);
    }
}

float* cacheLineStart(std::vector<float>& v) {
  return v.data() + (64 - reinterpret_cast<std::uintptr_t>(v.data()) % 64) % 64 / sizeof(float);
}

// Zeroed floats starting at a cache line: the kernels' activation loads then never straddle two lines (which
// halved the speed of the FP8 GEMV in a test).
class AlignedFloats {
 public:
  explicit AlignedFloats(std::int64_t n) : v_(static_cast<std::size_t>(n) + 16), p_(cacheLineStart(v_)) {}
  float* data() { return p_; }

 private:
  std::vector<float> v_;
  float* p_;
};

// The calling thread's GEMM scratch, at least n floats from a cache line on.
float* gemmScratch(std::int64_t n) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < static_cast<std::size_t>(n) + 16) scratch.resize(static_cast<std::size_t>(n) + 16);
  return cacheLineStart(scratch);
}

// A prefill pass covers at most this many tokens: its transposed activations (slots x tokens floats) stay a few MB.
constexpr std::int64_t kTokensPerPass = 256;

std::size_t taskCount(std::int64_t rows, std::int64_t perTask) {
  return static_cast<std::size_t>((rows + perTask - 1) / perTask);
}

}  // namespace

const KernelSet* kernelSet(KernelIsa isa) {
  if (!kernelIsaSupported(isa)) return nullptr;
  switch (isa) {
    case KernelIsa::Generic: return &kGeneric;
#ifdef EQ_X86_KERNELS
    case KernelIsa::Avx2: return &avx2Kernels();
    case KernelIsa::Avx512: return &avx512Kernels();
    case KernelIsa::Avx512Bw: return &avx512bwKernels();
    case KernelIsa::Amx: {
      static const KernelSet amx = [] {  // the AVX-512 set, and matrix tiles for the multi-token GEMM
        KernelSet k = avx512Kernels();
        k.name = "amx";
        k.tiles = &amxTileKernels();
        return k;
      }();
      return &amx;
    }
#endif
    default: return nullptr;
  }
}

namespace {

// A pass of the tile GEMM covers at most this many tokens: their packed activations (two bf16 parts, 4 bytes per
// token and column) stay at most 12 MB for the widest matrices of a 1B model.
constexpr std::int64_t kTileTokensPerPass = 512;

bool tilesFit(const KernelSet& k, const Weights* w, std::size_t count, std::int64_t n) {
  if (!k.tiles || n < k.tiles->minTokens) return false;
  for (std::size_t i = 0; i < count; ++i)
    if (w[i].type == WeightType::F32 || w[i].cols != w[0].cols) return false;
  return true;
}

void tileForward(const TileKernels& tk, const Weights* w, std::size_t count, const float* x, std::int64_t n,
                 float* const* y, ThreadPool& pool) {
  const std::int64_t cols = w[0].cols;
  struct Task {
    std::size_t matrix;
    std::int64_t r0, r1;
  };
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < count; ++i)
    for (std::int64_t r0 = 0; r0 < w[i].rows; r0 += tk.rowsPerTask)
      tasks.push_back({i, r0, std::min(w[i].rows, r0 + tk.rowsPerTask)});
  thread_local std::vector<std::uint16_t> packedStorage;
  for (std::int64_t t0 = 0; t0 < n; t0 += kTileTokensPerPass) {
    const std::int64_t m = std::min(kTileTokensPerPass, n - t0);
    const auto elems = static_cast<std::size_t>(tk.packedElems(m, cols)) + 32;
    if (packedStorage.size() < elems) packedStorage.resize(elems);
    std::uint16_t* packed = packedStorage.data() + (64 - reinterpret_cast<std::uintptr_t>(packedStorage.data()) % 64) % 64 / 2;
    const std::int64_t tiles = (m + tk.tokenPad - 1) / tk.tokenPad * tk.tokenPad / tk.tokenTile;
    constexpr std::int64_t kTilesPerTask = 2;
    pool.parallelFor(taskCount(tiles, kTilesPerTask), [&](std::size_t t) {
      const std::int64_t b0 = static_cast<std::int64_t>(t) * kTilesPerTask;
      tk.pack(x + t0 * cols, m, cols, b0, std::min(tiles, b0 + kTilesPerTask), packed);
    });
    pool.parallelFor(tasks.size(), [&](std::size_t t) {
      const Task& task = tasks[t];
      thread_local std::vector<std::uint8_t> scratch;
      const auto bytes = static_cast<std::size_t>(tk.scratchBytes(m));
      if (scratch.size() < bytes) scratch.resize(bytes);
      tk.gemm(w[task.matrix], task.r0, task.r1, packed, m, y[task.matrix] + t0 * w[task.matrix].rows, scratch.data());
    });
  }
}

}  // namespace

void forwardShared(const KernelSet& k, const Weights* w, std::size_t count, const float* x, std::int64_t n,
                   float* const* y, ThreadPool& pool) {
  if (tilesFit(k, w, count, n)) return tileForward(*k.tiles, w, count, x, n, y, pool);
  for (std::size_t i = 0; i < count; ++i) forward(k, w[i], x, n, y[i], pool);
}

void forward(const KernelSet& k, const Weights& w, const float* x, std::int64_t n, float* y, ThreadPool& pool) {
  if (n > 1 && tilesFit(k, &w, 1, n)) return tileForward(*k.tiles, &w, 1, x, n, &y, pool);
  const Layout layout = k.layout(w);
  const std::int64_t slots = layout.windows * layout.window;
  if (n == 1) {  // decode: a GEMV, each weight read once from memory
    gemvShared(k, &w, 1, x, &y, pool);
    return;
  }
  // prefill: a GEMM on the activations transposed to xt[slot][token], so that the kernels broadcast one weight
  // against a vector of tokens and write whole vectors of results
  for (std::int64_t t0 = 0; t0 < n; t0 += kTokensPerPass) {
    const std::int64_t m = std::min(kTokensPerPass, n - t0), mPad = (m + k.tokenPad - 1) / k.tokenPad * k.tokenPad;
    AlignedFloats xt(slots * mPad);
    const std::int64_t windowsPerTask = std::max<std::int64_t>(1, 256 / layout.window);
    pool.parallelFor(taskCount(layout.windows, windowsPerTask), [&](std::size_t t) {
      const std::int64_t k0 = static_cast<std::int64_t>(t) * windowsPerTask;
      forSlots(layout, w.cols, k0, std::min(layout.windows, k0 + windowsPerTask), [&](std::int64_t s, std::int64_t c) {
        for (std::int64_t i = 0; i < m; ++i) xt.data()[s * mPad + i] = x[(t0 + i) * w.cols + c];
      });
    });
    pool.parallelFor(taskCount(w.rows, k.gemmRowsPerTask), [&](std::size_t t) {
      const std::int64_t r0 = static_cast<std::int64_t>(t) * k.gemmRowsPerTask;
      k.gemm(w, layout, r0, std::min(w.rows, r0 + k.gemmRowsPerTask), xt.data(), m, mPad, y + t0 * w.rows,
             gemmScratch(k.gemmScratchFloats(layout, mPad)));
    });
  }
}

void gemvShared(const KernelSet& k, const Weights* w, std::size_t count, const float* x, float* const* y, ThreadPool& pool) {
  std::vector<Layout> layouts(count);
  std::vector<AlignedFloats> slotted;
  slotted.reserve(count);
  std::vector<const float*> xs(count);
  std::int64_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    layouts[i] = k.layout(w[i]);
    total += w[i].rows;
    const Layout& l = layouts[i];
    for (std::size_t j = 0; j < i && !xs[i]; ++j)
      if (w[j].cols == w[i].cols && layouts[j].window == l.window && layouts[j].lead == l.lead &&
          layouts[j].windows == l.windows && layouts[j].order == l.order)
        xs[i] = xs[j];
    if (xs[i]) continue;
    float* d = slotted.emplace_back(l.windows * l.window).data();
    forSlots(l, w[i].cols, 0, l.windows, [&](std::int64_t s, std::int64_t c) { d[s] = x[c]; });
    xs[i] = d;
  }
  // Two long runs of rows per thread, sized by all the rows together (a run does not cross from one matrix into the
  // next): each thread's weight stream stays sequential for long (32-row tasks taken in turns by the threads cost a
  // fifth of the bandwidth on the test VM), and the second run still balances a thread that started late.
  const std::int64_t perThread = (total + pool.size() - 1) / pool.size();
  const std::int64_t perTask = std::max(k.gemvRowsPerTask, (perThread + 1) / 2);
  struct Task {
    std::size_t matrix;
    std::int64_t r0, r1;
  };
  std::vector<Task> tasks;
  for (std::size_t i = 0; i < count; ++i)
    for (std::int64_t r0 = 0; r0 < w[i].rows; r0 += perTask) tasks.push_back({i, r0, std::min(w[i].rows, r0 + perTask)});
  pool.parallelFor(tasks.size(), [&](std::size_t t) {
    const Task& task = tasks[t];
    k.gemv(w[task.matrix], layouts[task.matrix], task.r0, task.r1, xs[task.matrix], y[task.matrix]);
  });
}

}  // namespace kernels

// ---- Choice of kernels ----------------------------------------------------------------------------------------------

namespace {


kernels::Weights weightsOf(const Linear& l) {
  kernels::Weights w;
  w.rows = l.rows;
  w.cols = l.cols;
  w.bias = l.bias.empty() ? nullptr : l.bias.data();
  switch (l.kind) {
    case Linear::Kind::F32:
      w.type = kernels::WeightType::F32;
      w.data = l.f32.data();
      break;
    case Linear::Kind::BF16:
      w.type = kernels::WeightType::BF16;
      w.data = l.bf16.data();
      break;
    case Linear::Kind::Codes:
      w.type = l.format == quant::CodeFormat::Fp8E4M3 ? kernels::WeightType::Fp8 : kernels::WeightType::Int8;
      w.data = l.codes.data();
      w.scales = l.scales.data();
      break;
  }
  return w;
}

}  // namespace


// ---- Linear ---------------------------------------------------------------------------------------------------------

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

void Linear::forward(const float* x, std::int64_t n, float* y, ThreadPool& pool) const {
  kernels::forward(*kernels::kernelSet(kernelIsa()), weightsOf(*this), x, n, y, pool);
}

void forwardShared(std::span<const Linear* const> ws, const float* x, std::int64_t n, std::span<float* const> ys,
                   ThreadPool& pool) {
  if (ws.size() != ys.size()) fail(Errc::InvalidArgument, "forwardShared: {} matrices, {} outputs", ws.size(), ys.size());
  std::vector<kernels::Weights> w;
  for (const Linear* l : ws) {
    if (l->cols != ws[0]->cols) fail(Errc::InvalidArgument, "forwardShared: matrices of {} and {} columns", ws[0]->cols, l->cols);
    w.push_back(weightsOf(*l));
  }
  const kernels::KernelSet& k = *kernels::kernelSet(kernelIsa());
  if (n == 1) kernels::gemvShared(k, w.data(), w.size(), x, ys.data(), pool);
  else kernels::forwardShared(k, w.data(), w.size(), x, n, ys.data(), pool);
}

Linear Linear::sliceRows(std::int64_t r0, std::int64_t r1) const {
  Linear l;
  l.kind = kind;
  l.format = format;
  l.source = source;
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
