#include "plots/rate_distortion_chart.h"

#include <qcustomplot.h>

#include <algorithm>
#include <numeric>

namespace eq::ui {
namespace {

// A palette that stays apart in print and for common colour-vision deficiencies (Okabe-Ito).
const QColor kPalette[] = {QColor(0, 114, 178), QColor(213, 94, 0), QColor(0, 158, 115), QColor(204, 121, 167),
                           QColor(230, 159, 0), QColor(86, 180, 233), QColor(0, 0, 0), QColor(240, 228, 66)};
const QCPScatterStyle::ScatterShape kShapes[] = {QCPScatterStyle::ssCircle, QCPScatterStyle::ssSquare,
                                                 QCPScatterStyle::ssTriangle, QCPScatterStyle::ssDiamond,
                                                 QCPScatterStyle::ssCross, QCPScatterStyle::ssPlus};

}  // namespace

void drawRateDistortion(QCustomPlot& plot, const QVector<ChartSeries>& series, const ChartOptions& o) {
  plot.clearPlottables();
  plot.clearItems();
  plot.plotLayout()->clear();
  auto* rect = new QCPAxisRect(&plot);
  plot.plotLayout()->addElement(0, 0, rect);
  if (!o.title.isEmpty()) {
    plot.plotLayout()->insertRow(0);
    plot.plotLayout()->addElement(0, 0, new QCPTextElement(&plot, o.title, QFont("sans", 11, QFont::Bold)));
  }
  QCPAxis* x = rect->axis(QCPAxis::atBottom);
  QCPAxis* y = rect->axis(QCPAxis::atLeft);
  x->setLabel("effective bits per weight");
  y->setLabel(o.yLabel);
  if (o.logY) {
    y->setScaleType(QCPAxis::stLogarithmic);
    y->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  }
  double xMin = 1e9, xMax = -1e9, yMin = 1e300, yMax = -1e300;
  int i = 0;
  for (const auto& s : series) {
    // Sort by bits so the line runs left to right.
    QVector<int> order(s.bits.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return s.bits[a] < s.bits[b]; });
    QVector<double> xs, ys;
    for (int k : order) {
      xs << s.bits[k];
      ys << s.value[k];
      xMin = std::min(xMin, s.bits[k]);
      xMax = std::max(xMax, s.bits[k]);
      yMin = std::min(yMin, s.value[k]);
      yMax = std::max(yMax, s.value[k]);
    }
    QCPGraph* g = plot.addGraph(x, y);
    g->setName(s.name);
    g->setData(xs, ys, true);
    QPen pen(kPalette[i % 8], 2);
    if (s.dashed) pen.setStyle(Qt::DashLine);
    g->setPen(pen);
    g->setScatterStyle(QCPScatterStyle(kShapes[i % 6], kPalette[i % 8], 7));
    ++i;
  }
  if (o.referenceValue > 0) {
    QCPGraph* g = plot.addGraph(x, y);
    g->setName(o.referenceLabel);
    g->setData(QVector<double>{xMin, xMax}, QVector<double>{o.referenceValue, o.referenceValue}, true);
    g->setPen(QPen(QColor(120, 120, 120), 1, Qt::DotLine));
    yMin = std::min(yMin, o.referenceValue);
  }
  if (xMin <= xMax) {
    const double padX = std::max(0.05, 0.04 * (xMax - xMin));
    x->setRange(xMin - padX, xMax + padX);
    if (o.logY) {
      y->setRange(yMin / 1.05, yMax * 1.05);
    } else {
      const double padY = std::max(1e-9, 0.05 * (yMax - yMin));
      y->setRange(yMin - padY, yMax + padY);
    }
  }
  auto* legend = new QCPLegend;
  rect->insetLayout()->addElement(legend, Qt::AlignTop | Qt::AlignRight);
  legend->setLayer("legend");
  legend->setFont(QFont("sans", 8));
  for (int k = 0; k < plot.graphCount(); ++k) legend->addItem(new QCPPlottableLegendItem(legend, plot.graph(k)));
  plot.replot();
}

bool saveRateDistortionPng(const QVector<ChartSeries>& series, const ChartOptions& options, const QString& path,
                           int width, int height, QString* error) {
  QCustomPlot plot;
  plot.resize(width, height);
  drawRateDistortion(plot, series, options);
  if (!plot.savePng(path, width, height)) {
    if (error) *error = QString("%1: cannot be written").arg(path);
    return false;
  }
  return true;
}

}  // namespace eq::ui
