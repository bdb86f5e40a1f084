// A weight matrix in the form the CPU engine multiplies with: f32, bf16 (original checkpoints) or 8-bit EntQuant
// codes with one scale per row (.eqz files: 1 byte per weight in RAM). y = W x for one token (GEMV) or many
// (prefill: a blocked GEMM that decodes each weight once per 256 tokens), rows split over the thread pool; fp32
// activations and accumulation. The kernels come in AVX2 and AVX-512 versions, chosen at run time.
#pragma once

#include "common/aligned.h"
#include "common/cpu_isa.h"
#include "quant/code_format.h"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::model {

struct Linear {
  enum class Kind { F32, BF16, Codes };
  Kind kind = Kind::F32;
  std::int64_t rows = 0, cols = 0;  // out_features, in_features
  // Storage at a fixed place relative to the cache lines (common/aligned.h): results then do not depend on where
  // the heap put it.
  LinePlacedVector<float> f32;
  LinePlacedVector<std::uint16_t> bf16;
  LinePlacedVector<std::uint8_t, true> codes;  // on huge pages (common/aligned.h)
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  std::vector<float> scales;  // per row, Codes only
  std::vector<float> bias;    // empty when none
  std::string source;         // the checkpoint tensor it came from (a fused one for slices); calibration keys by it

  bool empty() const { return rows == 0; }
  // Row r as floats (embedding lookup, or a tied lm_head's rows).
  void row(std::int64_t r, float* out) const;
  // Y[n][rows] = X[n][cols] * W^T (+ bias).
  void forward(const float* x, std::int64_t n, float* y, ThreadPool& pool) const;
  std::uint64_t bytes() const;
  // Rows [r0, r1) as a matrix of their own (splits fused projections such as qkv_proj and gate_up_proj).
  Linear sliceRows(std::int64_t r0, std::int64_t r1) const;
};

// ys[i] = W_i x for matrices that share their input (q/k/v, gate/up): for one token all their rows go to the pool in
// one hand-off (each forward is one; a decoded token has about 180 of them on a 22-layer model); for several tokens
// the same as calling forward on each. All matrices must have the same number of columns.
void forwardShared(std::span<const Linear* const> ws, const float* x, std::int64_t n, std::span<float* const> ys,
                   ThreadPool& pool);


}  // namespace eq::model
