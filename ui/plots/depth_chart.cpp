#include "plots/depth_chart.h"

#include <algorithm>
#include <cmath>

namespace eq::ui {
namespace {

QColor roleColor(TensorRole r) {
  switch (r) {
    case TensorRole::AttentionLinear: return QColor(70, 110, 180);
    case TensorRole::AttentionQkv: return QColor(110, 150, 210);
    case TensorRole::MlpLinear: return QColor(230, 140, 50);
    case TensorRole::MlpGateUp: return QColor(240, 180, 90);
    case TensorRole::MoeExpert: return QColor(60, 150, 90);
    default: return QColor(140, 140, 140);
  }
}

}  // namespace

DepthChart::DepthChart(QWidget* parent) : PlotBase(parent) {
  selectedSeries_ = new QCPBars(xAxis, yAxis);
  // QCustomPlot's "overlay" layer lies above "main": outlines drawn over the bars, not stacked on them
  selectedSeries_->setLayer("overlay");
  selectedSeries_->setPen(QPen(QColor(200, 40, 40), 2));
  selectedSeries_->setBrush(Qt::NoBrush);
  selectedSeries_->setWidth(0.85);
  selectedSeries_->setName(tr("selected"));
  errors_ = addGraph(xAxis, yAxis2);
  errors_->setLineStyle(QCPGraph::lsNone);
  errors_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, QColor(60, 60, 60), 5));
  errors_->setName(tr("predicted rel. error"));
  measured_ = addGraph(xAxis, yAxis);
  measured_->setLineStyle(QCPGraph::lsNone);
  measured_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssPlus, QColor(20, 20, 20), 9));
  measured_->setName(tr("measured bits"));
  measured_->setLayer("overlay");
  xAxis->setLabel(tr("layers by block"));
  yAxis->setLabel(tr("target bits per weight"));
  yAxis->setRange(0, 8.5);
  yAxis2->setVisible(true);
  yAxis2->setLabel(tr("relative RMS error"));
  // the legend in a row of its own under the plot, so it never hides a bar
  legend->setVisible(true);
  legend->setFont(font());
  legend->setFillOrder(QCPLegend::foColumnsFirst);
  legend->setBorderPen(Qt::NoPen);
  auto* legendRow = new QCPLayoutGrid;
  plotLayout()->addElement(1, 0, legendRow);
  legendRow->setMargins(QMargins(0, 0, 0, 4));
  legendRow->addElement(0, 0, legend);
  plotLayout()->setRowStretchFactor(1, 0.001);
  selectedSeries_->removeFromLegend();
  setExportName("depth");
}

void DepthChart::setBars(const std::vector<DepthBar>& bars) {
  bars_ = bars;
  if (dragBits_)  // the dragged bars stay under the mouse; the others show the re-balanced plan
    for (auto& b : bars_)
      if (selected_.contains(b.name)) b.bits = *dragBits_;
  redraw();
}

void DepthChart::setSelection(const QStringList& names) {
  selected_ = names;
  redraw();
}

void DepthChart::redraw() {
  x_.clear();
  double key = 0;
  int lastBlock = bars_.empty() ? 0 : bars_.front().block;
  QVector<double> blockTicks;
  QVector<QString> blockLabels;
  for (const DepthBar& b : bars_) {
    if (b.block != lastBlock) key += 1.0;  // a gap between blocks
    if (x_.empty() || b.block != lastBlock)
      blockTicks << key, blockLabels << (b.block >= 0 ? QString::number(b.block) : QString("-"));
    lastBlock = b.block;
    x_.push_back(key);
    key += 1.0;
  }
  for (auto& [role, s] : series_) s->data()->clear();
  selectedSeries_->data()->clear();
  errors_->data()->clear();
  measured_->data()->clear();
  double errMax = 0;
  for (std::size_t i = 0; i < bars_.size(); ++i) {
    const DepthBar& b = bars_[i];
    QCPBars*& s = series_[b.role];
    if (!s) {
      s = new QCPBars(xAxis, yAxis);
      s->setPen(Qt::NoPen);
      s->setBrush(roleColor(b.role));
      s->setName(QString::fromStdString(std::string(roleName(b.role))));
      s->setWidth(0.85);
    }
    const double h = b.bits.value_or(8.0);
    s->addData(x_[i], h);
    if (selected_.contains(b.name)) selectedSeries_->addData(x_[i], h);
    if (b.relError) errors_->addData(x_[i], *b.relError), errMax = std::max(errMax, *b.relError);
    if (b.measuredBits) measured_->addData(x_[i], *b.measuredBits);
  }
  if (measured_->data()->isEmpty()) measured_->removeFromLegend();
  else if (!legend->hasItemWithPlottable(measured_)) measured_->addToLegend();
  auto ticker = QSharedPointer<QCPAxisTickerText>(new QCPAxisTickerText);
  const int every = std::max(1, static_cast<int>(blockTicks.size()) / 16);
  QVector<double> keys;
  QVector<QString> labels;
  for (int i = 0; i < blockTicks.size(); i += every) keys << blockTicks[i], labels << blockLabels[i];
  ticker->setTicks(keys, labels);
  xAxis->setTicker(ticker);
  xAxis->setRange(-1, std::max(1.0, key));
  yAxis2->setRange(0, errMax > 0 ? errMax * 1.15 : 1);
  replot(rpQueuedReplot);
}

