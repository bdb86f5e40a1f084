#include "format/dtype.h"

#include "common/numerics.h"

#include <cstdint>
#include <cstring>

#include <array>
#include <utility>

namespace eq {
namespace {
struct DTypeRow {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
constexpr std::array<DTypeRow, 12> kRows{{
    {DType::F64, "F64", 8}, {DType::F32, "F32", 4}, {DType::F16, "F16", 2}, {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1}, {DType::I64, "I64", 8},
    {DType::I32, "I32", 4}, {DType::I16, "I16", 2}, {DType::I8, "I8", 1}, {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
}};
}  // namespace

std::optional<DType> parseDType(std::string_view name) {
  for (const auto& row : kRows)
    if (row.name == name) return row.dtype;
  return std::nullopt;
}

std::string_view dtypeName(DType dtype) { return kRows[static_cast<std::size_t>(dtype)].name; }
std::size_t dtypeSize(DType dtype) { return kRows[static_cast<std::size_t>(dtype)].size; }

bool isFloatingPoint(DType dtype) {
  switch (dtype) {
    case DType::F64: case DType::F32: case DType::F16: case DType::BF16: case DType::F8_E4M3: case DType::F8_E5M2:
      return true;
    default:
      return false;
  }
}

bool isConvertibleToFloat(DType dtype) { return dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16; }

void convertToFloat(DType dtype, const std::byte* src, std::size_t n, float* dst) {
  if (dtype == DType::F32) {
    std::memcpy(dst, src, n * 4);
    return;
  }
  // one loop per dtype, so that each vectorizes (a bf16 is the high half of a float)
  if (dtype == DType::BF16) {
    for (std::size_t j = 0; j < n; ++j) {
      std::uint16_t h;
      std::memcpy(&h, src + 2 * j, 2);
      const std::uint32_t bits = static_cast<std::uint32_t>(h) << 16;
      std::memcpy(dst + j, &bits, 4);
    }
    return;
  }
  for (std::size_t j = 0; j < n; ++j) {
    std::uint16_t h;
    std::memcpy(&h, src + 2 * j, 2);
    dst[j] = f16ToF32(h);
  }
}

}  // namespace eq
