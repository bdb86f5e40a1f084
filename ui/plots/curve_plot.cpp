#include "plots/curve_plot.h"

#include "pipeline/plan.h"

#include <algorithm>
#include <cmath>

namespace eq::ui {

CurvePlot::CurvePlot(QWidget* parent) : PlotBase(parent) {
  plotLayout()->insertRow(0);
  title_ = new QCPTextElement(this, QString(), QFont(font().family(), font().pointSize(), QFont::Bold));
  plotLayout()->addElement(0, 0, title_);
  curve_ = addGraph();
  curve_->setPen(QPen(QColor(70, 110, 180), 2));
  curve_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
  point_ = addGraph();
  point_->setLineStyle(QCPGraph::lsNone);
  point_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(200, 60, 40), 12));
  xAxis->setLabel(tr("effective bits per weight"));
  yAxis->setLabel(tr("relative RMS error (log)"));
  yAxis->setScaleType(QCPAxis::stLogarithmic);
  yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  setExportName("rate-distortion");
  setToolTip(tr("Drag the red point along the curve to give this layer other bits"));
}

void CurvePlot::clearData(const QString& message) {
  curve_->data()->clear();
  point_->data()->clear();
  points_.clear();
  title_->setText(message);
  replot(rpQueuedReplot);
}

void CurvePlot::setCurve(const std::vector<quant::RatePoint>& curve, const QString& title) {
  points_ = curve;
  std::sort(points_.begin(), points_.end(), [](const auto& a, const auto& b) { return a.bits < b.bits; });
  QVector<double> x, y;
  for (const auto& p : points_) x << p.bits, y << std::sqrt(std::max(p.relMse, 1e-30));
  curve_->setData(x, y, true);
  if (!points_.empty()) {
    minBits_ = points_.front().bits;
    maxBits_ = points_.back().bits;
    xAxis->setRange(std::max(0.0, std::floor(minBits_ - 0.2)), std::ceil(maxBits_ + 0.2));
    yAxis->setRange(*std::min_element(y.begin(), y.end()) / 1.5, *std::max_element(y.begin(), y.end()) * 1.5);
  }
  title_->setText(title);
  replot(rpQueuedReplot);
}

void CurvePlot::setOperatingPoint(std::optional<double> bits, std::optional<double> relError) {
  point_->data()->clear();
  if (bits && relError) point_->addData(*bits, *relError);
  replot(rpQueuedReplot);
}

double CurvePlot::bitsAtPixel(double pixelX) const {
  return std::clamp(xAxis->pixelToCoord(pixelX), std::max(0.5, minBits_), std::min(8.0, maxBits_));
}

QString CurvePlot::toolTipAt(const QPointF& pixel) const {
  if (points_.empty()) return {};
  const double b = xAxis->pixelToCoord(pixel.x());
  const auto mse = relMseAtBits(points_, b);
  if (!mse || b < minBits_ || b > maxBits_) return {};
  return tr("%1 bits: relative RMS error %2").arg(b, 0, 'f', 2).arg(std::sqrt(*mse), 0, 'f', 4);
}

void CurvePlot::mousePressEvent(QMouseEvent* e) {
  if (e->button() == Qt::LeftButton && !points_.empty() && !point_->data()->isEmpty()) {
    const auto p = point_->data()->constBegin();
    const QPointF at(xAxis->coordToPixel(p->key), yAxis->coordToPixel(p->value));
    if (QLineF(at, e->position()).length() < 14) {
      dragging_ = true;
      return;
    }
  }
  PlotBase::mousePressEvent(e);
}

void CurvePlot::mouseMoveEvent(QMouseEvent* e) {
  if (!dragging_) return PlotBase::mouseMoveEvent(e);
  const double b = bitsAtPixel(e->position().x());
  const auto mse = relMseAtBits(points_, b);
  setOperatingPoint(b, mse ? std::optional(std::sqrt(*mse)) : std::nullopt);
  emit bitsDragged(b);
}

void CurvePlot::mouseReleaseEvent(QMouseEvent* e) {
  if (!dragging_) return PlotBase::mouseReleaseEvent(e);
  dragging_ = false;
  emit bitsChosen(bitsAtPixel(e->position().x()));
}

}  // namespace eq::ui
