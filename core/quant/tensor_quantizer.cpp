#include "quant/tensor_quantizer.h"

#include "common/error.h"
#include "common/thread_pool.h"
#include "quant/scale_grid.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>

namespace eq::quant {
namespace {

constexpr std::int64_t kRowBlock = 16;
constexpr double kLambdaMin = 1e-6, kLambdaMax = 1e7;

// Everything lambda-independent about a tensor: each row's hull, and the sums the objective normalizes by.
struct Analysis {
  std::vector<std::vector<RowPoint>> hulls;
  double absSum = 0, sqSum = 0;
};

template <typename Body>
void forRowBlocks(ThreadPool& pool, std::int64_t rows, const QuantizeOptions& o, Body&& body) {
  const std::size_t blocks = static_cast<std::size_t>((rows + kRowBlock - 1) / kRowBlock);
  pool.parallelFor(blocks, [&](std::size_t b) {
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "cancelled");
    const std::int64_t r0 = static_cast<std::int64_t>(b) * kRowBlock;
    body(r0, std::min(rows, r0 + kRowBlock));
  });
}

// Hulls of every rowStep-th row (all rows when 1); the sums cover every row.
Analysis analyze(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool, std::int64_t rowStep = 1) {
  Analysis a;
  a.hulls.resize(static_cast<std::size_t>(m.rows));
  std::mutex mu;
  bool nonFinite = false;
  forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
    RowScaleSearch search(o.format);
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    double abs = 0, sq = 0;
    bool bad = false;
    for (std::int64_t r = r0; r < r1; ++r) {
      m.row(r, w.data());
      for (float x : w) {
        bad |= !std::isfinite(x);
        abs += std::fabs(x);
        sq += static_cast<double>(x) * x;
      }
      if (bad) break;
      if (r % rowStep == 0) search.hull(w.data(), m.cols, a.hulls[static_cast<std::size_t>(r)]);
    }
    std::lock_guard lock(mu);
    a.absSum += abs;
    a.sqSum += sq;
    nonFinite |= bad;
  });
  if (nonFinite) fail(Errc::Unsupported, "contains NaN or infinite weights, which cannot be quantized");
  return a;
}

// Lambda of the paper -> the weight of a row's rate sum in err_r + lambda' * rate_r.
double rowLambda(const MatrixView& m, const Analysis& a, CodeFormat f, double lambda) {
  const double n = static_cast<double>(m.numel());
  return f == CodeFormat::Fp8E4M3 ? 4.0 * lambda * a.absSum / n : lambda * a.absSum / (128.0 * n);
}

// Histogram of the codes of every rowStep-th row at this lambda (and, if asked, their squared error and energy).
codec::SymbolCounts histogram(const MatrixView& m, const Analysis& a, const QuantizeOptions& o, double lambdaRow,
                              std::int64_t rowStep, ThreadPool& pool, double* sqErr = nullptr, double* sqSum = nullptr) {
  std::mutex mu;
  codec::SymbolCounts total{};
  double errTotal = 0, sumTotal = 0;
  const std::int64_t sampled = (m.rows + rowStep - 1) / rowStep;
  forRowBlocks(pool, sampled, o, [&](std::int64_t s0, std::int64_t s1) {
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    std::vector<std::uint8_t> q(static_cast<std::size_t>(m.cols));
    codec::SymbolCounts local{};
    double err = 0, sum = 0;
    for (std::int64_t s = s0; s < s1; ++s) {
      const std::int64_t r = s * rowStep;
      const auto& hull = a.hulls[static_cast<std::size_t>(r)];
      m.row(r, w.data());
      const std::uint16_t scale = scaleBitsOfIndex(hull[chooseOnHull(hull, lambdaRow)].k);
      quantizeRow(o.format, w.data(), m.cols, scale, q.data());
      const auto c = codec::countSymbols(q);
      for (int i = 0; i < 256; ++i) local[i] += c[i];
      if (sqErr)
        for (std::int64_t j = 0; j < m.cols; ++j) {
          const double d = static_cast<double>(bf16ToF32(dequantizeOne(o.format, q[j], bf16ToF32(scale)))) - w[j];
          err += d * d;
          sum += static_cast<double>(w[j]) * w[j];
        }
    }
    std::lock_guard lock(mu);
    for (int i = 0; i < 256; ++i) total[i] += local[i];
    errTotal += err;
    sumTotal += sum;
  });
  if (sqErr) *sqErr = errTotal;
  if (sqSum) *sqSum = sumTotal;
  return total;
}

