// The quality check window by window: the mean KL divergence of the compressed model's next-token distributions
// from the original's in each window of the text, so a few hard passages stand out from a uniform loss.
#pragma once

#include "pipeline/lm.h"
#include "plots/plot_base.h"

namespace eq::ui {

class WindowPlot : public PlotBase {
  Q_OBJECT

 public:
  explicit WindowPlot(QWidget* parent = nullptr);
  void setWindows(const std::vector<WindowComparison>& windows);

 protected:
  QString toolTipAt(const QPointF& pixel) const override;

 private:
  QCPBars* bars_;
  std::vector<WindowComparison> windows_;
};

}  // namespace eq::ui
