// The selected layer, four ways: its weight histogram with one row's FP8 grid over it, its code histogram with the
// entropy, its error histogram (computed on a worker at the layer's operating point: ModelDocument's layer
// detail), and its rate-distortion curve from the analysis with the operating point, which the user drags to give
// the layer other bits.
#pragma once

#include "model_document.h"

#include <QWidget>

class QSpinBox;
class QLabel;

namespace eq::ui {

class CodeHistogramPlot;
class CurvePlot;
class HistogramPlot;

class LayerPlots : public QWidget {
  Q_OBJECT

 public:
  explicit LayerPlots(ModelDocument& document, QWidget* parent = nullptr);
  void showLayer(const QString& tensor);  // "" clears
  const QString& layer() const { return layer_; }
  CurvePlot& curve() { return *curve_; }
  HistogramPlot& weights() { return *weights_; }
  CodeHistogramPlot& codes() { return *codes_; }
  HistogramPlot& errors() { return *errors_; }

 private:
  void showCurve();
  void showDetail();
  void request();

  ModelDocument& doc_;
  QString layer_;
  std::optional<double> requestedTarget_;
  HistogramPlot* weights_;
  CodeHistogramPlot* codes_;
  HistogramPlot* errors_;
  CurvePlot* curve_;
  QSpinBox* row_;    // the row whose grid is drawn; -1: the widest sampled row
  QLabel* caption_;  // the layer's name
};

}  // namespace eq::ui