// Predicted effective bits per weight at lambda, measured on every rowStep-th row.
double predictBits(const MatrixView& m, const Analysis& a, const QuantizeOptions& o, double lambda, std::int64_t rowStep,
                   ThreadPool& pool, double* relMse = nullptr) {
  double sqErr = 0, sqSum = 0;
  const auto counts = histogram(m, a, o, rowLambda(m, a, o.format, lambda), rowStep, pool, relMse ? &sqErr : nullptr,
                                &sqSum);
  if (relMse) *relMse = sqSum > 0 ? sqErr / sqSum : 0;
  std::uint64_t symbols = 0;
  for (auto c : counts) symbols += c;
  const auto table = codec::FrequencyTable::normalize(counts);
  const double payloadPerSymbol = table.codedBits(counts) / static_cast<double>(symbols);
  const std::uint32_t segment = codec::chooseSegmentSymbols(static_cast<std::uint64_t>(m.cols), o.segmentSymbols);
  // Stored bytes as the container lays them out: stream and scales, each padded to its 64-byte section.
  const double n = static_cast<double>(m.numel());
  const double stream = payloadPerSymbol * n / 8.0 +
                        static_cast<double>(streamOverheadBytes(m.numel(), segment, table.presentSymbols()));
  const double scales = 2.0 * static_cast<double>(m.rows);
  auto padded = [](double b) { return std::ceil(b / 64.0) * 64.0; };
  return 8.0 * (padded(stream) + padded(scales)) / n;
}

// Solves bits(lambda) = target on log(lambda) by regula falsi with the Illinois rule (bits fall about linearly
// in log lambda, so this takes a few evaluations where bisection takes a dozen). Returns lambda with bits within
// tol of the target, or an end of [lo, hi] when the target lies outside.
double solveLambda(const std::function<double(double)>& bitsAt, double target, double lo, double hi, double tol,
                   bool& clamped, std::optional<double> bitsLo = {}, std::optional<double> bitsHi = {}) {
  clamped = false;
  double f0 = (bitsLo ? *bitsLo : bitsAt(lo)) - target;
  if (f0 <= tol) {
    clamped = f0 < -tol;
    return lo;
  }
  double f1 = (bitsHi ? *bitsHi : bitsAt(hi)) - target;
  if (f1 >= -tol) {
    clamped = f1 > tol;
    return hi;
  }
  double x0 = std::log(lo), x1 = std::log(hi), x = x0;
  int side = 0;
  for (int it = 0; it < 60 && x1 - x0 > 1e-9; ++it) {
    x = (x0 * f1 - x1 * f0) / (f1 - f0);
    if (!(x > x0 && x < x1)) x = 0.5 * (x0 + x1);
    const double f = bitsAt(std::exp(x)) - target;
    if (std::fabs(f) <= tol) return std::exp(x);
    if (f > 0) {
      x0 = x, f0 = f;
      if (side == 1) f1 /= 2;
      side = 1;
    } else {
      x1 = x, f1 = f;
      if (side == -1) f0 /= 2;
      side = -1;
    }
  }
  return std::exp(x);
}

}  // namespace

std::vector<RatePoint> rateCurve(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool, std::int64_t maxRows) {
  const std::int64_t step = std::max<std::int64_t>(1, (m.rows + maxRows - 1) / maxRows);
  const Analysis a = analyze(m, o, pool, step);
  std::vector<RatePoint> curve;
  for (int i = 0; i <= 24; ++i) {
    const double lambda = std::pow(10.0, -0.5 + 0.125 * i);  // 0.3 ... 300: about 8 down to 1.5 bits
    RatePoint p{lambda, 0, 0};
    p.bits = predictBits(m, a, o, lambda, step, pool, &p.relMse);
    curve.push_back(p);
  }
  return curve;
}

std::uint64_t streamOverheadBytes(std::uint64_t symbols, std::uint32_t segmentSymbols, int presentSymbols) {
  const std::uint64_t segments = (symbols + segmentSymbols - 1) / segmentSymbols;
  const std::uint64_t header = (24 + 32 + 2 * static_cast<std::uint64_t>(presentSymbols) + 3) / 4 * 4;
  return header + segments * (4 + 4 * codec::kLanes + 1);  // index entry, states, average padding
}

