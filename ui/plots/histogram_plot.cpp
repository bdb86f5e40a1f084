#include "plots/histogram_plot.h"

#include <algorithm>
#include <cmath>

namespace eq::ui {

HistogramPlot::HistogramPlot(const QString& xLabel, QWidget* parent) : PlotBase(parent) {
  plotLayout()->insertRow(0);
  title_ = new QCPTextElement(this, QString(), QFont(font().family(), font().pointSize(), QFont::Bold));
  plotLayout()->addElement(0, 0, title_);
  bars_ = new QCPBars(xAxis, yAxis);
  bars_->setPen(Qt::NoPen);
  bars_->setBrush(QColor(70, 110, 180));
  bars_->setName(tr("count"));
  grid_ = addGraph(xAxis, yAxis2);
  grid_->setLineStyle(QCPGraph::lsImpulse);
  grid_->setPen(QPen(QColor(200, 60, 40, 150), 1));
  yAxis2->setRange(0, 1);
  xAxis->setLabel(xLabel);
  yAxis->setLabel(tr("count (log)"));
  yAxis->setScaleType(QCPAxis::stLogarithmic);
  yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  legend->setFont(font());
  axisRect()->insetLayout()->setInsetAlignment(0, Qt::AlignTop | Qt::AlignLeft);
  legend->setBrush(QColor(255, 255, 255, 200));
  setExportName(xLabel.section(' ', 0, 0).toLower());
}

void HistogramPlot::clearData(const QString& message) {
  bars_->data()->clear();
  grid_->data()->clear();
  legend->setVisible(false);
  title_->setText(message);
  h_ = {};
  replot(rpQueuedReplot);
}

void HistogramPlot::setHistogram(const Histogram& h, const QString& title) {
  h_ = h;
  title_->setText(title);
  QVector<double> keys, values;
  const double w = h.binWidth();
  double top = 1;
  for (std::size_t i = 0; i < h.counts.size(); ++i) {
    keys << h.lo + (static_cast<double>(i) + 0.5) * w;
    values << (h.counts[i] > 0 ? static_cast<double>(h.counts[i]) : 0.5);  // an empty bin sits below 1 on the log axis
    top = std::max(top, static_cast<double>(h.counts[i]));
  }
  bars_->setWidth(w);
  bars_->setData(keys, values, true);
  bars_->setBaseValue(0.5);
  xAxis->setRange(h.lo - w, h.hi + w);
  yAxis->setRange(0.5, top * 2);
  replot(rpQueuedReplot);
}

void HistogramPlot::setGrid(const std::vector<double>& values, const QString& label) {
  QVector<double> keys, ones;
  for (const double v : values) keys << v, ones << 1.0;
  grid_->setData(keys, ones, true);
  grid_->setName(label);
  legend->setVisible(!values.empty());
  replot(rpQueuedReplot);
}

QString HistogramPlot::toolTipAt(const QPointF& pixel) const {
  if (h_.counts.empty()) return {};
  const double x = xAxis->pixelToCoord(pixel.x());
  const double w = h_.binWidth();
  const auto i = static_cast<std::int64_t>(std::floor((x - h_.lo) / w));
  if (i < 0 || i >= static_cast<std::int64_t>(h_.counts.size())) return {};
  const double lo = h_.lo + static_cast<double>(i) * w;
  return QStringLiteral("[%1, %2): %3").arg(lo, 0, 'g', 4).arg(lo + w, 0, 'g', 4).arg(h_.counts[static_cast<std::size_t>(i)]);
}

}  // namespace eq::ui
