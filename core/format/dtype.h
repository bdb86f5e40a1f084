// Element types of safetensors checkpoints (the names are the safetensors spelling).
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace eq {

enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

std::optional<DType> parseDType(std::string_view name);
std::string_view dtypeName(DType dtype);
std::size_t dtypeSize(DType dtype);
bool isFloatingPoint(DType dtype);

// The checkpoint float formats the compressor and the engine read: F32, F16, BF16.
bool isConvertibleToFloat(DType dtype);
// Converts n values of such a dtype (unaligned bytes) to float.
void convertToFloat(DType dtype, const std::byte* src, std::size_t n, float* dst);

}  // namespace eq
