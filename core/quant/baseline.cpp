#include "quant/baseline.h"

#include "common/error.h"
#include "common/numerics.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace eq::quant {
namespace {

constexpr std::uint16_t kF16Inf = 0x7C00, kF16Max = 0x7BFF;  // +inf, 65504

bool isRtn(BaselineMethod m) { return m != BaselineMethod::Nf4; }

// Byte counts of the serialized payload; every size is overflow-checked because shapes may come from a file.
struct Layout {
  std::uint64_t groupsPerRow = 0, groups = 0, codeBytes = 0, scaleBytes = 0, zeroBytes = 0;
  std::uint64_t total() const { return codeBytes + scaleBytes + zeroBytes; }
};

std::uint64_t packedBytes(std::uint64_t count, int bits, bool& overflow) {
  std::uint64_t total = 0;
  overflow |= __builtin_mul_overflow(count, static_cast<std::uint64_t>(bits), &total);
  return total / 8 + (total % 8 != 0);
}

Layout layoutOf(BaselineMethod m, std::int64_t rows, std::int64_t cols, int groupSize, std::string_view label) {
  const int b = baselineCodeBits(m);
  if (b == 0) fail(Errc::InvalidArgument, "{}: unknown baseline method {}", label, static_cast<int>(m));
  if (rows <= 0 || cols <= 0 || groupSize <= 0)
    fail(Errc::InvalidArgument, "{}: {} needs a positive shape and group size, got [{}, {}] with groups of {}",
         label, baselineMethodName(m), rows, cols, groupSize);
  const auto r = static_cast<std::uint64_t>(rows), c = static_cast<std::uint64_t>(cols);
  const auto g = static_cast<std::uint64_t>(groupSize);
  Layout l;
  bool overflow = false;
  std::uint64_t numel = 0;
  overflow |= __builtin_mul_overflow(r, c, &numel);
  l.groupsPerRow = c / g + (c % g != 0);
  overflow |= __builtin_mul_overflow(r, l.groupsPerRow, &l.groups);
  l.codeBytes = packedBytes(numel, b, overflow);
  overflow |= __builtin_mul_overflow(l.groups, std::uint64_t{2}, &l.scaleBytes);
  l.zeroBytes = isRtn(m) ? packedBytes(l.groups, b, overflow) : 0;
  if (overflow || numel > (std::uint64_t{1} << 60))
    fail(Errc::InvalidArgument, "{}: {} shape [{}, {}] is too large", label, baselineMethodName(m), rows, cols);
  return l;
}

// Throws unless the vectors of a (possibly hand-built) tensor match its shape, so nothing reads out of bounds.
Layout checkedLayout(const BaselineTensor& t) {
  const Layout l = layoutOf(t.method, t.rows, t.cols, t.groupSize, "baseline");
  if (t.codes.size() != l.codeBytes || t.scales.size() != l.groups || t.zeros.size() != l.zeroBytes)
    fail(Errc::InvalidArgument, "baseline: {} tensor [{}, {}] has {} code bytes, {} scales and {} zero bytes; "
         "expected {}, {} and {}", baselineMethodName(t.method), t.rows, t.cols, t.codes.size(), t.scales.size(),
         t.zeros.size(), l.codeBytes, l.groups, l.zeroBytes);
  return l;
}

// Value `index` of a dense LSB-first stream of b-bit values (b <= 8, so it spans at most two bytes).
void putBits(std::uint8_t* bytes, std::uint64_t index, int b, unsigned v) {
  const std::uint64_t bit = index * static_cast<std::uint64_t>(b);
  const unsigned shift = bit & 7;
  std::uint8_t* p = bytes + (bit >> 3);
  p[0] |= static_cast<std::uint8_t>(v << shift);
  if (shift + b > 8) p[1] |= static_cast<std::uint8_t>(v >> (8 - shift));
}

unsigned getBits(const std::uint8_t* bytes, std::uint64_t index, int b) {
  const std::uint64_t bit = index * static_cast<std::uint64_t>(b);
  const unsigned shift = bit & 7;
  const std::uint8_t* p = bytes + (bit >> 3);
  unsigned v = p[0] >> shift;
  if (shift + b > 8) v |= static_cast<unsigned>(p[1]) << (8 - shift);
  return v & ((1u << b) - 1);
}

// Calls fn(group, firstElement, length) for every group, row-major.
template <typename Fn>
void forEachGroup(std::int64_t rows, std::int64_t cols, int groupSize, Fn&& fn) {
  std::uint64_t group = 0;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t c0 = 0; c0 < cols; c0 += groupSize)
      fn(group++, static_cast<std::uint64_t>(r * cols + c0), std::min<std::int64_t>(groupSize, cols - c0));
}