QuantizedTensor quantizeTensor(const MatrixView& m, const QuantizeOptions& o, ThreadPool& pool) {
  const Analysis a = analyze(m, o, pool);
  QuantizedTensor t;
  t.format = o.format;
  t.rows = m.rows;
  t.cols = m.cols;
  if (o.target.mode == RateTarget::Mode::Lambda) {
    t.lambda = o.target.value;
  } else {
    // Coarse solve on a sample of rows, then on every row starting from a bracket around the coarse answer.
    const std::int64_t step = std::max<std::int64_t>(1, m.rows / 512);
    bool clamped = false;
    const double coarse = solveLambda([&](double l) { return predictBits(m, a, o, l, step, pool); }, o.target.value,
                                      kLambdaMin, kLambdaMax, o.bitsTolerance / 2, clamped);
    t.lambda = coarse;
    if (step > 1 && !clamped) {
      // On every row: usually the coarse answer is already inside the tolerance; otherwise bracket it and refine.
      auto full = [&](double l) { return predictBits(m, a, o, l, 1, pool); };
      const double b = full(coarse);
      if (std::fabs(b - o.target.value) > o.bitsTolerance) {
        double lo = coarse, hi = coarse, bLo = b, bHi = b;
        while (bLo < o.target.value && lo > kLambdaMin) bLo = full(lo = std::max(kLambdaMin, lo / 1.5));
        while (bHi > o.target.value && hi < kLambdaMax) bHi = full(hi = std::min(kLambdaMax, hi * 1.5));
        t.lambda = solveLambda(full, o.target.value, lo, hi, o.bitsTolerance, clamped, bLo, bHi);
      }
    }
    t.targetClamped = clamped;
  }

  // Final pass: codes, scales and error statistics at the chosen lambda.
  const double lambdaRow = rowLambda(m, a, o.format, t.lambda);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(m.numel()));
  t.scales.resize(static_cast<std::size_t>(m.rows));
  std::mutex mu;
  double errL1 = 0, errL2 = 0;
  forRowBlocks(pool, m.rows, o, [&](std::int64_t r0, std::int64_t r1) {
    std::vector<float> w(static_cast<std::size_t>(m.cols));
    double e1 = 0, e2 = 0;
    for (std::int64_t r = r0; r < r1; ++r) {
      const auto& hull = a.hulls[static_cast<std::size_t>(r)];
      const std::uint16_t s = scaleBitsOfIndex(hull[chooseOnHull(hull, lambdaRow)].k);
      t.scales[static_cast<std::size_t>(r)] = s;
      std::uint8_t* q = codes.data() + r * m.cols;
      m.row(r, w.data());
      quantizeRow(o.format, w.data(), m.cols, s, q);
      const float sf = bf16ToF32(s);
      for (std::int64_t j = 0; j < m.cols; ++j) {
        const double d = static_cast<double>(bf16ToF32(dequantizeOne(o.format, q[j], sf))) - w[j];
        e1 += std::fabs(d);
        e2 += d * d;
      }
    }
    std::lock_guard lock(mu);
    errL1 += e1;
    errL2 += e2;
  });
  const auto counts = codec::countSymbols(codes);
  const auto table = codec::FrequencyTable::normalize(counts);
  t.stream = codec::ransEncode(codes, table, codec::chooseSegmentSymbols(static_cast<std::uint64_t>(m.cols), o.segmentSymbols), &pool);
  const double n = static_cast<double>(m.numel());
  t.entropyBits = n > 0 ? codec::shannonBits(counts) / n : 0;
  t.effectiveBits = n > 0 ? 8.0 * static_cast<double>(t.storedBytes()) / n : 0;
  t.distinctSymbols = table.presentSymbols();
  t.relL1 = a.absSum > 0 ? errL1 / a.absSum : 0;
  t.relL2 = a.sqSum > 0 ? std::sqrt(errL2 / a.sqSum) : 0;
  return t;
}

void dequantizeTensor(CodeFormat format, std::span<const std::byte> stream, std::span<const std::uint16_t> scales,
                      std::int64_t rows, std::int64_t cols, std::uint16_t* out, const std::string& label,
                      ThreadPool* pool) {
  if (static_cast<std::int64_t>(scales.size()) != rows)
    fail(Errc::Corrupt, "{}: {} scales for {} rows", label, scales.size(), rows);
  std::vector<std::uint8_t> codes(static_cast<std::size_t>(rows * cols));
  codec::ransDecode(stream, codes, label, pool);
  auto body = [&](std::size_t r) {
    dequantizeRow(format, codes.data() + r * cols, cols, scales[r], out + r * cols);
  };
  if (pool) pool->parallelFor(static_cast<std::size_t>(rows), body);
  else for (std::size_t r = 0; r < static_cast<std::size_t>(rows); ++r) body(r);
}

}  // namespace eq::quant
