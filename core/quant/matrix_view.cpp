#include "quant/matrix_view.h"

#include "common/error.h"
#include "common/numerics.h"

#include <cstring>

namespace eq::quant {

MatrixView MatrixView::of(std::span<const std::byte> bytes, DType dtype, const std::vector<std::int64_t>& shape) {
  if (!isConvertibleToFloat(dtype))
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
  convertToFloat(dtype, data + static_cast<std::size_t>(r) * n * dtypeSize(dtype), n, out);
}

}  // namespace eq::quant
