// Quantizes one weight matrix with EntQuant: per-row scale choice under an objective (the paper's, solved exactly
// or locally, or entropy-constrained; or given scales), rate control (the objective's lambda, or a target of
// effective bits per weight reached by bisection on lambda), then the rANS stream of the codes.
#pragma once

#include "codec/rans.h"
#include "quant/code_format.h"
#include "quant/matrix_view.h"
#include "quant/row_scale_search.h"

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace eq {
class ThreadPool;
}

namespace eq::quant {

class ErrorFeedback;

struct RateTarget {
  enum class Mode { Lambda, Bits };
  Mode mode = Mode::Bits;
  double value = 3.0;  // lambda, or effective bits per weight
};

// How row scales are chosen (issue 6). All share the grid of RowScaleSearch and the rate control on lambda.
enum class Objective : std::uint8_t {
  Paper,       // the paper's objective, exact optimum per row (convex hull of each row's (rate, err))
  PaperLocal,  // the paper's objective, nearest local minimum on the grid from the reference's absmax start
  EcsqL1,      // entropy-constrained: relative l1 + lambda * code bits per weight under the tensor's histogram
  EcsqMse,     // the same with relative MSE as distortion
  EcsqL1Row,   // ecsq-l1 with per-row normalized distortion: the mean over rows of each row's relative l1
  EcsqMseRow,  // ecsq-mse with per-row normalized distortion: the mean over rows of each row's relative MSE
  EcsqRdo,     // ecsq-mse scales, then rate-distortion optimized codes (a weight may take a cheaper code toward
               // zero) and each row's scale refit so the row is not shrunk (sum w_hat w = sum w w); with error
               // feedback the same choice inside the sweep (ErrorFeedback::quantizeRowsRdo) and no refit
};
std::optional<Objective> parseObjective(std::string_view name);  // one of objectiveNames()
std::string_view objectiveName(Objective objective);
// Every objective's name, in the enum's order: paper, paper-local, ecsq-l1, ecsq-mse, ecsq-l1-row, ecsq-mse-row,
// ecsq-rdo.
std::span<const std::string_view> objectiveNames();

struct QuantizeOptions {
  CodeFormat format = CodeFormat::Fp8E4M3;
  RateTarget target;
  Objective objective = Objective::Paper;
  // Non-empty: given log2 row scales, one per row; row r uses the scale 2^(bf16(l_r)) rounded to bf16 (ENTQUANT.md
  // section 1); no search, `target` and `objective` are ignored. The values must be finite, within [-126, 127].
  std::span<const float> log2Scales;
  int ecsqIterations = 8;                   // histogram / choice alternations per lambda (ECSQ objectives)
  int ecsqWindow = 16;                      // ECSQ candidates: grid steps each side of the paper's start (0: all)
  std::uint32_t segmentSymbols = codec::kDefaultSegmentSymbols;
  double bitsTolerance = 0.01;              // bisection stops inside this (the contract is +-0.03)
  std::function<bool()> keepGoing;          // false cancels with Error(Cancelled)
  // Set: codes by error feedback against the layer's input statistics (error_feedback.h) instead of the nearest
  // codes at the chosen scales. With a bits target the target is re-aimed (up to 3 more solves) until the codes'
  // own rate lands within bitsTolerance, since the feedback changes their histogram. Size must equal cols.
  const ErrorFeedback* errorFeedback = nullptr;
};

struct QuantizedTensor {
  CodeFormat format = CodeFormat::Fp8E4M3;
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint16_t> scales;  // bf16 bits, one per row
  std::vector<std::byte> stream;      // rANS stream of the row-major codes
  double lambda = 0;          // in the objective's own units (the paper's lambda, or ECSQ's weight of bits/weight)
  double entropyBits = 0;     // Shannon bits per weight of the codes
  double effectiveBits = 0;   // 8 * (stream + scale bytes) / weights
  int distinctSymbols = 0;
  double relL1 = 0;           // sum|w_hat - w| / sum|w|
  double relL2 = 0;           // sqrt(sum (w_hat - w)^2 / sum w^2)
  bool targetClamped = false; // the bits target lay outside what any lambda reaches

  std::uint64_t storedBytes() const { return stream.size() + 2 * scales.size(); }
};

// Rate-distortion curve of a tensor for bit allocation, measured on about maxRows evenly spaced rows: predicted
// effective bits per weight and relative MSE (sum (w_hat - w)^2 / sum w^2) for a grid of lambdas, and the balanced
// relative MSE: the same with every element weighted by a_i b_j, row and column factors that give each row and each
// column of the weighted squares the same sum. Scaling a row or a column of the tensor (as the exact rescalings
// between a norm and the next layer, or between up_proj's rows and down_proj's columns, do) leaves it unchanged, so
// outlier rows or columns do not make a tensor look cheap to compress (docs/QUALITY.md, "Outlier channels").
struct RatePoint {
  double lambda = 0, bits = 0, relMse = 0, relMseBalanced = 0;
};
// The lambdas are normalized by the whole tensor's sum |w| (the paper's objective), read from every row; with
// `sampledSums` estimated from the sampled rows instead, so that only about maxRows rows are read (the GUI's analysis
// of a large model: a 70B model's curves without reading its 140 GB; the points move a little along the same curve).
std::vector<RatePoint> rateCurve(const MatrixView& m, const QuantizeOptions& options, ThreadPool& pool,
                                 std::int64_t maxRows = 256, bool sampledSums = false);

// The bf16 scale of a given log2 scale: bf16(2^bf16(l)).
std::uint16_t scaleOfLog2(float log2Scale);

// Bytes a stream of `symbols` costs beyond its entropy-coded payload: header, table, segment index and states.
std::uint64_t streamOverheadBytes(std::uint64_t symbols, std::uint32_t segmentSymbols, int presentSymbols);

QuantizedTensor quantizeTensor(const MatrixView& m, const QuantizeOptions& options, ThreadPool& pool);

// Decodes a stored tensor back to bf16 (w_hat = bf16(value(q) * s)), row-major. Throws Error(Corrupt).
void dequantizeTensor(CodeFormat format, std::span<const std::byte> stream, std::span<const std::uint16_t> scales,
                      std::int64_t rows, std::int64_t cols, std::uint16_t* outBf16, const std::string& label,
                      ThreadPool* pool);

}  // namespace eq::quant
