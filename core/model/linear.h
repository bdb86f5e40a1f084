// A weight matrix in the form the CPU engine multiplies with: f32, bf16 (original checkpoints) or 8-bit EntQuant
// codes with one scale per row (.eqz files: 1 byte per weight in RAM). y = W x for one token (GEMV) or many
// (prefill), rows split over the thread pool; fp32 activations and accumulation.
#pragma once

#include "quant/code_format.h"

#include <cstdint>
#include <span>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::model {

struct Linear {
  enum class Kind { F32, BF16, Codes };
  Kind kind = Kind::F32;
  std::int64_t rows = 0, cols = 0;  // out_features, in_features
  std::vector<float> f32;
  std::vector<std::uint16_t> bf16;
  std::vector<std::uint8_t> codes;
  quant::CodeFormat format = quant::CodeFormat::Fp8E4M3;
  std::vector<float> scales;  // per row, Codes only
  std::vector<float> bias;    // empty when none

  bool empty() const { return rows == 0; }
  // Row r as floats (embedding lookup, or a tied lm_head's rows).
  void row(std::int64_t r, float* out) const;
  // Y[n][rows] = X[n][cols] * W^T (+ bias).
  void forward(const float* x, std::int64_t n, float* y, ThreadPool& pool) const;
  std::uint64_t bytes() const;
  // Rows [r0, r1) as a matrix of their own (splits fused projections such as qkv_proj and gate_up_proj).
  Linear sliceRows(std::int64_t r0, std::int64_t r1) const;
};

}  // namespace eq::model
