#include "quant/matrix_view.h"

#include "common/error.h"
#include "common/numerics.h"

#include <cstring>

namespace eq::quant {

MatrixView MatrixView::of(std::span<const std::byte> bytes, DType dtype, const std::vector<std::int64_t>& shape) {
  if (dtype != DType::BF16 && dtype != DType::F16 && dtype != DType::F32)
    fail(Errc::Unsupported, "tensor of dtype {} cannot be quantized", dtypeName(dtype));
  if (shape.empty()) fail(Errc::InvalidArgument, "a scalar cannot be quantized");
  MatrixView v;
  v.data = bytes.data();
  v.dtype = dtype;
  v.cols = shape.back();
  v.rows = 1;
  for (std::size_t i = 0; i + 1 < shape.size(); ++i) v.rows *= shape[i];
  if (bytes.size() != v.numel() * dtypeSize(dtype)) fail(Errc::InvalidArgument, "matrix view: size mismatch");
  return v;
}

void MatrixView::row(std::int64_t r, float* out) const {
  const std::size_t n = static_cast<std::size_t>(cols);
  const std::byte* p = data + static_cast<std::size_t>(r) * n * dtypeSize(dtype);
  if (dtype == DType::F32) {
    std::memcpy(out, p, n * 4);
  } else if (dtype == DType::BF16) {
    for (std::size_t j = 0; j < n; ++j) {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * j, 2);
      out[j] = bf16ToF32(h);
    }
  } else {
    for (std::size_t j = 0; j < n; ++j) {
      std::uint16_t h;
      std::memcpy(&h, p + 2 * j, 2);
      out[j] = f16ToF32(h);
    }
  }
}

}  // namespace eq::quant
