#include "plots/window_plot.h"

#include <algorithm>
#include <cmath>

namespace eq::ui {

WindowPlot::WindowPlot(QWidget* parent) : PlotBase(parent) {
  bars_ = new QCPBars(xAxis, yAxis);
  bars_->setPen(Qt::NoPen);
  bars_->setBrush(QColor(120, 90, 170));
  bars_->setWidth(0.8);
  xAxis->setLabel(tr("window of the text"));
  auto ticker = QSharedPointer<QCPAxisTickerFixed>(new QCPAxisTickerFixed);
  ticker->setTickStep(1);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);  // whole windows only
  xAxis->setTicker(ticker);
  yAxis->setLabel(tr("mean KL divergence (nats)"));
  setExportName("kl-by-window");
}

void WindowPlot::setWindows(const std::vector<WindowComparison>& windows) {
  windows_ = windows;
  QVector<double> keys, values;
  double top = 0;
  for (std::size_t i = 0; i < windows.size(); ++i) {
    keys << static_cast<double>(i + 1);
    values << windows[i].meanKl;
    top = std::max(top, windows[i].meanKl);
  }
  bars_->setData(keys, values, true);
  xAxis->setRange(0, static_cast<double>(windows.size()) + 1);
  yAxis->setRange(0, top > 0 ? top * 1.1 : 1);
  replot(rpQueuedReplot);
}

QString WindowPlot::toolTipAt(const QPointF& pixel) const {
  const auto i = static_cast<std::int64_t>(std::lround(xAxis->pixelToCoord(pixel.x()))) - 1;
  if (i < 0 || i >= static_cast<std::int64_t>(windows_.size())) return {};
  const auto& w = windows_[static_cast<std::size_t>(i)];
  return tr("window %1: KL %2 nats, perplexity %3 -> %4, top-1 agreement %5 %")
      .arg(i + 1).arg(w.meanKl, 0, 'f', 4).arg(w.pplOriginal, 0, 'f', 2).arg(w.pplCompressed, 0, 'f', 2)
      .arg(100 * w.top1Agreement, 0, 'f', 1);
}

}  // namespace eq::ui
