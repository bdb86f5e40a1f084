// What every plot of the app shares: a right-click menu to export it (PNG, SVG, PDF), tooltips with exact values
// (each plot says what is under the mouse), and queued replots so that bursts of updates draw once.
#pragma once

#include <qcustomplot.h>

#include <QString>

namespace eq::ui {

class PlotBase : public QCustomPlot {
  Q_OBJECT

 public:
  explicit PlotBase(QWidget* parent = nullptr);
  // Writes the plot to `path` as PNG, SVG or PDF (by its extension), at its on-screen size; false with `error` set.
  bool exportTo(const QString& path, QString* error = nullptr);
  // A file name to suggest when exporting ("weights", "depth", ...).
  void setExportName(const QString& name) { exportName_ = name; }

 protected:
  bool event(QEvent* e) override;
  void contextMenuEvent(QContextMenuEvent* e) override;
  // The tooltip for the point under the mouse; empty: none.
  virtual QString toolTipAt(const QPointF& pixel) const = 0;
  // The plot's usual look: white, light grid, the app's font.
  void styleAxes();

 private:
  QString exportName_ = "plot";
};

}  // namespace eq::ui