QPointF DepthChart::barTop(const QString& name) const {
  for (std::size_t i = 0; i < bars_.size(); ++i)
    if (bars_[i].name == name)
      return {xAxis->coordToPixel(x_[i]), yAxis->coordToPixel(bars_[i].bits.value_or(8.0))};
  return {-1, -1};
}

double DepthChart::bitsAtPixel(double pixelY) const { return std::clamp(yAxis->pixelToCoord(pixelY), 0.5, 8.0); }

int DepthChart::barAt(const QPointF& pixel) const {
  const double key = xAxis->pixelToCoord(pixel.x());
  for (std::size_t i = 0; i < x_.size(); ++i)
    if (std::fabs(x_[i] - key) <= 0.45) return static_cast<int>(i);
  return -1;
}

QString DepthChart::toolTipAt(const QPointF& pixel) const {
  const int i = barAt(pixel);
  if (i < 0) return {};
  const DepthBar& b = bars_[static_cast<std::size_t>(i)];
  QString tip = b.name + "\n" + (b.bits ? tr("%1 bits per weight").arg(*b.bits, 0, 'f', 3) : tr("kept as it is"));
  if (b.relError) tip += tr("\npredicted relative error %1").arg(*b.relError, 0, 'f', 4);
  if (b.measuredBits) tip += tr("\nwritten at %1 bits per weight").arg(*b.measuredBits, 0, 'f', 3);
  return tip + tr("\nDrag up or down to change its bits");
}

void DepthChart::mousePressEvent(QMouseEvent* e) {
  const int i = e->button() == Qt::LeftButton ? barAt(e->position()) : -1;
  if (i < 0) return PlotBase::mousePressEvent(e);
  const QString name = bars_[static_cast<std::size_t>(i)].name;
  if (e->modifiers() & (Qt::ControlModifier | Qt::ShiftModifier)) {
    if (selected_.contains(name)) selected_.removeAll(name);
    else selected_ << name;
  } else if (!selected_.contains(name)) {
    selected_ = {name};
  }
  dragging_ = true;
  pressAt_ = e->position();
  redraw();
  emit selectionChanged(selected_);
}

void DepthChart::mouseMoveEvent(QMouseEvent* e) {
  if (!dragging_ || !(e->buttons() & Qt::LeftButton)) return PlotBase::mouseMoveEvent(e);
  if (std::fabs(e->position().y() - pressAt_.y()) < 3) return;  // a click, not a drag
  const double bits = bitsAtPixel(e->position().y());
  dragBits_ = bits;
  for (auto& b : bars_)
    if (selected_.contains(b.name)) b.bits = bits;
  redraw();
  emit barsDragged(selected_, bits);
}

void DepthChart::mouseReleaseEvent(QMouseEvent* e) {
  if (!dragging_) return PlotBase::mouseReleaseEvent(e);
  dragging_ = false;
  dragBits_.reset();
  if (std::fabs(e->position().y() - pressAt_.y()) >= 3) emit barsDropped(selected_, bitsAtPixel(e->position().y()));
}

}  // namespace eq::ui
