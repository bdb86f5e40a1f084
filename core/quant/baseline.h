// Classic quantization baselines for comparison with EntQuant at equal size: RTN asymmetric int4/int3/int2 and
// NF4 (bitsandbytes codebook), one fp16 scale (and for RTN one b-bit zero-point) per group of a row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eq::quant {

enum class BaselineMethod { Rtn4, Rtn3, Rtn2, Nf4 };

std::optional<BaselineMethod> parseBaselineMethod(std::string_view name);  // "rtn4" | "rtn3" | "rtn2" | "nf4"
std::string_view baselineMethodName(BaselineMethod method);
int baselineCodeBits(BaselineMethod method);  // b: 4, 3, 2, 4

// The NF4 codebook of bitsandbytes (create_normal_map), ascending.
inline constexpr float kNf4Codebook[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f, -0.28444138169288635f,
    -0.18477343022823334f, -0.09105003625154495f, 0.0f, 0.07958029955625534f, 0.16093020141124725f,
    0.24611230194568634f, 0.33791524171829224f, 0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f,
    1.0f};

// A quantized 2-D tensor [rows, cols]. Groups of `groupSize` weights run along each row; a row has
// ceil(cols / groupSize) groups and its last one may be shorter. Groups are numbered row-major
// (group = row * groupsPerRow + g). Element i (row-major) occupies bits [i*b, (i+1)*b) of `codes`, LSB first;
// group k's zero-point occupies bits [k*b, (k+1)*b) of `zeros` the same way. Unused high bits of the last byte
// are 0.
struct BaselineTensor {
  BaselineMethod method = BaselineMethod::Rtn4;
  std::int64_t rows = 0, cols = 0;
  int groupSize = 64;
  std::vector<std::uint8_t> codes;    // packed b-bit codes, ceil(rows*cols*b/8) bytes
  std::vector<std::uint16_t> scales;  // fp16 bits, one per group
  std::vector<std::uint8_t> zeros;    // RTN: packed b-bit zero-points, ceil(groups*b/8) bytes; NF4: empty
};

// Quantization, per group, in float arithmetic exactly as written (tests recompute it bit for bit):
//
// RTN, b bits, qmax = 2^b - 1:
//   mn = min(0, min w), mx = max(0, max w)        -- the range always contains 0 (as GPTQ does): otherwise a
//                                                    group of one sign would need a zero-point outside [0, qmax]
//                                                    and lose everything but its smallest weights
//   scale = fp16((mx - mn) / qmax)
//   zero  = clamp(rne(-mn / scale), 0, qmax);  q = clamp(rne(w / scale) + zero, 0, qmax)
//   w_hat = bf16(float(q - zero) * scale)
//   so |w - w_hat| <= scale/2 up to the fp16 rounding of the scale and the bf16 rounding of w_hat. No special
//   case for constant groups: c > 0 gives q - zero = qmax, c < 0 gives -qmax, and w_hat = c exactly when c is a
//   bf16 value and |c| / qmax a normal fp16 (the 11-bit scale error vanishes in the 8-bit bf16 rounding). An
//   all-zero group gets scale 0, zero 0, codes 0.
// NF4:
//   scale = fp16(max |w|);  q = index of the codebook entry nearest to w / scale (ties: the lower index)
//   w_hat = bf16(codebook[q] * scale)
//   A constant bf16 group c in fp16's normal range gets code 0 or 15 (-1 or 1) and w_hat = c exactly; scale 0
//   gives code 7 (0.0) everywhere.
//
// Edge cases (never UB): if the scale is 0 every weight of the group dequantizes to 0 (RTN: codes 0, zero 0).
// NaN and +-inf do not enter min/max/absmax; NaN quantizes as 0 and +-inf saturate to the group's extreme codes.
// Scales saturate at fp16's largest finite value, 65504 (weights beyond qmax * 65504 are clamped).
//
// Throws InvalidArgument if rows, cols or groupSize is not positive or the shape is too large to address.
BaselineTensor quantizeBaseline(BaselineMethod method, const float* weights, std::int64_t rows, std::int64_t cols,
                                int groupSize = 64);

// Writes rows*cols bf16 values. Throws InvalidArgument if the tensor's vectors do not match its shape.
void dequantizeBaseline(const BaselineTensor& tensor, std::uint16_t* outBf16);

// Serialized payload (part of the .eqz format), little-endian, no padding, no header (method, shape and group
// size are stored by the container):
//   codes   ceil(rows*cols*b / 8) bytes          packed as described above
//   scales  2 * rows*groupsPerRow bytes          fp16, little-endian, group order
//   zeros   ceil(rows*groupsPerRow*b / 8) bytes  RTN only; absent for NF4
// Every byte counts toward the true size: bits per weight = 8 * stored bytes / (rows*cols).
std::uint64_t baselineStoredBytes(const BaselineTensor& tensor);
// The payload's size for a shape, before quantizing (planning predicts file sizes with it).
std::uint64_t baselinePayloadBytes(BaselineMethod method, std::int64_t rows, std::int64_t cols, int groupSize = 64);
double baselineBitsPerWeight(const BaselineTensor& tensor);

std::vector<std::byte> serializeBaseline(const BaselineTensor& tensor);
// Throws Corrupt "<label>: <method> payload is N bytes, expected M" unless the size is exact; InvalidArgument
// for an impossible shape or group size.
BaselineTensor deserializeBaseline(std::span<const std::byte> payload, BaselineMethod method, std::int64_t rows,
                                   std::int64_t cols, int groupSize, const std::string& label);

}  // namespace eq::quant
