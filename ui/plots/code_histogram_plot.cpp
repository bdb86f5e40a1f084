#include "plots/code_histogram_plot.h"

#include <algorithm>
#include <cmath>

namespace eq::ui {

CodeHistogramPlot::CodeHistogramPlot(QWidget* parent) : PlotBase(parent) {
  plotLayout()->insertRow(0);
  title_ = new QCPTextElement(this, QString(), QFont(font().family(), font().pointSize(), QFont::Bold));
  plotLayout()->addElement(0, 0, title_);
  bars_ = new QCPBars(xAxis, yAxis);
  bars_->setPen(Qt::NoPen);
  bars_->setBrush(QColor(60, 150, 90));
  bars_->setWidth(0.8);
  xAxis->setLabel(tr("code (by the value it stands for)"));
  yAxis->setLabel(tr("share of weights (log)"));
  yAxis->setScaleType(QCPAxis::stLogarithmic);
  yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  setExportName("codes");
}

void CodeHistogramPlot::clearData(const QString& message) {
  bars_->data()->clear();
  used_.clear();
  title_->setText(message);
  replot(rpQueuedReplot);
}

void CodeHistogramPlot::setCodes(const std::array<std::uint64_t, 256>& counts, quant::CodeFormat format,
                                 double entropyBits) {
  used_.clear();
  total_ = 0;
  for (int c = 0; c < 256; ++c)
    if (counts[static_cast<std::size_t>(c)]) {
      used_.emplace_back(quant::codeValue(format, static_cast<std::uint8_t>(c)), counts[static_cast<std::size_t>(c)]);
      total_ += counts[static_cast<std::size_t>(c)];
    }
  std::sort(used_.begin(), used_.end());
  QVector<double> keys, values;
  QVector<QString> labels;
  QVector<double> tickKeys;
  const std::size_t every = std::max<std::size_t>(1, (used_.size() + 4) / 5);
  for (std::size_t i = 0; i < used_.size(); ++i) {
    keys << static_cast<double>(i);
    values << static_cast<double>(used_[i].second) / static_cast<double>(total_);
    if (i % every == 0) tickKeys << static_cast<double>(i), labels << QString::number(used_[i].first, 'g', 2);
  }
  bars_->setData(keys, values, true);
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  ticker->setTicks(tickKeys, labels);
  xAxis->setTicker(ticker);
  xAxis->setRange(-1, static_cast<double>(used_.size()));
  const double smallest = used_.empty() ? 1e-6 : static_cast<double>(std::min_element(used_.begin(), used_.end(),
      [](const auto& a, const auto& b) { return a.second < b.second; })->second) / static_cast<double>(total_);
  yAxis->setRange(smallest / 2, 1.5);
  title_->setText(tr("%1 codes used, entropy %2 bits per weight").arg(used_.size()).arg(entropyBits, 0, 'f', 3));
  replot(rpQueuedReplot);
}

QString CodeHistogramPlot::toolTipAt(const QPointF& pixel) const {
  const auto i = static_cast<std::int64_t>(std::lround(xAxis->pixelToCoord(pixel.x())));
  if (i < 0 || i >= static_cast<std::int64_t>(used_.size())) return {};
  const auto& [value, count] = used_[static_cast<std::size_t>(i)];
  return tr("code value %1: %2 weights (%3 %)").arg(value, 0, 'g', 4).arg(count)
      .arg(100.0 * static_cast<double>(count) / static_cast<double>(total_), 0, 'f', 3);
}

}  // namespace eq::ui
