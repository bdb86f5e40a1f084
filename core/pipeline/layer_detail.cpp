#include "pipeline/layer_detail.h"

#include "codec/frequency_table.h"
#include "codec/rans.h"
#include "common/error.h"
#include "common/numerics.h"
#include "common/thread_pool.h"
#include "quant/matrix_view.h"

#include <algorithm>
#include <cmath>

namespace eq {
namespace {

void add(Histogram& h, double v) {
  if (h.counts.empty() || !(h.hi > h.lo)) return;
  const double u = (v - h.lo) / (h.hi - h.lo);
  const auto n = static_cast<std::int64_t>(h.counts.size());
  ++h.counts[static_cast<std::size_t>(std::clamp<std::int64_t>(static_cast<std::int64_t>(u * static_cast<double>(n)), 0, n - 1))];
}

nlohmann::ordered_json histogramJson(const Histogram& h) {
  return {{"lo", h.lo}, {"hi", h.hi}, {"counts", h.counts}};
}

}  // namespace

nlohmann::ordered_json LayerDetail::toJson() const {
  std::vector<std::uint64_t> codeList(codes.begin(), codes.end());
  return {{"name", name},       {"rows", rows},
          {"cols", cols},       {"rows_sampled", rowsSampled},
          {"weights", histogramJson(weights)}, {"errors", histogramJson(errors)},
          {"codes", codeList},  {"distinct_codes", distinctCodes},
          {"entropy_bpw", entropyBits}, {"effective_bpw", effectiveBits},
          {"rel_l2", relL2},    {"row", row},
          {"row_scale", rowScale}, {"grid", grid}};
}

LayerDetail inspectLayer(const ModelSource& source, const std::string& tensor, const LayerDetailOptions& o) {
  const ModelTensor* t = source.find(tensor);
  if (!t) fail(Errc::MissingTensor, "{}: the model has no tensor \"{}\"", source.input().string(), tensor);
  if (!t->cls.compressible)
    fail(Errc::InvalidArgument, "{}: tensor \"{}\" is not compressed (a {})", source.input().string(), tensor,
         roleName(t->cls.role));
  const auto m = quant::MatrixView::of(source.data(*t), t->info->dtype, t->info->shape);
  LayerDetail d;
  d.name = tensor;
  d.rows = m.rows;
  d.cols = m.cols;
  // The sampled rows, as the analysis samples them, in a float matrix of their own.
  const std::int64_t step = std::max<std::int64_t>(1, (m.rows + o.maxRows - 1) / o.maxRows);
  std::vector<std::int64_t> sampled;
  for (std::int64_t r = 0; r < m.rows; r += step) sampled.push_back(r);
  if (o.row >= 0 && o.row < m.rows && std::find(sampled.begin(), sampled.end(), o.row) == sampled.end())
    sampled.push_back(o.row);
  d.rowsSampled = static_cast<std::int64_t>(sampled.size());
  std::vector<float> w(static_cast<std::size_t>(d.rowsSampled * m.cols));
  double absMax = 0;
  std::int64_t widest = 0;
  for (std::size_t i = 0; i < sampled.size(); ++i) {
    if (o.keepGoing && !o.keepGoing()) fail(Errc::Cancelled, "cancelled");
    float* row = w.data() + static_cast<std::int64_t>(i) * m.cols;
    m.row(sampled[i], row);
    for (std::int64_t j = 0; j < m.cols; ++j)
      if (std::fabs(row[j]) > absMax) absMax = std::fabs(row[j]), widest = static_cast<std::int64_t>(i);
  }
  source.release(*t);
  // Quantized at the target, as compress does (the rate control predicts the bits on these rows).
  ThreadPool pool(o.threads);
  const auto sub = quant::MatrixView::of(std::as_bytes(std::span(w)), DType::F32, {d.rowsSampled, m.cols});
  quant::QuantizeOptions qo;
  qo.format = o.format;
  qo.objective = o.objective;
  qo.target = o.target;
  qo.keepGoing = o.keepGoing;
  const quant::QuantizedTensor q = quant::quantizeTensor(sub, qo, pool);
  std::vector<std::uint8_t> codes(w.size());
  codec::ransDecode(q.stream, codes, tensor, &pool);
  d.codes = codec::countSymbols(codes);
  d.distinctCodes = static_cast<int>(std::count_if(d.codes.begin(), d.codes.end(), [](auto c) { return c > 0; }));
  d.entropyBits = codes.empty() ? 0 : codec::shannonBits(d.codes) / static_cast<double>(codes.size());
  d.effectiveBits = q.effectiveBits;
  d.relL2 = q.relL2;
  d.weights = {-absMax, absMax, std::vector<std::uint64_t>(static_cast<std::size_t>(o.bins))};
  std::vector<double> err(w.size());
  double errMax = 0;
  for (std::size_t i = 0; i < w.size(); ++i) {
    const std::size_t r = i / static_cast<std::size_t>(m.cols);
    const float s = bf16ToF32(q.scales[r]);
    err[i] = static_cast<double>(bf16ToF32(quant::dequantizeOne(o.format, codes[i], s))) - w[i];
    errMax = std::max(errMax, std::fabs(err[i]));
    add(d.weights, w[i]);
  }
  d.errors = {-errMax, errMax, std::vector<std::uint64_t>(static_cast<std::size_t>(o.bins))};
  for (const double e : err) add(d.errors, e);
  // The grid of one row: every code's value at the row's scale, within the weights' range.
  const auto gridRow = o.row >= 0 && o.row < m.rows
                           ? static_cast<std::size_t>(std::find(sampled.begin(), sampled.end(), o.row) - sampled.begin())
                           : static_cast<std::size_t>(widest);
  d.row = sampled[gridRow];
  const float scale = bf16ToF32(q.scales[gridRow]);
  d.rowScale = scale;
  for (int c = 0; c < 256; ++c) {
    const float v = quant::codeValue(o.format, static_cast<std::uint8_t>(c));
    if (!std::isfinite(v)) continue;
    const double g = static_cast<double>(bf16ToF32(quant::dequantizeOne(o.format, static_cast<std::uint8_t>(c), scale)));
    if (std::fabs(g) <= absMax * 1.0001) d.grid.push_back(g);
  }
  std::sort(d.grid.begin(), d.grid.end());
  d.grid.erase(std::unique(d.grid.begin(), d.grid.end()), d.grid.end());
  return d;
}

}  // namespace eq
