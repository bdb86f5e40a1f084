// A histogram of values (the layer's weights or its quantization errors) with log counts, optionally with the
// values one row can represent drawn over it as thin lines (the FP8 / Int8 grid at the row's scale).
#pragma once

#include "pipeline/layer_detail.h"
#include "plots/plot_base.h"

#include <vector>

namespace eq::ui {

class HistogramPlot : public PlotBase {
  Q_OBJECT

 public:
  explicit HistogramPlot(const QString& xLabel, QWidget* parent = nullptr);
  void setHistogram(const Histogram& h, const QString& title);
  // Vertical lines at these values (empty: none); `label` names them in the legend.
  void setGrid(const std::vector<double>& values, const QString& label);
  void clearData(const QString& message);

 protected:
  QString toolTipAt(const QPointF& pixel) const override;

 private:
  QCPBars* bars_;
  QCPGraph* grid_;
  QCPTextElement* title_;
  Histogram h_;
};

}  // namespace eq::ui