// fp16 bits of a non-negative scale; overflow saturates at 65504 so no scale is infinite.
std::uint16_t scaleBits(float s) {
  const std::uint16_t h = f32ToF16(s);
  return h == kF16Inf ? kF16Max : h;
}

// clamp(x, 0, qmax) as an integer; NaN gives 0 (fmax returns the number).
unsigned clampCode(float x, int qmax) {
  return static_cast<unsigned>(std::fmin(std::fmax(x, 0.0f), static_cast<float>(qmax)));
}

float finiteOrZero(float w) { return std::isnan(w) ? 0.0f : w; }

// ---- RTN ----
struct RtnGroup {
  std::uint16_t scale = 0;
  float s = 0;
  unsigned zero = 0;
};

RtnGroup rtnGroup(const float* w, std::int64_t n, int qmax) {
  float mn = 0, mx = 0;  // the range always contains 0 (see the header)
  for (std::int64_t j = 0; j < n; ++j) {
    if (!std::isfinite(w[j])) continue;
    mn = std::min(mn, w[j]);
    mx = std::max(mx, w[j]);
  }
  RtnGroup g;
  g.scale = scaleBits((mx - mn) / static_cast<float>(qmax));
  g.s = f16ToF32(g.scale);
  if (g.s > 0) g.zero = clampCode(std::nearbyint(-mn / g.s), qmax);
  return g;
}

unsigned rtnCode(float w, const RtnGroup& g, int qmax) {
  if (!(g.s > 0)) return 0;
  return clampCode(std::nearbyint(finiteOrZero(w) / g.s) + static_cast<float>(g.zero), qmax);
}

std::uint16_t rtnValue(unsigned q, unsigned zero, float s) {
  return f32ToBf16(static_cast<float>(static_cast<int>(q) - static_cast<int>(zero)) * s);
}

// ---- NF4 ----
constexpr unsigned kNf4Zero = 7;

// Nearest codebook entry to t in [-1, 1], ties to the lower index. The codebook is sorted, so only the two
// neighbours of t can be nearest (its gaps are far above float resolution, so this equals a full scan).
unsigned nf4Nearest(float t) {
  const float* begin = std::begin(kNf4Codebook);
  const float* it = std::upper_bound(begin, std::end(kNf4Codebook), t);  // first entry > t
  if (it == begin) return 0;
  if (it == std::end(kNf4Codebook)) return 15;
  const auto k = static_cast<unsigned>(it - begin);
  return t - kNf4Codebook[k - 1] <= kNf4Codebook[k] - t ? k - 1 : k;
}

unsigned nf4Code(float w, float s) {
  if (!(s > 0)) return kNf4Zero;
  return nf4Nearest(std::fmin(std::fmax(finiteOrZero(w) / s, -1.0f), 1.0f));  // +-inf -> +-1
}

std::uint16_t nf4Scale(const float* w, std::int64_t n) {
  float absmax = 0;
  for (std::int64_t j = 0; j < n; ++j)
    if (std::isfinite(w[j])) absmax = std::max(absmax, std::fabs(w[j]));
  return scaleBits(absmax);
}

}  // namespace

std::optional<BaselineMethod> parseBaselineMethod(std::string_view name) {
  if (name == "rtn4") return BaselineMethod::Rtn4;
  if (name == "rtn3") return BaselineMethod::Rtn3;
  if (name == "rtn2") return BaselineMethod::Rtn2;
  if (name == "nf4") return BaselineMethod::Nf4;
  return std::nullopt;
}

std::string_view baselineMethodName(BaselineMethod method) {
  switch (method) {
    case BaselineMethod::Rtn4: return "rtn4";
    case BaselineMethod::Rtn3: return "rtn3";
    case BaselineMethod::Rtn2: return "rtn2";
    case BaselineMethod::Nf4: return "nf4";
  }
  return "unknown";
}

int baselineCodeBits(BaselineMethod method) {
  switch (method) {
    case BaselineMethod::Rtn4: return 4;
    case BaselineMethod::Rtn3: return 3;
    case BaselineMethod::Rtn2: return 2;
    case BaselineMethod::Nf4: return 4;
  }
  return 0;
}

