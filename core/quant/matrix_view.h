// A read-only view of a checkpoint tensor as a matrix of rows (the last dimension) in its stored dtype, converted
// to float one row at a time, so compression never holds a float copy of a whole model.
#pragma once

#include "format/dtype.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace eq::quant {

struct MatrixView {
  const std::byte* data = nullptr;
  DType dtype = DType::BF16;  // BF16, F16 or F32
  std::int64_t rows = 0, cols = 0;

  static MatrixView of(std::span<const std::byte> bytes, DType dtype, const std::vector<std::int64_t>& shape);
  void row(std::int64_t r, float* out) const;
  std::uint64_t numel() const { return static_cast<std::uint64_t>(rows) * static_cast<std::uint64_t>(cols); }
};

}  // namespace eq::quant
