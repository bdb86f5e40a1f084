#include "widgets/layer_plots.h"

#include "plots/code_histogram_plot.h"
#include "plots/curve_plot.h"
#include "plots/histogram_plot.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QSpinBox>
#include <QVBoxLayout>

#include <cmath>

namespace eq::ui {

LayerPlots::LayerPlots(ModelDocument& document, QWidget* parent) : QWidget(parent), doc_(document) {
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(2, 2, 2, 2);
  auto* top = new QHBoxLayout;
  caption_ = new QLabel;
  caption_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  row_ = new QSpinBox;
  row_->setRange(-1, 0);
  row_->setSpecialValueText(tr("widest"));
  row_->setValue(-1);
  row_->setToolTip(tr("The row whose code grid (the values its 8-bit codes stand for, at its scale) is drawn over "
                      "the weights; 'widest': the sampled row with the largest |w|"));
  top->addWidget(caption_, 1);
  top->addWidget(new QLabel(tr("Grid of row")));
  top->addWidget(row_);
  outer->addLayout(top);
  auto* grid = new QGridLayout;
  outer->addLayout(grid, 1);
  weights_ = new HistogramPlot(tr("weight value"));
  codes_ = new CodeHistogramPlot;
  errors_ = new HistogramPlot(tr("error (w_hat - w)"));
  curve_ = new CurvePlot;
  grid->addWidget(weights_, 0, 0);
  grid->addWidget(codes_, 0, 1);
  grid->addWidget(errors_, 1, 0);
  grid->addWidget(curve_, 1, 1);
  connect(&doc_, &ModelDocument::layerDetailReady, this, [this](const QString& t) {
    if (t == layer_) showDetail();
  });
  connect(&doc_, &ModelDocument::layerDetailFailed, this, [this](const QString& t, const JobError& e) {
    if (t != layer_) return;
    weights_->clearData(e.message);
    codes_->clearData({});
    errors_->clearData({});
  });
  connect(&doc_, &ModelDocument::tensorsAnalyzed, this, [this](const QStringList& names) {
    if (names.contains(layer_)) showCurve();
  });
  connect(&doc_, &ModelDocument::analysisFinished, this, &LayerPlots::showCurve);
  connect(&doc_, &ModelDocument::planChanged, this, [this] {
    showCurve();
    // a new operating point for this layer: its histograms again (the worker restarts, last request wins)
    const PlannedTensor* p = doc_.plan() && !layer_.isEmpty() ? doc_.plan()->find(layer_.toStdString()) : nullptr;
    const std::optional<double> target = p && p->target ? std::optional(p->target->value) : std::nullopt;
    if (!doc_.isEqz() && !layer_.isEmpty() && target != requestedTarget_) request();
  });
  connect(row_, &QSpinBox::editingFinished, this, [this] {
    if (!layer_.isEmpty() && !doc_.isEqz()) request();
  });
  connect(curve_, &CurvePlot::bitsChosen, this, [this](double bits) {
    if (!layer_.isEmpty()) doc_.setTensorBits({layer_}, bits);
  });
  showLayer({});
}

void LayerPlots::showLayer(const QString& tensor) {
  const bool changed = tensor != layer_;
  layer_ = tensor;
  caption_->setText(tensor.isEmpty() ? QString() : QStringLiteral("<b>%1</b>").arg(tensor.toHtmlEscaped()));
  if (changed) {
    const TensorAnalysis* t = doc_.analysis().find(tensor.toStdString());
    row_->setRange(-1, t && t->rows > 0 ? static_cast<int>(t->rows - 1) : 0);
    row_->setValue(-1);
  }
  if (tensor.isEmpty()) {
    const QString hint = tr("Select a layer in the table or on the depth chart");
    weights_->clearData(hint);
    codes_->clearData({});
    errors_->clearData({});
    curve_->clearData({});
    return;
  }
  if (changed) {
    weights_->clearData(tr("%1: computing...").arg(tensor));
    codes_->clearData({});
    errors_->clearData({});
  }
  showCurve();
  if (doc_.isEqz()) {
    weights_->clearData(tr("%1: the weights of an .eqz file are not analyzed; its measured values are in the table")
                            .arg(tensor));
    return;
  }
  request();
}

void LayerPlots::request() {
  const PlannedTensor* p = doc_.plan() ? doc_.plan()->find(layer_.toStdString()) : nullptr;
  requestedTarget_ = p && p->target ? std::optional(p->target->value) : std::nullopt;
  doc_.requestLayerDetail(layer_, row_->value());  // the histograms follow on a worker (last request wins)
}

void LayerPlots::showCurve() {
  if (layer_.isEmpty()) return;
  const TensorAnalysis* t = doc_.analysis().find(layer_.toStdString());
  if (!t || !t->analyzed()) {
    curve_->clearData(doc_.analyzing() ? tr("rate-distortion curve: analyzing...") : tr("no curve"));
    return;
  }
  curve_->setCurve(t->curve, tr("rate-distortion curve"));
  const PlannedTensor* p = doc_.plan() ? doc_.plan()->find(t->name) : nullptr;
  if (p && p->compress && p->predictedBits && p->predictedRelMse)
    curve_->setOperatingPoint(p->predictedBits, std::sqrt(*p->predictedRelMse));
  else curve_->setOperatingPoint(std::nullopt, std::nullopt);
}

void LayerPlots::showDetail() {
  const LayerDetail& d = doc_.layerDetail();
  weights_->setHistogram(d.weights, tr("%1 x %2, %3 rows sampled").arg(d.rows).arg(d.cols).arg(d.rowsSampled));
  weights_->setGrid(d.grid, tr("grid of row %1 (scale %2)").arg(d.row).arg(d.rowScale, 0, 'g', 4));
  codes_->setCodes(d.codes, doc_.settings().format, d.entropyBits);
  errors_->setHistogram(d.errors, tr("errors at %1 bits: relative RMS %2").arg(d.effectiveBits, 0, 'f', 2)
                                      .arg(d.relL2, 0, 'f', 4));
}

}  // namespace eq::ui
