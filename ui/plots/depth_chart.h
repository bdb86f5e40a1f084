// Bits per layer along the model's depth: one bar per compressible tensor, grouped by block and coloured by role,
// with each layer's predicted relative error over them (right axis). Click a bar to select it (Ctrl / Shift add),
// and drag a bar, or the selected group, up or down to give those layers other bits; with "keep the total" the
// plan re-balances the others to hold the file size.
#pragma once

#include "model/tensor_role.h"
#include "plots/plot_base.h"

#include <QStringList>

#include <map>
#include <optional>
#include <vector>

namespace eq::ui {

struct DepthBar {
  QString name;
  int block = -1;
  TensorRole role = TensorRole::Other;
  std::optional<double> bits;      // nullopt: kept as it is
  std::optional<double> relError;  // predicted relative RMS error
  std::optional<double> measuredBits;  // what the last compression wrote
};

class DepthChart : public PlotBase {
  Q_OBJECT

 public:
  explicit DepthChart(QWidget* parent = nullptr);
  void setBars(const std::vector<DepthBar>& bars);
  void setSelection(const QStringList& names);
  const QStringList& selection() const { return selected_; }
  // The pixel at the middle of a bar's top (tests and the screenshot tool); (-1, -1) when there is no such bar.
  QPointF barTop(const QString& name) const;
  // The bits a drag to `pixelY` gives (clamped to [0.5, 8]).
  double bitsAtPixel(double pixelY) const;

 signals:
  void selectionChanged(const QStringList& names);
  void barsDragged(const QStringList& names, double bits);  // while dragging
  void barsDropped(const QStringList& names, double bits);  // on release

 protected:
  QString toolTipAt(const QPointF& pixel) const override;
  void mousePressEvent(QMouseEvent* e) override;
  void mouseMoveEvent(QMouseEvent* e) override;
  void mouseReleaseEvent(QMouseEvent* e) override;

 private:
  int barAt(const QPointF& pixel) const;  // index into bars_, -1: none
  void redraw();

  std::vector<DepthBar> bars_;
  std::vector<double> x_;                  // each bar's key
  std::map<TensorRole, QCPBars*> series_;  // one per role, so the legend names them
  QCPBars* selectedSeries_;
  QCPGraph* errors_;
  QCPGraph* measured_;
  QStringList selected_;
  bool dragging_ = false;
  std::optional<double> dragBits_;
  QPointF pressAt_;
};

}  // namespace eq::ui
