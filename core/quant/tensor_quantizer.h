// Quantizes one weight matrix with EntQuant: exact per-row scale search, rate control (the paper's lambda, or a
// target of effective bits per weight reached by bisection on lambda), then the rANS stream of the codes.
#pragma once

#include "codec/rans.h"
#include "quant/code_format.h"
#include "quant/matrix_view.h"
#include "quant/row_scale_search.h"

#include <functional>
#include <string>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::quant {

struct RateTarget {
  enum class Mode { Lambda, Bits };
  Mode mode = Mode::Bits;
  double value = 3.0;  // lambda, or effective bits per weight
};

struct QuantizeOptions {
  CodeFormat format = CodeFormat::Fp8E4M3;
  RateTarget target;
  std::uint32_t segmentSymbols = codec::kDefaultSegmentSymbols;
  double bitsTolerance = 0.01;              // bisection stops inside this (the contract is +-0.03)
  std::function<bool()> keepGoing;          // false cancels with Error(Cancelled)
};

struct QuantizedTensor {
  CodeFormat format = CodeFormat::Fp8E4M3;
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint16_t> scales;  // bf16 bits, one per row
  std::vector<std::byte> stream;      // rANS stream of the row-major codes
  double lambda = 0;
  double entropyBits = 0;     // Shannon bits per weight of the codes
  double effectiveBits = 0;   // 8 * (stream + scale bytes) / weights
  int distinctSymbols = 0;
  double relL1 = 0;           // sum|w_hat - w| / sum|w|
  double relL2 = 0;           // sqrt(sum (w_hat - w)^2 / sum w^2)
  bool targetClamped = false; // the bits target lay outside what any lambda reaches

  std::uint64_t storedBytes() const { return stream.size() + 2 * scales.size(); }
};

// Rate-distortion curve of a tensor for bit allocation, measured on about maxRows evenly spaced rows: predicted
// effective bits per weight and relative MSE (sum (w_hat - w)^2 / sum w^2) for a grid of lambdas.
struct RatePoint {
  double lambda = 0, bits = 0, relMse = 0;
};
std::vector<RatePoint> rateCurve(const MatrixView& m, const QuantizeOptions& options, ThreadPool& pool,
                                 std::int64_t maxRows = 256);

// Bytes a stream of `symbols` costs beyond its entropy-coded payload: header, table, segment index and states.
std::uint64_t streamOverheadBytes(std::uint64_t symbols, std::uint32_t segmentSymbols, int presentSymbols);

QuantizedTensor quantizeTensor(const MatrixView& m, const QuantizeOptions& options, ThreadPool& pool);

// Decodes a stored tensor back to bf16 (w_hat = bf16(value(q) * s)), row-major. Throws Error(Corrupt).
void dequantizeTensor(CodeFormat format, std::span<const std::byte> stream, std::span<const std::uint16_t> scales,
                      std::int64_t rows, std::int64_t cols, std::uint16_t* outBf16, const std::string& label,
                      ThreadPool* pool);

}  // namespace eq::quant
