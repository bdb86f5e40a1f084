// A layer's rate-distortion curve (relative RMS error against effective bits, from the analysis) with its operating
// point, the bits the plan gives it. Drag the point along the curve to give the layer other bits.
#pragma once

#include "plots/plot_base.h"
#include "quant/tensor_quantizer.h"

#include <optional>
#include <vector>

namespace eq::ui {

class CurvePlot : public PlotBase {
  Q_OBJECT

 public:
  explicit CurvePlot(QWidget* parent = nullptr);
  void setCurve(const std::vector<quant::RatePoint>& curve, const QString& title);
  // The plan's point (bits, relative RMS error); nullopt: none (a kept layer).
  void setOperatingPoint(std::optional<double> bits, std::optional<double> relError);
  void clearData(const QString& message);
  // The bits a drag to `pixelX` chooses (clamped to the curve's range).
  double bitsAtPixel(double pixelX) const;

 signals:
  void bitsDragged(double bits);  // while dragging
  void bitsChosen(double bits);   // on release

 protected:
  QString toolTipAt(const QPointF& pixel) const override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;

 private:
  QCPGraph* curve_;
  QCPGraph* point_;
  QCPTextElement* title_;
  std::vector<quant::RatePoint> points_;
  double minBits_ = 0, maxBits_ = 8;
  bool dragging_ = false;
};

}  // namespace eq::ui
