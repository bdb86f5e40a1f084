// How often each 8-bit code occurs in the layer, in the order of the values the codes stand for, with the codes'
// entropy: the few codes near zero that EntQuant's scales favour are what the rANS coder stores cheaply.
#pragma once

#include "plots/plot_base.h"
#include "quant/code_format.h"

#include <array>
#include <cstdint>
#include <vector>

namespace eq::ui {

class CodeHistogramPlot : public PlotBase {
  Q_OBJECT

 public:
  explicit CodeHistogramPlot(QWidget* parent = nullptr);
  void setCodes(const std::array<std::uint64_t, 256>& counts, quant::CodeFormat format, double entropyBits);
  void clearData(const QString& message);

 protected:
  QString toolTipAt(const QPointF& pixel) const override;

 private:
  QCPBars* bars_;
  QCPTextElement* title_;
  std::vector<std::pair<float, std::uint64_t>> used_;  // (code value, count), ascending values
  std::uint64_t total_ = 0;
};

}  // namespace eq::ui
