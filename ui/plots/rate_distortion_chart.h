// Rate-distortion charts: one curve per compression variant, quality (perplexity, KL divergence, ...) against
// effective bits per weight. Used by the quality study (bench/plot_quality renders PNGs offscreen) and, later, by
// the GUI's compression view. Qt Widgets + QCustomPlot; nothing here knows about models.
#pragma once

#include <QColor>
#include <QString>
#include <QVector>

class QCustomPlot;

namespace eq::ui {

struct ChartSeries {
  QString name;
  QVector<double> bits, value;  // x: effective bits per weight, y: the quality measure
  bool dashed = false;          // baselines and references
};

struct ChartOptions {
  QString title, yLabel = "perplexity";
  double referenceValue = 0;    // drawn as a horizontal line (e.g. the uncompressed model's perplexity); 0: none
  QString referenceLabel = "original (bf16)";
  bool logY = false;
};

// Fills `plot` (cleared first) with the series.
void drawRateDistortion(QCustomPlot& plot, const QVector<ChartSeries>& series, const ChartOptions& options);

// Renders offscreen and writes a PNG of width x height pixels; false with `error` set when the file can't be written.
bool saveRateDistortionPng(const QVector<ChartSeries>& series, const ChartOptions& options, const QString& path,
                           int width, int height, QString* error);

}  // namespace eq::ui