BaselineTensor quantizeBaseline(BaselineMethod method, const float* weights, std::int64_t rows, std::int64_t cols,
                                int groupSize) {
  const Layout l = layoutOf(method, rows, cols, groupSize, "baseline");
  BaselineTensor t{method, rows, cols, groupSize, std::vector<std::uint8_t>(l.codeBytes),
                   std::vector<std::uint16_t>(l.groups), std::vector<std::uint8_t>(l.zeroBytes)};
  const int b = baselineCodeBits(method), qmax = (1 << b) - 1;
  forEachGroup(rows, cols, groupSize, [&](std::uint64_t group, std::uint64_t first, std::int64_t n) {
    const float* w = weights + first;
    if (isRtn(method)) {
      const RtnGroup g = rtnGroup(w, n, qmax);
      t.scales[group] = g.scale;
      putBits(t.zeros.data(), group, b, g.zero);
      for (std::int64_t j = 0; j < n; ++j) putBits(t.codes.data(), first + j, b, rtnCode(w[j], g, qmax));
    } else {
      t.scales[group] = nf4Scale(w, n);
      const float s = f16ToF32(t.scales[group]);
      for (std::int64_t j = 0; j < n; ++j) putBits(t.codes.data(), first + j, b, nf4Code(w[j], s));
    }
  });
  return t;
}

void dequantizeBaseline(const BaselineTensor& t, std::uint16_t* outBf16) {
  checkedLayout(t);
  const int b = baselineCodeBits(t.method);
  forEachGroup(t.rows, t.cols, t.groupSize, [&](std::uint64_t group, std::uint64_t first, std::int64_t n) {
    const float s = f16ToF32(t.scales[group]);
    const unsigned zero = isRtn(t.method) ? getBits(t.zeros.data(), group, b) : 0;
    for (std::int64_t j = 0; j < n; ++j) {
      const unsigned q = getBits(t.codes.data(), first + j, b);
      outBf16[first + j] = isRtn(t.method) ? rtnValue(q, zero, s) : f32ToBf16(kNf4Codebook[q] * s);
    }
  });
}

std::uint64_t baselineStoredBytes(const BaselineTensor& tensor) { return checkedLayout(tensor).total(); }

double baselineBitsPerWeight(const BaselineTensor& tensor) {
  return 8.0 * static_cast<double>(baselineStoredBytes(tensor)) /
         (static_cast<double>(tensor.rows) * static_cast<double>(tensor.cols));
}

std::uint64_t baselinePayloadBytes(BaselineMethod method, std::int64_t rows, std::int64_t cols, int groupSize) {
  return layoutOf(method, rows, cols, groupSize, "baseline").total();
}

std::vector<std::byte> serializeBaseline(const BaselineTensor& t) {
  const Layout l = checkedLayout(t);
  std::vector<std::byte> out(l.total());
  std::byte* p = out.data();
  std::memcpy(p, t.codes.data(), l.codeBytes);
  p += l.codeBytes;
  for (const std::uint16_t s : t.scales) {
    *p++ = static_cast<std::byte>(s & 0xFF);
    *p++ = static_cast<std::byte>(s >> 8);
  }
  if (l.zeroBytes) std::memcpy(p, t.zeros.data(), l.zeroBytes);
  return out;
}

BaselineTensor deserializeBaseline(std::span<const std::byte> payload, BaselineMethod method, std::int64_t rows,
                                   std::int64_t cols, int groupSize, const std::string& label) {
  const Layout l = layoutOf(method, rows, cols, groupSize, label);
  if (payload.size() != l.total())
    fail(Errc::Corrupt, "{}: {} payload is {} bytes, expected {}", label, baselineMethodName(method), payload.size(),
         l.total());
  BaselineTensor t{method, rows, cols, groupSize, {}, std::vector<std::uint16_t>(l.groups), {}};
  const auto* p = reinterpret_cast<const std::uint8_t*>(payload.data());
  t.codes.assign(p, p + l.codeBytes);
  p += l.codeBytes;
  for (auto& s : t.scales) {
    s = static_cast<std::uint16_t>(p[0] | (p[1] << 8));
    p += 2;
  }
  t.zeros.assign(p, p + l.zeroBytes);
  return t;
}

}  // namespace eq::quant
